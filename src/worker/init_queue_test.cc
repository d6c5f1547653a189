// The init queue with fake jobs and an injected clock: bounded concurrency, FIFO order,
// waiting for room instead of failing, retry on room_changed, give-up after max_wait.
#include "worker/init_queue.h"

#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace kiln::worker {
namespace {

using std::chrono::seconds;

// Fake host: jobs record their start and keep their outcome until the test ends them.
struct FakeJobs {
  std::chrono::steady_clock::time_point now{};
  int room = 1000;                    // sandboxes that fit; a start takes one
  std::vector<std::string> started;   // in start order
  std::vector<std::string> gave_up;
  std::vector<std::pair<std::string, InitQueue::Outcome>> running;

  InitQueue::Job job(const std::string& name) {
    return {[this, name](InitQueue::Outcome o) {
              if (room == 0) return o.no_room();
              --room;
              started.push_back(name);
              running.emplace_back(name, std::move(o));
            },
            [this, name] { gave_up.push_back(name); }};
  }
  // Ends the oldest running job; its sandbox stays (room is not given back).
  void finish_oldest() {
    auto o = running.front().second;
    running.erase(running.begin());
    o.finished();
  }
};

TEST(InitQueue, RunsAtMostMaxRunningAndTheRestInFifoOrder) {
  FakeJobs jobs;
  InitQueue q(2, seconds(60), [&jobs] { return jobs.now; });
  for (const char* n : {"a", "b", "c", "d", "e"}) q.submit(jobs.job(n));
  EXPECT_EQ(jobs.started, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(q.running(), 2u);
  EXPECT_EQ(q.waiting(), 3u);
  jobs.finish_oldest();
  EXPECT_EQ(jobs.started, (std::vector<std::string>{"a", "b", "c"}));
  jobs.finish_oldest();
  jobs.finish_oldest();
  jobs.finish_oldest();
  jobs.finish_oldest();
  EXPECT_EQ(jobs.started, (std::vector<std::string>{"a", "b", "c", "d", "e"}));
  EXPECT_EQ(q.running(), 0u);
  EXPECT_EQ(q.waiting(), 0u);
  EXPECT_TRUE(jobs.gave_up.empty());
}

TEST(InitQueue, AJobWithoutRoomWaitsAtTheHeadAndNeverFails) {
  FakeJobs jobs;
  jobs.room = 1;
  InitQueue q(4, seconds(60), [&jobs] { return jobs.now; });
  for (const char* n : {"a", "b", "c"}) q.submit(jobs.job(n));
  EXPECT_EQ(jobs.started, (std::vector<std::string>{"a"}));
  EXPECT_EQ(q.waiting(), 2u) << "b found no room: it waits, and c waits behind it";
  // a's initialization ends and its sandbox becomes idle: b reclaims it.
  jobs.room = 1;
  jobs.finish_oldest();
  EXPECT_EQ(jobs.started, (std::vector<std::string>{"a", "b"}));
  // Room appears without an initialization ending (a busy sandbox was released).
  jobs.room = 1;
  q.room_changed();
  EXPECT_EQ(jobs.started, (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_TRUE(jobs.gave_up.empty());
}

TEST(InitQueue, AJobEndingSynchronouslyDoesNotRecurseOrStall) {
  InitQueue q(1, seconds(60));
  int ran = 0;
  for (int i = 0; i < 10000; ++i) {
    q.submit({[&ran](InitQueue::Outcome o) {
                ++ran;
                o.finished();
              },
              [] { FAIL() << "gave up"; }});
  }
  EXPECT_EQ(ran, 10000);
  EXPECT_EQ(q.running(), 0u);
}

TEST(InitQueue, AnOutcomeCountsOnce) {
  InitQueue q(1, seconds(60));
  std::vector<InitQueue::Outcome> outcomes;
  int started = 0;
  auto job = [&](InitQueue::Outcome o) {
    ++started;
    outcomes.push_back(std::move(o));
  };
  q.submit({job, [] {}});
  q.submit({job, [] {}});
  q.submit({job, [] {}});
  outcomes[0].finished();
  outcomes[0].finished();
  outcomes[0].no_room();
  EXPECT_EQ(started, 2) << "a second call of an outcome freed a second slot";
  EXPECT_EQ(q.running(), 1u);
}

TEST(InitQueue, GivesUpJobsThatWaitedLongerThanMaxWait) {
  FakeJobs jobs;
  jobs.room = 0;  // the host stays full (provisioned or long-busy sandboxes)
  InitQueue q(2, seconds(60), [&jobs] { return jobs.now; });
  q.submit(jobs.job("a"));
  jobs.now += seconds(30);
  q.submit(jobs.job("b"));
  q.room_changed();
  EXPECT_TRUE(jobs.gave_up.empty());
  jobs.now += seconds(30);
  q.room_changed();
  EXPECT_EQ(jobs.gave_up, (std::vector<std::string>{"a"}));
  EXPECT_EQ(q.waiting(), 1u);
  jobs.room = 1;
  q.room_changed();
  EXPECT_EQ(jobs.started, (std::vector<std::string>{"b"}));
  EXPECT_EQ(q.waiting(), 0u);
}

TEST(InitQueue, EndsFromOtherThreadsKeepTheBound) {
  InitQueue q(3, seconds(60));
  std::atomic<int> now_running{0}, peak{0}, done{0};
  std::vector<std::thread> threads;
  std::mutex mu;
  for (int i = 0; i < 200; ++i) {
    q.submit({[&](InitQueue::Outcome o) {
                int r = ++now_running;
                int p = peak.load();
                while (r > p && !peak.compare_exchange_weak(p, r)) {
                }
                std::lock_guard lock(mu);
                threads.emplace_back([&, o] {
                  --now_running;
                  ++done;
                  o.finished();
                });
              },
              [] {}});
  }
  for (size_t i = 0;; ++i) {
    std::thread t;
    {
      std::lock_guard lock(mu);
      if (i >= threads.size()) break;
      t = std::move(threads[i]);
    }
    t.join();
  }
  EXPECT_EQ(done.load(), 200);
  EXPECT_LE(peak.load(), 3);
  EXPECT_EQ(q.running(), 0u);
}

}  // namespace
}  // namespace kiln::worker
