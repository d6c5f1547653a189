// Host capacity: the per-function scaling rate (injected clock), memory reservations on
// the worker (process backend, a runtime that only sleeps) and reclaiming idle
// sandboxes of other functions, oldest first.
#include "worker/capacity.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <boost/asio/executor_work_guard.hpp>

#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <thread>

#include "worker/worker.h"

namespace kiln::worker {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;
using std::chrono::seconds;

struct FakeClock {
  std::chrono::steady_clock::time_point now{};
};

TEST(ScaleRate, AdmitsABurstOfRateThenRefuses) {
  FakeClock clock;
  ScaleRate rate(3, seconds(10), [&clock] { return clock.now; });
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(rate.try_start("acct:f")) << i;
  EXPECT_FALSE(rate.try_start("acct:f"));
  EXPECT_TRUE(rate.try_start("acct:g")) << "each function has its own budget";
}

TEST(ScaleRate, RefillsRatePerWindowAndNeverAboveRate) {
  FakeClock clock;
  ScaleRate rate(10, seconds(10), [&clock] { return clock.now; });
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(rate.try_start("f"));
  EXPECT_FALSE(rate.try_start("f"));
  clock.now += milliseconds(999);
  EXPECT_FALSE(rate.try_start("f")) << "0.999 of a sandbox has been refilled";
  clock.now += milliseconds(1);
  EXPECT_TRUE(rate.try_start("f"));
  EXPECT_FALSE(rate.try_start("f"));
  clock.now += std::chrono::hours(1);
  for (int i = 0; i < 10; ++i) EXPECT_TRUE(rate.try_start("f")) << i;
  EXPECT_FALSE(rate.try_start("f")) << "an idle hour does not bank more than one window's worth";
}

TEST(ScaleRate, ClockGoingBackwardsAddsNothing) {
  FakeClock clock;
  clock.now += seconds(100);
  ScaleRate rate(1, seconds(10), [&clock] { return clock.now; });
  EXPECT_TRUE(rate.try_start("f"));
  clock.now -= seconds(50);
  EXPECT_FALSE(rate.try_start("f"));
  clock.now += seconds(55);
  EXPECT_FALSE(rate.try_start("f")) << "time is measured from the latest instant seen";
  clock.now += seconds(5);
  EXPECT_TRUE(rate.try_start("f"));
}

TEST(ScaleRate, ZeroIsUnlimited) {
  ScaleRate rate(0);
  for (int i = 0; i < 5000; ++i) ASSERT_TRUE(rate.try_start("f"));
}

constexpr auto kWait = seconds(20);

class CapacityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/kiln-capacity-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    fs::create_directories(dir_ / "code");
    fs::create_directories(dir_ / "runtimes" / "provided");
    {
      std::ofstream out(dir_ / "code" / "bootstrap");
      out << "#!/bin/sh\nexec sleep 60\n";
    }
    fs::permissions(dir_ / "code" / "bootstrap", fs::perms(0755));
    backend_ = sandbox::make_process_backend();
    logs_ = std::make_unique<LogStore>(dir_ / "logs");
    io_thread_ = std::thread([this] { io_.run(); });
    options_.runtimes_dir = dir_ / "runtimes";
    options_.sandbox_memory_mb = 512;
    options_.scale_rate = 2;
    worker_ = std::make_unique<Worker>(io_, *backend_, *logs_, options_);
  }

  // Replaces the (still empty) worker with one made with changed options.
  void remake_worker(const std::function<void(WorkerOptions&)>& change) {
    worker_.reset();
    change(options_);
    worker_ = std::make_unique<Worker>(io_, *backend_, *logs_, options_);
  }

  void TearDown() override {
    assignment_.retire_all();
    for (auto& e : envs_) e->retire();
    envs_.clear();
    worker_->drain();
    worker_.reset();
    work_.reset();
    io_.stop();
    io_thread_.join();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  registry::FunctionVersionPtr function(const std::string& name, uint32_t memory_mb, const std::string& runtime = "provided.al2023") {
    auto f = std::make_shared<registry::FunctionVersion>();
    f->account_id = "123456789012";
    f->region = "us-east-1";
    f->name = name;
    f->version = "$LATEST";
    f->runtime = runtime;
    f->role = "arn:aws:iam::123456789012:role/r";
    f->memory_mb = memory_mb;
    f->revision_id = "rev-" + name;
    f->code_dir = dir_ / "code";
    return f;
  }

  // Creates a sandbox; `sync` is set when `done` ran before create() returned.
  StatusOr<std::shared_ptr<Environment>> create(registry::FunctionVersionPtr f, bool* sync = nullptr) {
    auto p = std::make_shared<std::promise<StatusOr<std::shared_ptr<Environment>>>>();
    worker_->create(std::move(f), nullptr, [p](StatusOr<std::shared_ptr<Environment>> e) { p->set_value(std::move(e)); });
    auto fut = p->get_future();
    if (sync) *sync = fut.wait_for(seconds(0)) == std::future_status::ready;
    if (fut.wait_for(kWait) != std::future_status::ready) return ServiceError("create did not finish");
    auto env = fut.get();
    if (env.ok()) envs_.push_back(*env);
    return env;
  }

  // A sandbox of `f` that is idle in the assignment service.
  std::shared_ptr<Environment> idle(const registry::FunctionVersionPtr& f) {
    auto env = create(f);
    if (!env.ok()) {
      ADD_FAILURE() << env.status().message();
      return nullptr;
    }
    assignment_.add_busy(*env);
    assignment_.release(*env);
    return *env;
  }

  fs::path dir_;
  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_ = boost::asio::make_work_guard(io_);
  std::thread io_thread_;
  std::unique_ptr<sandbox::SandboxBackend> backend_;
  std::unique_ptr<LogStore> logs_;
  WorkerOptions options_;
  std::unique_ptr<Worker> worker_;
  FakeClock clock_;
  assignment::AssignmentService assignment_{[this] { return clock_.now; }};
  std::vector<std::shared_ptr<Environment>> envs_;
};

