// The worker and its Environment with the process backend and a real runtime: a
// provided.al2023 function whose bootstrap is a small python3 script that speaks the
// Runtime API. The event says what the function does (echo, print, error, exit, sleep).
#include "worker/worker.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>

#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <future>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

#include "sandbox/sandbox.h"

namespace kiln::worker {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using nlohmann::json;

constexpr auto kWait = 30s;  // generous bound; a healthy run takes milliseconds

// The function. PID_FILE (from its environment) receives its pid; MODE=init_error posts
// /runtime/init/error and exits; MODE=init_exit exits during init.
constexpr char kBootstrap[] = R"PY(#!/usr/bin/python3
import http.client, json, os, sys, time
api = os.environ["AWS_LAMBDA_RUNTIME_API"]
with open(os.environ["PID_FILE"], "w") as f:
    f.write(str(os.getpid()))
with open(os.environ["PID_FILE"] + ".api", "w") as f:
    f.write(api)
mode = os.environ.get("MODE", "")
def call(method, path, body=None, headers={}):
    c = http.client.HTTPConnection(api)
    c.request(method, "/2018-06-01/runtime/" + path, body=body, headers=headers)
    r = c.getresponse()
    data = r.read()
    hdrs = dict(r.getheaders())
    c.close()
    return r.status, hdrs, data
if mode == "init_error":
    print("init is failing", flush=True)
    call("POST", "init/error", json.dumps({"errorType": "InitFailed", "errorMessage": "boom"}),
         {"Lambda-Runtime-Function-Error-Type": "InitFailed"})
    sys.exit(1)
if mode == "init_exit":
    sys.exit(7)
if os.environ.get("AWS_LAMBDA_INITIALIZATION_TYPE") == "snap-start":
    if mode == "before_fail":
        call("POST", "init/error", json.dumps({"errorType": "HookFailed", "errorMessage": "no snapshot"}),
             {"Lambda-Runtime-Function-Error-Type": "Runtime.BeforeSnapshotError"})
        sys.exit(1)
    status, _, body = call("GET", "restore/next")
    with open(os.environ["PID_FILE"] + ".restored", "w") as f:
        f.write("%d %s" % (status, body.decode()))
while True:
    status, hdrs, body = call("GET", "invocation/next")
    rid = hdrs["Lambda-Runtime-Aws-Request-Id"]
    event = json.loads(body)
    action = event.get("action")
    if action == "echo":
        call("POST", "invocation/" + rid + "/response", json.dumps({"echo": event, "rid": rid,
             "arn": hdrs.get("Lambda-Runtime-Invoked-Function-Arn", ""),
             "deadline": hdrs.get("Lambda-Runtime-Deadline-Ms", "")}))
    elif action == "print":
        print("hello from function", flush=True)
        print("to stderr", file=sys.stderr, flush=True)
        call("POST", "invocation/" + rid + "/response", "\"printed\"")
    elif action == "error":
        call("POST", "invocation/" + rid + "/error",
             json.dumps({"errorType": "MyError", "errorMessage": "bad thing"}),
             {"Lambda-Runtime-Function-Error-Type": "Unhandled"})
    elif action == "wrong_id":
        s, _, b = call("POST", "invocation/not-the-id/response", "\"x\"")
        call("POST", "invocation/" + rid + "/response", json.dumps({"wrong_id_status": s}))
    elif action == "exit":
        print("exiting now", flush=True)
        os._exit(3)
    elif action == "sleep":
        time.sleep(60)
    elif action == "big":
        call("POST", "invocation/" + rid + "/response", b"x" * event["size"])
    elif action == "spawn_and_exit":
        child = os.fork()
        if child == 0:
            time.sleep(60)
            os._exit(0)
        with open(os.environ["PID_FILE"] + ".child", "w") as f:
            f.write(str(child))
        os._exit(4)
    elif action == "close_output_and_nap":
        if event.get("close", True):
            os.close(1)
            os.close(2)
        time.sleep(event["seconds"])
        call("POST", "invocation/" + rid + "/response", "\"napped\"")
)PY";

class WorkerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/kiln-worker-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    fs::create_directories(dir_ / "code");
    fs::create_directories(dir_ / "runtimes" / "provided");
    {
      std::ofstream out(dir_ / "code" / "bootstrap");
      out << kBootstrap;
    }
    fs::permissions(dir_ / "code" / "bootstrap", fs::perms(0755));
    backend_ = sandbox::make_process_backend();
    logs_ = std::make_unique<LogStore>(dir_ / "logs");
    io_thread_ = std::thread([this] { io_.run(); });
    WorkerOptions options;
    options.runtimes_dir = dir_ / "runtimes";
    worker_ = std::make_unique<Worker>(io_, *backend_, *logs_, options);
  }

  void TearDown() override {
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

  registry::FunctionVersionPtr function(uint32_t timeout_s = 3, const std::string& mode = "") {
    auto f = std::make_shared<registry::FunctionVersion>();
    f->account_id = "123456789012";
    f->region = "us-east-1";
    f->name = "fn";
    f->runtime = "provided.al2023";
    f->role = "arn:aws:iam::123456789012:role/r";
    f->timeout_s = timeout_s;
    f->revision_id = "rev-" + std::to_string(++revision_);
    f->code_dir = dir_ / "code";
    f->environment.emplace_back("PID_FILE", (dir_ / ("pid" + std::to_string(revision_))).string());
    if (!mode.empty()) f->environment.emplace_back("MODE", mode);
    pid_file_ = dir_ / ("pid" + std::to_string(revision_));
    return f;
  }

  // Creates an environment; on_dead calls are counted.
  std::shared_ptr<Environment> create(registry::FunctionVersionPtr f, StartKind kind = StartKind::kOnDemand) {
    auto p = std::make_shared<std::promise<StatusOr<std::shared_ptr<Environment>>>>();
    worker_->create(
        std::move(f),
        [this](const std::shared_ptr<Environment>&) {
          std::lock_guard lock(mu_);
          dead_calls_++;
          cv_.notify_all();
        },
        [p](StatusOr<std::shared_ptr<Environment>> env) { p->set_value(std::move(env)); }, kind);
    auto fut = p->get_future();
    if (fut.wait_for(kWait) != std::future_status::ready) {
      ADD_FAILURE() << "create did not finish";
      return nullptr;
    }
    auto env = fut.get();
    if (!env.ok()) {
      ADD_FAILURE() << env.status().type() << ": " << env.status().message();
      return nullptr;
    }
    envs_.push_back(*env);
    return *env;
  }

  std::optional<InvokeResult> invoke(Environment& env, const json& event, const std::string& id,
                                     bool tail = false) {
    InvokeRequest req;
    req.request_id = id;
    req.payload = event.dump();
    req.invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:fn";
    req.tail_log = tail;
    auto p = std::make_shared<std::promise<InvokeResult>>();
    env.invoke(std::move(req), [p](InvokeResult r) { p->set_value(std::move(r)); });
    auto fut = p->get_future();
    if (fut.wait_for(kWait) != std::future_status::ready) {
      ADD_FAILURE() << "invoke " << id << " never completed";
      return std::nullopt;
    }
    return fut.get();
  }

  bool wait_for_dead_calls(int n) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, kWait, [&] { return dead_calls_ >= n; });
  }
  int dead_calls() {
    std::lock_guard lock(mu_);
    return dead_calls_;
  }

  pid_t runtime_pid() const {
    std::ifstream in(pid_file_);
    pid_t pid = 0;
    in >> pid;
    return pid;
  }
  static bool process_gone(pid_t pid) { return ::kill(pid, 0) == -1 && errno == ESRCH; }
  // Gone or a zombie (an orphan waits for its new parent to reap it).
  static bool process_dead(pid_t pid) {
    if (process_gone(pid)) return true;
    std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
    std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    size_t paren = stat.rfind(')');
    return paren != std::string::npos && paren + 2 < stat.size() && stat[paren + 2] == 'Z';
  }
  std::string read_text(const fs::path& p) const {
    std::ifstream in(p);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  }

  std::string log_file_text() {
    std::string all;
    for (auto& e : fs::recursive_directory_iterator(dir_ / "logs")) {
      if (!e.is_regular_file()) continue;
      std::ifstream in(e.path());
      std::stringstream ss;
      ss << in.rdbuf();
      all += ss.str();
    }
    return all;
  }

  fs::path dir_;
  fs::path pid_file_;
  int revision_ = 0;
  std::unique_ptr<sandbox::SandboxBackend> backend_;
  std::unique_ptr<LogStore> logs_;
  boost::asio::io_context io_;
  std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> work_{io_.get_executor()};
  std::thread io_thread_;
  std::unique_ptr<Worker> worker_;
  std::vector<std::shared_ptr<Environment>> envs_;
  std::mutex mu_;
  std::condition_variable cv_;
  int dead_calls_ = 0;  // guarded by mu_
};

