#include "async/scheduler.h"

#include <gtest/gtest.h>

#include <map>
#include <optional>
#include <string>

namespace kiln::async {
namespace {

TEST(Scheduler, NothingRunsBeforeItsDueTime) {
  Scheduler s(4, 4);
  s.add(1, "f", 100);
  EXPECT_FALSE(s.take(99));
  EXPECT_EQ(s.next_due_ms(), 100);
  EXPECT_EQ(s.take(100), 1);
  EXPECT_FALSE(s.take(1000));
  EXPECT_EQ(s.running(), 1u);
}

TEST(Scheduler, FunctionsTakeTurnsSoABacklogDoesNotStarveOthers) {
  Scheduler s(1, 1);
  for (int i = 0; i < 1000; ++i) s.add(i, "busy", 0);
  s.add(5000, "quiet", 0);
  std::vector<int64_t> order;
  for (int i = 0; i < 4; ++i) {
    auto id = s.take(0);
    ASSERT_TRUE(id);
    order.push_back(*id);
    s.finished(*id);
  }
  // The quiet function's one event runs within the first two turns.
  EXPECT_TRUE(order[0] == 5000 || order[1] == 5000);
}

TEST(Scheduler, PerFunctionLimitLeavesRoomForOthers) {
  Scheduler s(3, 2);
  for (int i = 0; i < 10; ++i) s.add(i, "a", 0);
  EXPECT_TRUE(s.take(0));
  EXPECT_TRUE(s.take(0));
  EXPECT_FALSE(s.take(0));  // "a" has its two
  s.add(100, "b", 0);
  EXPECT_EQ(s.take(0), 100);
  EXPECT_FALSE(s.take(0));  // total of three
}

TEST(Scheduler, FinishedReleasesTheSlot) {
  Scheduler s(1, 1);
  s.add(1, "a", 0);
  s.add(2, "a", 0);
  EXPECT_EQ(s.take(0), 1);
  EXPECT_FALSE(s.take(0));
  EXPECT_FALSE(s.next_due_ms());  // waiting for a slot, not for time
  s.finished(1);
  EXPECT_EQ(s.take(0), 2);
  s.finished(2);
  s.finished(2);  // twice is harmless
  s.finished(42); // unknown is harmless
  EXPECT_EQ(s.running(), 0u);
  EXPECT_EQ(s.queued(), 0u);
}

TEST(Scheduler, EarliestDueFirstWithinAFunction) {
  Scheduler s(1, 1);
  s.add(1, "a", 50);
  s.add(2, "a", 10);
  EXPECT_EQ(s.take(60), 2);
}

TEST(Scheduler, ManyFunctionsAllGetServedEvenly) {
  Scheduler s(2, 1);
  for (int f = 0; f < 10; ++f)
    for (int i = 0; i < 10; ++i) s.add(f * 100 + i, "f" + std::to_string(f), 0);
  std::map<int64_t, int> first_round;
  for (int i = 0; i < 10; ++i) {
    auto id = s.take(0);
    ASSERT_TRUE(id);
    first_round[*id / 100]++;
    s.finished(*id);
  }
  EXPECT_EQ(first_round.size(), 10u);  // each function once in the first ten turns
}

TEST(Scheduler, AFunctionsReservedConcurrencyCapsItsEventsInFlight) {
  std::map<std::string, std::optional<uint64_t>> reserved = {{"one", 1}, {"zero", 0}};
  Scheduler s(8, 7, [&reserved](const std::string& key) { return reserved[key]; });
  for (int i = 0; i < 10; ++i) s.add(i, "one", 0);
  for (int i = 10; i < 20; ++i) s.add(i, "zero", 0);
  for (int i = 20; i < 30; ++i) s.add(i, "free", 0);
  std::map<int64_t, int> taken;
  while (auto id = s.take(0)) taken[*id / 10]++;
  EXPECT_EQ(taken[0], 1) << "reserved concurrency 1";
  EXPECT_EQ(taken[1], 1) << "reserved 0: one at a time, to be throttled and expire by age";
  EXPECT_EQ(taken[2], 6) << "the rest of the total";
  EXPECT_FALSE(s.next_due_ms()) << "every queued event waits for a slot, not for time";
  reserved["one"] = 3;  // PutFunctionConcurrency raised it
  EXPECT_FALSE(s.take(0)) << "the total is full";
  s.finished(20);
  s.finished(21);
  EXPECT_TRUE(s.take(0));
  EXPECT_TRUE(s.take(0));
}

}  // namespace
}  // namespace kiln::async