TEST_F(CapacityTest, CreateReservesMemoryAndRefusesAtOnceWhenFull) {
  ASSERT_TRUE(create(function("a", 256)).ok());
  ASSERT_TRUE(create(function("b", 256)).ok());
  EXPECT_EQ(worker_->reserved_memory_mb(), 512u);
  EXPECT_FALSE(worker_->memory_fits(1));
  bool sync = false;
  auto refused = create(function("c", 128), &sync);
  ASSERT_FALSE(refused.ok());
  EXPECT_TRUE(sync) << "a refusal must not wait for a creation thread";
  EXPECT_EQ(refused.status().http_status(), 429);
  EXPECT_EQ(refused.status().type(), "TooManyRequestsException");
  EXPECT_EQ(worker_->reserved_memory_mb(), 512u);
  EXPECT_EQ(worker_->load(), 2u);
  envs_.front()->retire();
  EXPECT_EQ(worker_->reserved_memory_mb(), 256u) << "a retired sandbox frees its reservation at once";
  EXPECT_TRUE(create(function("c", 256)).ok());
}

TEST_F(CapacityTest, FailedCreateReturnsItsReservation) {
  auto bad = create(function("a", 512, "cobol85"));
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(worker_->reserved_memory_mb(), 0u);
  EXPECT_TRUE(create(function("a", 512)).ok());
}

TEST_F(CapacityTest, MakeRoomReclaimsOtherFunctionsOldestIdleFirst) {
  auto b_old = idle(function("b", 128));
  clock_.now += seconds(1);
  auto c_mid = idle(function("c", 128));
  clock_.now += seconds(1);
  auto b_new = idle(function("b", 128));
  clock_.now += seconds(1);
  auto a_own = idle(function("a", 128));  // the needing function's own idle one is spared
  ASSERT_TRUE(b_old && c_mid && b_new && a_own);
  ASSERT_EQ(worker_->reserved_memory_mb(), 512u);

  EXPECT_TRUE(make_room(*worker_, assignment_, function("a", 256)->sandbox_key(), 256));
  EXPECT_EQ(worker_->reserved_memory_mb(), 256u);
  EXPECT_FALSE(b_old->reusable());
  EXPECT_FALSE(c_mid->reusable());
  EXPECT_TRUE(b_new->reusable());
  EXPECT_TRUE(a_own->reusable());
  EXPECT_EQ(assignment_.stats().idle, 2u);

  EXPECT_FALSE(make_room(*worker_, assignment_, function("a", 512)->sandbox_key(), 512))
      << "only the spared key's idle sandbox is left: nothing more to reclaim";
  EXPECT_TRUE(a_own->reusable());
}

TEST_F(CapacityTest, BusySandboxesAreNeverReclaimed) {
  auto env = create(function("b", 512));
  ASSERT_TRUE(env.ok());
  assignment_.add_busy(*env);
  std::string reason;
  Status s = admit_new_sandbox(*worker_, assignment_, *function("a", 128), &reason);
  EXPECT_EQ(s.http_status(), 429);
  EXPECT_EQ(reason, kHostMemoryReason);
  EXPECT_TRUE((*env)->reusable());
  assignment_.release(*env);
  EXPECT_TRUE(admit_new_sandbox(*worker_, assignment_, *function("a", 128), &reason).ok());
  EXPECT_FALSE((*env)->reusable()) << "once idle it is reclaimed";
}