TEST_F(WorkerTest, ColdStartThenWarmInvokeOnTheSameEnvironment) {
  auto env = create(function());
  ASSERT_TRUE(env);
  EXPECT_EQ(worker_->load(), 1u);
  EXPECT_EQ(env->key(), env->function()->sandbox_key());

  auto first = invoke(*env, {{"action", "echo"}, {"n", 1}}, "req-1");
  ASSERT_TRUE(first);
  EXPECT_TRUE(first->status.ok()) << first->status.message();
  EXPECT_EQ(first->function_error, "");
  EXPECT_TRUE(first->cold_start);
  json body = json::parse(first->payload);
  EXPECT_EQ(body["echo"]["n"], 1);
  EXPECT_EQ(body["rid"], "req-1");
  EXPECT_EQ(body["arn"], "arn:aws:lambda:us-east-1:123456789012:function:fn");
  EXPECT_FALSE(body["deadline"].get<std::string>().empty());
  const pid_t pid = runtime_pid();

  auto second = invoke(*env, {{"action", "echo"}, {"n", 2}}, "req-2");
  ASSERT_TRUE(second);
  EXPECT_FALSE(second->cold_start);
  EXPECT_EQ(json::parse(second->payload)["echo"]["n"], 2);
  EXPECT_EQ(runtime_pid(), pid) << "the same runtime process served both";
  EXPECT_TRUE(env->reusable());
  EXPECT_EQ(dead_calls(), 0);
}

Status await_init_of(Environment& env) {
  auto p = std::make_shared<std::promise<Status>>();
  env.await_init([p](Status s) { p->set_value(std::move(s)); });
  auto fut = p->get_future();
  if (fut.wait_for(kWait) != std::future_status::ready) return ServiceError("init never settled");
  return fut.get();
}

// SnapStart, the worker's side: an environment started to be snapshotted is initialized
// at the runtime's /restore/next, which stays unanswered (the snapshot is taken while the
// runtime waits on it); snapshot_point() names the process and the request to replay.
TEST_F(WorkerTest, ForSnapshotStopsAtRestoreNextUnanswered) {
  auto env = create(function(), StartKind::kForSnapshot);
  ASSERT_TRUE(env);
  ASSERT_TRUE(await_init_of(*env).ok());
  auto point = env->snapshot_point();
  ASSERT_TRUE(point);
  EXPECT_EQ(point->replay, "GET /2018-06-01/runtime/restore/next HTTP/1.1");
  EXPECT_EQ(point->pid, runtime_pid());
  std::this_thread::sleep_for(100ms);  // (an answer, if any were sent, would land here)
  EXPECT_FALSE(fs::exists(pid_file_.string() + ".restored")) << "restore/next was answered";
}

