#include "async/async_service.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <future>

#include <nlohmann/json.hpp>

namespace kiln::async {
namespace {

constexpr const char* kAccount = "123456789012";
constexpr const char* kFn = "arn:aws:lambda:us-east-1:123456789012:function:f";
constexpr const char* kDest = "arn:aws:lambda:us-east-1:123456789012:function:dest";

class FakeClock : public Clock {
 public:
  int64_t now_ms() const override { return now.load(); }
  std::atomic<int64_t> now{1'700'000'000'000};
};

struct Call {
  std::string function_arn, payload, request_id;
};

// Answers each attempt synchronously with what `answer` says, and records it.
struct FakeFunctions {
  std::mutex mu;
  std::vector<Call> calls;
  std::function<worker::InvokeResult(const Call&)> answer = [](const Call&) { return worker::InvokeResult{}; };
  Invoker invoker() {
    return [this](const std::string&, const std::string& arn, const std::string&, std::string payload,
                  std::string request_id, InvokeDone done) {
      Call c{arn, std::move(payload), std::move(request_id)};
      worker::InvokeResult r;
      {
        std::lock_guard lock(mu);
        calls.push_back(c);
        r = answer(c);
      }
      done(std::move(r), "$LATEST");
    };
  }
  std::vector<Call> calls_to(const std::string& arn) {
    std::lock_guard lock(mu);
    std::vector<Call> out;
    for (auto& c : calls) if (c.function_arn == arn) out.push_back(c);
    return out;
  }
};

worker::InvokeResult function_error() {
  worker::InvokeResult r;
  r.payload = R"({"errorType":"Boom","errorMessage":"no"})";
  r.function_error = "Unhandled";
  return r;
}

class AsyncServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir = std::filesystem::temp_directory_path() /
          ("kiln-async-svc-" + std::to_string(::getpid()) + "-" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir);
    reopen();
  }
  void TearDown() override {
    service.reset();
    std::filesystem::remove_all(dir);
  }
  void reopen(Invoker invoker = nullptr) {
    service.reset();
    AsyncOptions o;
    o.store_file = dir / "events.db";
    o.retry_base_ms = 1000;
    o.max_in_flight = 4;
    auto s = AsyncService::open(o, invoker ? invoker : fns.invoker(), clock);
    ASSERT_TRUE(s.ok()) << s.status().message();
    service = std::move(*s);
  }
  Status enqueue(const std::string& request_id, const std::string& arn = kFn, const std::string& payload = "{}") {
    api::AsyncEvent ev{request_id, kAccount, arn, "", payload, clock.now_ms()};
    std::promise<Status> p;
    auto f = p.get_future();
    service->enqueue(ev, [&p](Status s) { p.set_value(s); });
    return f.get();
  }
  void run() {
    service->run_due();
    service->wait_idle();
  }
  void put_config(const std::string& json_text) {
    std::promise<Status> p;
    service->store().put_config({kAccount, kFn, "$LATEST", json_text}, [&p](Status s) { p.set_value(s); });
    ASSERT_TRUE(p.get_future().get().ok());
    reopen();  // configs load at open
  }

  std::filesystem::path dir;
  FakeClock clock;
  FakeFunctions fns;
  std::unique_ptr<AsyncService> service;
};

TEST_F(AsyncServiceTest, AcknowledgedEventRunsOnceWithItsRequestIdAndLeavesTheQueue) {
  ASSERT_TRUE(enqueue("req-1", kFn, R"({"k":"v"})").ok());
  run();
  auto calls = fns.calls_to(kFn);
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(calls[0].request_id, "req-1");
  EXPECT_EQ(calls[0].payload, R"({"k":"v"})");
  EXPECT_EQ(service->queued(), 0u);
  reopen();
  run();
  EXPECT_EQ(fns.calls_to(kFn).size(), 1u);  // nothing left to run after a restart
}