TEST_F(CapacityTest, AdmitAppliesTheScalingRatePerFunction) {
  std::string reason;
  auto a = function("a", 128);
  EXPECT_TRUE(admit_new_sandbox(*worker_, assignment_, *a, &reason).ok());
  EXPECT_TRUE(admit_new_sandbox(*worker_, assignment_, *a, &reason).ok());
  Status s = admit_new_sandbox(*worker_, assignment_, *a, &reason);
  EXPECT_EQ(s.http_status(), 429);
  EXPECT_EQ(s.type(), "TooManyRequestsException");
  EXPECT_EQ(reason, kScaleRateReason);
  EXPECT_TRUE(admit_new_sandbox(*worker_, assignment_, *function("b", 128), &reason).ok());
}

TEST(FdCapacity, SandboxesGetWhatIsLeftAfterTheHeadroom) {
  EXPECT_EQ(fds_per_sandbox(), kFdsPerSandboxBase + kRuntimeApiMaxConnections - 1);
  EXPECT_EQ(fd_headroom(1024), 128u);
  EXPECT_EQ(fd_headroom(200), 64u) << "never less than 64";
  EXPECT_EQ(sandboxes_by_fds(1024, 40), (1024u - 40 - 128) / fds_per_sandbox());
  EXPECT_EQ(sandboxes_by_fds(200, 30), (200u - 30 - 64) / fds_per_sandbox());
  EXPECT_EQ(sandboxes_by_fds(100, 40), 0u) << "no room at all: every sandbox is refused";
  EXPECT_GT(sandboxes_by_fds(1 << 20, 40), 40000u);
}

TEST(FdCapacity, ReadsThisProcesssLimitAndOpenDescriptors) {
  EXPECT_GT(fd_soft_limit(), 3u);
  const uint64_t before = open_fd_count();
  int fd = ::dup(0);
  ASSERT_GE(fd, 0);
  EXPECT_EQ(open_fd_count(), before + 1);
  ::close(fd);
}

TEST_F(CapacityTest, DescriptorsBoundSandboxesAndRefuseAtOnce) {
  remake_worker([](WorkerOptions& o) {
    o.sandbox_memory_mb = 0;  // memory unlimited: only descriptors bind
    o.max_sandboxes_by_fds = 2;
  });
  ASSERT_TRUE(create(function("a", 128)).ok());
  ASSERT_TRUE(create(function("b", 128)).ok());
  EXPECT_FALSE(worker_->fds_fit());
  bool sync = false;
  auto refused = create(function("c", 128), &sync);
  ASSERT_FALSE(refused.ok());
  EXPECT_TRUE(sync) << "a refusal must not wait for a creation thread";
  EXPECT_EQ(refused.status().http_status(), 429);
  EXPECT_EQ(refused.status().type(), "TooManyRequestsException");
  EXPECT_NE(refused.status().message().find("file descriptors"), std::string::npos) << refused.status().message();
  EXPECT_EQ(worker_->load(), 2u);
  envs_.front()->retire();
  EXPECT_TRUE(worker_->fds_fit()) << "a retired sandbox frees its descriptors' slot at once";
  EXPECT_TRUE(create(function("c", 128)).ok());
}

TEST_F(CapacityTest, AdmitReclaimsIdleSandboxesForDescriptorsThenThrottles) {
  remake_worker([](WorkerOptions& o) {
    o.sandbox_memory_mb = 0;
    o.max_sandboxes_by_fds = 2;
  });
  auto b_idle = idle(function("b", 128));
  auto busy = create(function("c", 128));
  ASSERT_TRUE(b_idle && busy.ok());
  assignment_.add_busy(*busy);
  std::string reason;
  EXPECT_TRUE(admit_new_sandbox(*worker_, assignment_, *function("a", 128), &reason).ok());
  EXPECT_FALSE(b_idle->reusable()) << "the idle sandbox of another function was reclaimed";
  ASSERT_TRUE(create(function("a", 128)).ok());
  Status s = admit_new_sandbox(*worker_, assignment_, *function("d", 128), &reason);
  EXPECT_EQ(s.http_status(), 429);
  EXPECT_EQ(s.type(), "TooManyRequestsException");
  EXPECT_EQ(reason, "ConcurrentInvocationLimitExceeded");
  EXPECT_NE(s.message().find("file descriptors"), std::string::npos) << s.message();
  EXPECT_TRUE((*busy)->reusable()) << "busy sandboxes are never reclaimed";
  assignment_.release(*busy);
}

}  // namespace
}  // namespace kiln::worker