TEST_F(WorkerTest, ForSnapshotHookErrorFailsInit) {
  auto env = create(function(3, "before_fail"), StartKind::kForSnapshot);
  ASSERT_TRUE(env);
  Status s = await_init_of(*env);
  EXPECT_EQ(s.type(), "Runtime.BeforeSnapshotError");
  EXPECT_NE(s.message().find("no snapshot"), std::string::npos) << s.message();
  EXPECT_FALSE(env->snapshot_point());
}

// A SnapStart version started cold (no snapshot): its /restore/next is answered at once.
TEST_F(WorkerTest, RestoreNextOnDemandIsAnsweredAtOnce) {
  auto f = std::make_shared<registry::FunctionVersion>(*function());
  f->snap_start = true;
  f->version = "3";
  auto env = create(f);
  ASSERT_TRUE(env);
  auto r = invoke(*env, {{"action", "echo"}}, "req-snap");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->function_error, "");
  EXPECT_EQ(read_text(pid_file_.string() + ".restored"), "200 {}");
  EXPECT_FALSE(env->snapshot_point());
}

TEST_F(WorkerTest, FunctionErrorIsUnhandledWithItsErrorDocument) {
  auto env = create(function());
  ASSERT_TRUE(env);
  auto r = invoke(*env, {{"action", "error"}}, "req-err");
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->status.ok());
  EXPECT_EQ(r->function_error, "Unhandled");
  json doc = json::parse(r->payload);
  EXPECT_EQ(doc["errorType"], "MyError");
  EXPECT_EQ(doc["errorMessage"], "bad thing");
  // A handled function error does not break the environment.
  EXPECT_TRUE(env->reusable());
  auto next = invoke(*env, {{"action", "echo"}}, "req-after");
  ASSERT_TRUE(next);
  EXPECT_EQ(next->function_error, "");
}

TEST_F(WorkerTest, ResultForAnotherRequestIdIsRefused) {
  auto env = create(function());
  ASSERT_TRUE(env);
  auto r = invoke(*env, {{"action", "wrong_id"}}, "req-w");
  ASSERT_TRUE(r);
  EXPECT_EQ(json::parse(r->payload)["wrong_id_status"], 400);
}

TEST_F(WorkerTest, RuntimeExitMidInvokeIsExitErrorAndNotReusable) {
  auto env = create(function());
  ASSERT_TRUE(env);
  ASSERT_TRUE(invoke(*env, {{"action", "echo"}}, "warm"));
  const pid_t pid = runtime_pid();
  auto r = invoke(*env, {{"action", "exit"}}, "req-exit");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->function_error, "Unhandled");
  json doc = json::parse(r->payload);
  EXPECT_EQ(doc["errorType"], "Runtime.ExitError");
  EXPECT_NE(doc["errorMessage"].get<std::string>().find("RequestId: req-exit"), std::string::npos) << doc;
  EXPECT_NE(doc["errorMessage"].get<std::string>().find("exit status 3"), std::string::npos) << doc;
  EXPECT_FALSE(env->reusable());
  EXPECT_TRUE(wait_for_dead_calls(1));
  worker_->drain();
  EXPECT_TRUE(process_gone(pid));
  EXPECT_EQ(worker_->load(), 0u);
}

TEST_F(WorkerTest, InvokeAfterRuntimeDiedFailsFast) {
  auto env = create(function());
  ASSERT_TRUE(env);
  ASSERT_TRUE(invoke(*env, {{"action", "exit"}}, "req-exit"));
  ASSERT_TRUE(wait_for_dead_calls(1));
  auto r = invoke(*env, {{"action", "echo"}}, "req-late");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->function_error, "Unhandled");
  EXPECT_EQ(json::parse(r->payload)["errorType"], "Runtime.ExitError");
  EXPECT_EQ(dead_calls(), 1) << "on_dead is called once";
}