TEST_F(AsyncServiceTest, FunctionErrorIsRetriedTwiceOnScheduleThenKeptAsADeadLetter) {
  fns.answer = [](const Call&) { return function_error(); };
  ASSERT_TRUE(enqueue("req-1").ok());
  run();
  EXPECT_EQ(fns.calls.size(), 1u);
  clock.now += 999;
  run();
  EXPECT_EQ(fns.calls.size(), 1u);  // not before the base delay
  clock.now += 1;
  run();
  EXPECT_EQ(fns.calls.size(), 2u);
  clock.now += 1999;
  run();
  EXPECT_EQ(fns.calls.size(), 2u);  // second retry waits twice the base
  clock.now += 1;
  run();
  ASSERT_EQ(fns.calls.size(), 3u);
  for (auto& c : fns.calls) EXPECT_EQ(c.request_id, "req-1");
  clock.now += 100000;
  run();
  EXPECT_EQ(fns.calls.size(), 3u);
  auto dead = service->store().dead_letters(kAccount, "", 10);
  ASSERT_EQ(dead->size(), 1u);
  EXPECT_EQ((*dead)[0].condition, "RetriesExhausted");
  EXPECT_EQ((*dead)[0].attempts, 3);
  EXPECT_NE((*dead)[0].last_error.find("Boom"), std::string::npos);

  // Replay: a new request id, durable, the dead letter gone.
  fns.answer = [](const Call&) { return worker::InvokeResult{}; };
  auto rid = service->replay_dead_letter(kAccount, (*dead)[0].id);
  ASSERT_TRUE(rid.ok());
  EXPECT_NE(*rid, "req-1");
  run();
  EXPECT_EQ(fns.calls.back().request_id, *rid);
  EXPECT_TRUE(service->store().dead_letters(kAccount, "", 10)->empty());
  EXPECT_EQ(service->replay_dead_letter(kAccount, (*dead)[0].id).status().type(), "ResourceNotFoundException");
}

TEST_F(AsyncServiceTest, OnFailureDestinationReceivesLambdasInvocationRecord) {
  put_config(R"({"MaximumRetryAttempts":0,"DestinationConfig":{"OnFailure":{"Destination":")" + std::string(kDest) +
             R"("}}})");
  fns.answer = [](const Call& c) { return c.function_arn == kFn ? function_error() : worker::InvokeResult{}; };
  ASSERT_TRUE(enqueue("req-9", kFn, R"({"order":7})").ok());
  run();
  run();  // the destination's event
  auto dest = fns.calls_to(kDest);
  ASSERT_EQ(dest.size(), 1u);
  auto record = nlohmann::json::parse(dest[0].payload);
  EXPECT_EQ(record["version"], "1.0");
  EXPECT_EQ(record["requestContext"]["requestId"], "req-9");
  EXPECT_EQ(record["requestContext"]["functionArn"], std::string(kFn) + ":$LATEST");
  EXPECT_EQ(record["requestContext"]["condition"], "RetriesExhausted");
  EXPECT_EQ(record["requestContext"]["approximateInvokeCount"], 1);
  EXPECT_EQ(record["requestPayload"]["order"], 7);
  EXPECT_EQ(record["responseContext"]["statusCode"], 200);
  EXPECT_EQ(record["responseContext"]["functionError"], "Unhandled");
  EXPECT_EQ(record["responsePayload"]["errorType"], "Boom");
  EXPECT_TRUE(service->store().dead_letters(kAccount, "", 10)->empty());
}

TEST_F(AsyncServiceTest, ThrottlesRetryUntilTheEventIsTooOld) {
  put_config(R"({"MaximumEventAgeInSeconds":60})");
  fns.answer = [](const Call&) {
    worker::InvokeResult r;
    r.status = TooManyRequests("Rate Exceeded.");
    return r;
  };
  ASSERT_TRUE(enqueue("req-t").ok());
  for (int i = 0; i < 200 && service->queued() + service->running() > 0; ++i) {
    run();
    clock.now += 500;
  }
  EXPECT_GT(fns.calls.size(), 3u);  // more than MaximumRetryAttempts: throttles do not count
  auto dead = service->store().dead_letters(kAccount, "", 10);
  ASSERT_EQ(dead->size(), 1u);
  EXPECT_EQ((*dead)[0].condition, "EventAgeExceeded");
}

TEST_F(AsyncServiceTest, EventInFlightAtACrashRunsAgainAfterRestart) {
  std::vector<InvokeDone> held;  // the attempt never finishes: the process "dies"
  std::mutex mu;
  reopen([&](const std::string&, const std::string&, const std::string&, std::string, std::string, InvokeDone d) {
    std::lock_guard lock(mu);
    held.push_back(std::move(d));
  });
  ASSERT_TRUE(enqueue("req-c").ok());
  service->run_due();
  service->store().flush();  // the in-flight mark is durable
  {
    std::lock_guard lock(mu);
    ASSERT_EQ(held.size(), 1u);
  }
  service.reset();  // the held callback is never called: a crash mid-attempt
  reopen();
  EXPECT_EQ(service->recovered_in_flight(), 1u);
  run();
  ASSERT_EQ(fns.calls.size(), 1u);
  EXPECT_EQ(fns.calls[0].request_id, "req-c");
}