TEST_F(WorkerTest, TimeoutKillsTheRuntimeAndReportsTaskTimedOut) {
  auto env = create(function(/*timeout_s=*/1));
  ASSERT_TRUE(env);
  ASSERT_TRUE(invoke(*env, {{"action", "echo"}}, "warm"));
  const pid_t pid = runtime_pid();
  ASSERT_GT(pid, 0);
  const auto start = std::chrono::steady_clock::now();
  auto r = invoke(*env, {{"action", "sleep"}}, "req-slow");
  const auto took = std::chrono::steady_clock::now() - start;
  ASSERT_TRUE(r);
  EXPECT_EQ(r->function_error, "Unhandled");
  json doc = json::parse(r->payload);
  EXPECT_EQ(doc["errorType"], "Sandbox.Timedout");
  EXPECT_NE(doc["errorMessage"].get<std::string>().find("Task timed out after 1.00 seconds"), std::string::npos)
      << doc;
  EXPECT_GE(took, 1s) << "not before the timeout";
  EXPECT_FALSE(env->reusable());
  EXPECT_TRUE(wait_for_dead_calls(1));
  worker_->drain();
  EXPECT_TRUE(process_gone(pid)) << "the sleeping runtime was killed";
  EXPECT_NE(log_file_text().find("req-slow Task timed out after 1.00 seconds"), std::string::npos);
}

TEST_F(WorkerTest, InitErrorReturnsTheErrorDocument) {
  auto env = create(function(3, "init_error"));
  ASSERT_TRUE(env);
  auto r = invoke(*env, {{"action", "echo"}}, "req-init");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->function_error, "Unhandled");
  json doc = json::parse(r->payload);
  EXPECT_EQ(doc["errorType"], "InitFailed");
  EXPECT_EQ(doc["errorMessage"], "boom");
  EXPECT_FALSE(env->reusable());
  // Every later invoke on it gets the same answer, and it is never reused.
  auto again = invoke(*env, {{"action", "echo"}}, "req-init-2");
  ASSERT_TRUE(again);
  EXPECT_EQ(json::parse(again->payload)["errorType"], "InitFailed");
}

TEST_F(WorkerTest, ExitDuringInitIsExitError) {
  auto env = create(function(3, "init_exit"));
  ASSERT_TRUE(env);
  auto r = invoke(*env, {{"action", "echo"}}, "req-init-exit");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->function_error, "Unhandled");
  json doc = json::parse(r->payload);
  EXPECT_EQ(doc["errorType"], "Runtime.ExitError");
  EXPECT_FALSE(env->reusable());
  EXPECT_TRUE(wait_for_dead_calls(1));
}

TEST_F(WorkerTest, LogTailHasStartEndReportAndFunctionOutput) {
  auto env = create(function());
  ASSERT_TRUE(env);
  auto r = invoke(*env, {{"action", "print"}}, "req-log", /*tail=*/true);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->payload, "\"printed\"");
  const std::string& tail = r->log_tail;
  const size_t start = tail.find("START RequestId: req-log Version: $LATEST");
  const size_t out = tail.find("hello from function");
  const size_t err = tail.find("to stderr");
  const size_t end = tail.find("END RequestId: req-log");
  const size_t report = tail.find("REPORT RequestId: req-log");
  ASSERT_NE(start, std::string::npos) << tail;
  ASSERT_NE(out, std::string::npos) << tail;
  ASSERT_NE(err, std::string::npos) << tail;
  ASSERT_NE(end, std::string::npos) << tail;
  ASSERT_NE(report, std::string::npos) << tail;
  EXPECT_LT(start, out);
  EXPECT_LT(out, end);
  EXPECT_LT(end, report);
  EXPECT_NE(tail.find("Init Duration:"), std::string::npos) << "first invoke is a cold start: " << tail;

  // Without tail_log nothing is collected, but the log stream on disk has it all.
  auto quiet = invoke(*env, {{"action", "print"}}, "req-quiet");
  ASSERT_TRUE(quiet);
  EXPECT_EQ(quiet->log_tail, "");
  const std::string file = log_file_text();
  EXPECT_NE(file.find("START RequestId: req-quiet"), std::string::npos) << file;
  EXPECT_NE(file.find("REPORT RequestId: req-quiet"), std::string::npos) << file;
  EXPECT_NE(file.find("hello from function"), std::string::npos) << file;
}

TEST_F(WorkerTest, RetireKillsTheRuntimeProcess) {
  auto env = create(function());
  ASSERT_TRUE(env);
  ASSERT_TRUE(invoke(*env, {{"action", "echo"}}, "warm"));
  const pid_t pid = runtime_pid();
  ASSERT_GT(pid, 0);
  ASSERT_FALSE(process_gone(pid));
  env->retire();
  env->retire();  // idempotent
  EXPECT_FALSE(env->reusable());
  worker_->drain();
  EXPECT_TRUE(process_gone(pid));
  EXPECT_EQ(worker_->load(), 0u);
}

TEST_F(WorkerTest, RetireDuringInvokeCompletesItWithAServiceError) {
  auto env = create(function(/*timeout_s=*/30));
  ASSERT_TRUE(env);
  ASSERT_TRUE(invoke(*env, {{"action", "echo"}}, "warm"));
  const pid_t pid = runtime_pid();
  auto p = std::make_shared<std::promise<InvokeResult>>();
  InvokeRequest req;
  req.request_id = "req-retired";
  req.payload = json{{"action", "sleep"}}.dump();
  env->invoke(std::move(req), [p](InvokeResult r) { p->set_value(std::move(r)); });
  env->retire();
  auto fut = p->get_future();
  ASSERT_EQ(fut.wait_for(kWait), std::future_status::ready);
  InvokeResult r = fut.get();
  EXPECT_FALSE(r.status.ok());
  EXPECT_EQ(r.status.type(), "ServiceException");
  worker_->drain();
  EXPECT_TRUE(process_gone(pid));
}

TEST_F(WorkerTest, ResponseAtTheSizeLimitIsReturned) {
  auto env = create(function());
  ASSERT_TRUE(env);
  auto r = invoke(*env, {{"action", "big"}, {"size", kMaxResponseBytes}}, "req-big");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->function_error, "");
  EXPECT_EQ(r->payload.size(), kMaxResponseBytes);
  EXPECT_TRUE(env->reusable());
}

TEST_F(WorkerTest, ResponseOverTheSizeLimitIsResponseSizeTooLarge) {
  auto env = create(function());
  ASSERT_TRUE(env);
  auto r = invoke(*env, {{"action", "big"}, {"size", kMaxResponseBytes + 1}}, "req-too-big");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->function_error, "Unhandled");
  json doc = json::parse(r->payload);
  EXPECT_EQ(doc["errorType"], "Function.ResponseSizeTooLarge");
  EXPECT_NE(doc["errorMessage"].get<std::string>().find("6291556"), std::string::npos) << doc;
  EXPECT_FALSE(env->reusable());
}