TEST_F(AsyncServiceTest, OneFunctionsBacklogDoesNotStarveAnother) {
  reopen();
  std::vector<InvokeDone> held;
  std::vector<std::string> order;
  std::mutex mu;
  AsyncOptions o;
  o.store_file = dir / "events.db";
  o.max_in_flight = 2;
  service.reset();
  auto s = AsyncService::open(o, [&](const std::string&, const std::string& arn, const std::string&, std::string,
                                     std::string, InvokeDone d) {
    std::lock_guard lock(mu);
    order.push_back(arn);
    held.push_back(std::move(d));
  }, clock);
  service = std::move(*s);
  for (int i = 0; i < 50; ++i) ASSERT_TRUE(enqueue("busy-" + std::to_string(i)).ok());
  ASSERT_TRUE(enqueue("quiet", kDest).ok());
  service->run_due();
  service->store().flush();
  std::lock_guard lock(mu);
  ASSERT_EQ(order.size(), 2u);  // the per-function limit (total - 1) kept a slot for the other function
  EXPECT_TRUE(order[0] == kDest || order[1] == kDest);
  for (auto& d : held) d(worker::InvokeResult{}, "$LATEST");
}

TEST_F(AsyncServiceTest, PollerKeepsWithinTheFunctionsReservedConcurrency) {
  // A function with reserved concurrency 1: the fake throttles a second concurrent
  // attempt, as the frontend's limiter would.
  std::mutex mu;
  std::vector<InvokeDone> held;
  int in_flight = 0, peak = 0, throttles = 0;
  reopen([&](const std::string&, const std::string&, const std::string&, std::string, std::string, InvokeDone d) {
    std::lock_guard lock(mu);
    if (in_flight == 1) {
      ++throttles;
      worker::InvokeResult r;
      r.status = TooManyRequests("Rate Exceeded.");
      r.payload = "ReservedFunctionConcurrentInvocationLimitExceeded";
      return d(std::move(r), "");
    }
    peak = std::max(peak, ++in_flight);
    held.push_back(std::move(d));
  });
  std::vector<std::pair<std::string, std::string>> asked;
  service->set_function_concurrency([&](const std::string& account, const std::string& name) {
    asked.emplace_back(account, name);
    return name == "f" ? std::optional<uint64_t>(1) : std::nullopt;
  });
  for (int i = 0; i < 6; ++i) ASSERT_TRUE(enqueue("r-" + std::to_string(i)).ok());
  for (int done = 0; done < 6; ++done) {
    service->run_due();
    service->store().flush();
    InvokeDone d;
    {
      std::lock_guard lock(mu);
      ASSERT_EQ(held.size(), 1u) << "event " << done;
      d = std::move(held.back());
      held.clear();
      --in_flight;
    }
    d(worker::InvokeResult{}, "$LATEST");
    service->store().flush();
  }
  service->wait_idle();
  EXPECT_EQ(peak, 1);
  EXPECT_EQ(throttles, 0) << "the poller ran more events than the function's reserved concurrency";
  EXPECT_EQ(service->queued(), 0u);
  ASSERT_FALSE(asked.empty());
  EXPECT_EQ(asked[0], std::make_pair(std::string(kAccount), std::string("f")));
}

TEST_F(AsyncServiceTest, ThrottledAttemptsAreNotAttemptsAndDoNotBackOff) {
  put_config(R"({"MaximumRetryAttempts":0,"DestinationConfig":{"OnSuccess":{"Destination":")" + std::string(kDest) +
             R"("}}})");
  int throttles_left = 12;
  fns.answer = [&](const Call& c) {
    worker::InvokeResult r;
    if (c.function_arn == kFn && throttles_left > 0) {
      --throttles_left;
      r.status = TooManyRequests("Rate Exceeded.");
      r.payload = "ReservedFunctionConcurrentInvocationLimitExceeded";
    }
    return r;
  };
  ASSERT_TRUE(enqueue("req-busy", kFn, R"({"n":1})").ok());
  const int64_t start = clock.now;
  for (int i = 0; i < 100 && fns.calls_to(kDest).empty(); ++i) {
    run();
    clock.now += 1000;  // one second per round: a growing backoff would fall far behind
  }
  EXPECT_EQ(throttles_left, 0);
  EXPECT_LE(clock.now - start, 20 * 1000) << "throttles backed off";
  auto dest = fns.calls_to(kDest);
  ASSERT_EQ(dest.size(), 1u);
  auto record = nlohmann::json::parse(dest[0].payload);
  EXPECT_EQ(record["requestContext"]["condition"], "Success");
  EXPECT_EQ(record["requestContext"]["approximateInvokeCount"], 1) << "throttles were counted as attempts";
  EXPECT_TRUE(service->store().dead_letters(kAccount, "", 10)->empty());
}

}  // namespace
}  // namespace kiln::async