TEST_F(WorkerTest, RuntimeExitKillsTheProcessesItLeftBehind) {
  auto env = create(function());
  ASSERT_TRUE(env);
  auto r = invoke(*env, {{"action", "spawn_and_exit"}}, "req-spawn");
  ASSERT_TRUE(r);
  EXPECT_EQ(json::parse(r->payload)["errorType"], "Runtime.ExitError");
  ASSERT_TRUE(wait_for_dead_calls(1));
  worker_->drain();
  const pid_t child = std::stoi(read_text(fs::path(pid_file_.string() + ".child")));
  ASSERT_GT(child, 0);
  // SIGKILL was sent by destroy(); its delivery is asynchronous, so poll with a bound.
  const auto deadline = std::chrono::steady_clock::now() + kWait;
  while (!process_dead(child) && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
  EXPECT_TRUE(process_dead(child)) << "the runtime's child " << child << " survived";
}

TEST_F(WorkerTest, DroppingAnEnvironmentClosesItsRuntimeApi) {
  auto env = create(function());
  ASSERT_TRUE(env);
  ASSERT_TRUE(invoke(*env, {{"action", "echo"}}, "warm"));
  const std::string api = read_text(fs::path(pid_file_.string() + ".api"));
  const pid_t pid = runtime_pid();
  envs_.clear();
  env.reset();  // the last reference, without retire()
  // A marker through the io thread: a handler that held the environment has finished.
  std::promise<void> marker;
  boost::asio::post(io_, [&] { marker.set_value(); });
  ASSERT_EQ(marker.get_future().wait_for(kWait), std::future_status::ready);
  worker_->drain();
  EXPECT_TRUE(process_gone(pid));
  boost::asio::io_context client_io;
  boost::asio::ip::tcp::socket s(client_io);
  boost::system::error_code ec;
  const uint16_t port = static_cast<uint16_t>(std::stoi(api.substr(api.find(':') + 1)));
  s.connect({boost::asio::ip::make_address("127.0.0.1"), port}, ec);
  EXPECT_EQ(ec, boost::asio::error::connection_refused) << "the Runtime API of a destroyed environment still listens on " << api;
}

TEST_F(WorkerTest, ClosedRuntimeOutputDoesNotSpinTheEventLoop) {
  auto env = create(function());
  ASSERT_TRUE(env);
  ASSERT_TRUE(invoke(*env, {{"action", "echo"}}, "warm"));
  auto nap = [&](bool close_output, const std::string& id) {
    timespec before{}, after{};
    ::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &before);
    auto r = invoke(*env, {{"action", "close_output_and_nap"}, {"seconds", 1.0}, {"close", close_output}}, id);
    ::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &after);
    EXPECT_TRUE(r && r->payload == "\"napped\"");
    return double(after.tv_sec - before.tv_sec) + double(after.tv_nsec - before.tv_nsec) / 1e9;
  };
  const double open_cpu = nap(false, "req-nap-open");
  const double closed_cpu = nap(true, "req-nap-closed");
  // The function naps for 1 s each time; an idle worker uses well under 1 ms of CPU meanwhile.
  EXPECT_LT(open_cpu, 0.1) << open_cpu << " s with stdout open";
  EXPECT_LT(closed_cpu, 0.1) << closed_cpu << " s of CPU (vs " << open_cpu
                             << " s with stdout open): the worker spins while the runtime's stdout is at EOF";
}

TEST_F(WorkerTest, MissingBootstrapFailsCreate) {
  fs::remove(dir_ / "code" / "bootstrap");
  auto p = std::make_shared<std::promise<StatusOr<std::shared_ptr<Environment>>>>();
  worker_->create(function(), nullptr, [p](StatusOr<std::shared_ptr<Environment>> e) { p->set_value(std::move(e)); });
  auto fut = p->get_future();
  ASSERT_EQ(fut.wait_for(kWait), std::future_status::ready);
  auto env = fut.get();
  ASSERT_FALSE(env.ok());
  EXPECT_EQ(env.status().type(), "Runtime.InvalidEntrypoint");
  EXPECT_EQ(worker_->load(), 0u);
}

TEST_F(WorkerTest, UnknownRuntimeFailsCreate) {
  auto f = std::make_shared<registry::FunctionVersion>(*function());
  f->runtime = "cobol85";
  auto p = std::make_shared<std::promise<StatusOr<std::shared_ptr<Environment>>>>();
  worker_->create(f, nullptr, [p](StatusOr<std::shared_ptr<Environment>> e) { p->set_value(std::move(e)); });
  auto fut = p->get_future();
  ASSERT_EQ(fut.wait_for(kWait), std::future_status::ready);
  EXPECT_FALSE(fut.get().ok());
  EXPECT_EQ(worker_->load(), 0u);
}

}  // namespace
}  // namespace kiln::worker
