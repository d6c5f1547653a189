#include "worker/environment.h"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/http/field.hpp>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <ctime>

#include "common/json_text.h"
#include "common/log.h"
#include "worker/runtime_api.h"

namespace kiln::worker {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;

namespace {

constexpr size_t kTailBytes = 4096;
constexpr auto kInitLimit = std::chrono::seconds(10);  // Lambda's init phase limit

net::Response runtime_reply(http::status status, std::string body) {
  net::Response r(status, 11);
  r.set(http::field::content_type, "application/json");
  r.body() = std::move(body);
  return r;
}

net::Response accepted() { return runtime_reply(http::status::accepted, R"({"status":"OK"})"); }

net::Response runtime_error(http::status status, const std::string& type, const std::string& message) {
  return runtime_reply(status, error_document(type, message));
}

// Lambda's JSON log format: platform records as one JSON line each.
std::string iso_time_now() {
  int64_t ms = epoch_ms_now();
  std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[96];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms % 1000));
  return buf;
}

std::string platform_start_json(const std::string& id, const std::string& version) {
  return R"({"time":")" + iso_time_now() + R"(","type":"platform.start","record":{"requestId":")" + id +
         R"(","version":")" + version + R"("}})";
}

std::string platform_report_json(const std::string& id, double duration, uint32_t memory_mb, uint64_t max_mb,
                                 std::optional<double> init_ms, bool restored, bool error) {
  char metrics[256];
  std::snprintf(metrics, sizeof metrics,
                R"("durationMs":%.3f,"billedDurationMs":%lld,"memorySizeMB":%u,"maxMemoryUsedMB":%llu)", duration,
                static_cast<long long>(std::ceil(duration)), memory_mb, static_cast<unsigned long long>(max_mb));
  std::string m = metrics;
  if (init_ms && restored) {
    std::snprintf(metrics, sizeof metrics, R"(,"restoreDurationMs":%.3f,"billedRestoreDurationMs":%lld)", *init_ms,
                  static_cast<long long>(std::ceil(*init_ms)));
    m += metrics;
  } else if (init_ms) {
    std::snprintf(metrics, sizeof metrics, R"(,"initDurationMs":%.3f)", *init_ms);
    m += metrics;
  }
  return R"({"time":")" + iso_time_now() + R"(","type":"platform.report","record":{"requestId":")" + id +
         R"(","metrics":{)" + m + R"(},"status":")" + (error ? "error" : "success") + R"("}})";
}

// A runtime uses one or two connections, posts at most a 6 MB response and may keep a
// connection idle through an invocation (up to its Timeout); these bounds are far from
// that and keep one sandbox from exhausting Kiln's descriptors or memory.
net::ServerOptions runtime_api_options(const registry::FunctionVersion& f) {
  net::ServerOptions o;
  o.body_limit = kRuntimeApiBodyLimit;
  o.max_connections = kRuntimeApiMaxConnections;
  o.buffer_budget = 2 * kRuntimeApiBodyLimit + 2 * 1024 * 1024;
  o.idle_timeout = std::chrono::seconds(f.timeout_s) + kInitLimit + std::chrono::seconds(60);
  o.read_timeout = std::chrono::seconds(60);
  o.over_budget = [] {
    return runtime_error(http::status::payload_too_large, "RequestEntityTooLarge",
                         "The Runtime API is holding too many unfinished requests of this sandbox");
  };
  return o;
}

double ms_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t).count();
}

int dup_cloexec(int fd) {
  // SAFETY: duplicates a descriptor the sandbox owns so Asio can own its copy.
  return ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
}

}  // namespace

Environment::Environment(asio::io_context& io, registry::FunctionVersionPtr function,
                         std::unique_ptr<sandbox::Sandbox> sandbox, int output_fd,
                         std::unique_ptr<LogStream> log, Hooks hooks)
    : io_(io), function_(std::move(function)), key_(function_->sandbox_key()), id_(sandbox->id()),
      hooks_(std::move(hooks)), sandbox_(std::move(sandbox)), log_(std::move(log)),
      exit_watch_(io), output_(io), timer_(io), created_(std::chrono::steady_clock::now()), init_since_(created_) {
  boost::system::error_code ec;
  exit_watch_.assign(dup_cloexec(sandbox_->exit_fd()), ec);
  output_.assign(output_fd, ec);
  output_.non_blocking(true, ec);
}

Environment::~Environment() {
  if (runtime_api_) runtime_api_->stop();  // its pending accept would keep the port open
  if (sandbox_ && hooks_.destroy) hooks_.destroy(std::move(sandbox_));
}

void Environment::start() {
  std::weak_ptr<Environment> weak = weak_from_this();
  std::lock_guard lock(mu_);
  boost::system::error_code ec;
  tcp::acceptor acceptor(io_);
  acceptor.assign(tcp::v4(), dup_cloexec(sandbox_->runtime_api_fd()), ec);
  net::ServerOptions options = runtime_api_options(*function_);
  options.too_large = [weak]() {
    if (auto self = weak.lock()) return self->on_response_too_large();
    return runtime_error(http::status::payload_too_large, "RequestEntityTooLarge", "request too large");
  };
  runtime_api_ = std::make_shared<net::HttpServer>(
      io_, std::move(acceptor),
      [weak](net::Request&& request, net::ResponderPtr responder) {
        if (auto self = weak.lock()) {
          self->on_runtime_request(std::move(request), std::move(responder));
        } else {
          responder->respond(runtime_error(http::status::gone, "SandboxGone", "sandbox retired"));
        }
      },
      std::move(options));
  runtime_api_->start();
  exit_watch_.async_wait(asio::posix::stream_descriptor::wait_read, [weak](boost::system::error_code ec) {
    if (ec) return;
    if (auto self = weak.lock()) self->on_exit();
  });
  arm_timer_locked(kInitLimit, 0);
  watch_output();
}

void Environment::set_start_kind(StartKind kind, std::chrono::steady_clock::time_point since,
                                 std::vector<std::pair<std::string, std::string>> restore_headers) {
  std::lock_guard lock(mu_);
  start_kind_ = kind;
  if (since != std::chrono::steady_clock::time_point{}) init_since_ = since;
  restore_headers_ = std::move(restore_headers);
}

std::optional<Environment::SnapshotPoint> Environment::snapshot_point() const {
  std::lock_guard lock(mu_);
  if (start_kind_ != StartKind::kForSnapshot || !init_ms_ || dead_ || broken_ || !sandbox_ ||
      snapshot_replay_.empty()) {
    return std::nullopt;
  }
  return SnapshotPoint{sandbox_->host_pid(), snapshot_replay_};
}

void Environment::set_init_not_reported() {
  std::lock_guard lock(mu_);
  init_reported_ = true;
}

bool Environment::reusable() const {
  std::lock_guard lock(mu_);
  return !broken_ && !dead_;
}

bool Environment::busy() const {
  std::lock_guard lock(mu_);
  return current_.has_value();
}

uint64_t Environment::max_memory_bytes() const {
  std::lock_guard lock(mu_);
  return sandbox_ ? sandbox_->max_memory_bytes() : 0;
}

void Environment::watch_output() {
  std::weak_ptr<Environment> weak = weak_from_this();
  output_.async_wait(asio::posix::stream_descriptor::wait_read, [weak](boost::system::error_code ec) {
    if (ec) return;
    auto self = weak.lock();
    if (!self) return;
    std::lock_guard lock(self->mu_);
    if (self->dead_) return;
    bool open = self->drain_output_locked();
    // What a running function prints reaches its log now (aws logs tail --follow);
    // only the lines gathered at completion are written together.
    self->flush_log_locked();
    if (open) {
      self->watch_output();
    } else {
      // The runtime closed its stdout and stderr: an EOF pipe is always readable, so
      // stop watching rather than spin.
      boost::system::error_code ignored;
      self->output_.close(ignored);
    }
  });
}

void Environment::invoke(InvokeRequest request, InvokeDone done) {
  std::function<void()> after;
  {
    std::lock_guard lock(mu_);
    if (current_) {
      // Broken invariant: the assignment service leased a busy sandbox.
      log::error("sandbox " + id_ + " got a second invocation while running one");
      after = [done, id = request.request_id] {
        done({ServiceError("RequestId: " + id + " Error: sandbox busy"), "", "", "", false});
      };
    } else {
      Current c;
      c.request = std::move(request);
      c.done = std::move(done);
      c.seq = ++seq_;
      c.cold = !init_reported_;
      init_reported_ = true;
      current_ = std::move(c);
      if (dead_ || broken_) {
        after = !init_error_.empty() ? complete_locked(init_error_, "Unhandled")
                                     : fail_locked("Runtime.ExitError", "Runtime exited before the invocation");
      } else if (!init_error_.empty()) {
        after = complete_locked(init_error_, "Unhandled");
      } else if (parked_next_) {
        deliver_locked(std::move(parked_next_));
      }
    }
  }
  if (after) after();
}

void Environment::deliver_locked(net::ResponderPtr responder) {
  Current& c = *current_;
  c.delivered = true;
  c.started = std::chrono::steady_clock::now();
  auto timeout = std::chrono::seconds(function_->timeout_s);
  int64_t deadline = epoch_ms_now() + std::chrono::duration_cast<std::chrono::milliseconds>(timeout).count();
  arm_timer_locked(timeout, c.seq);
  log_start_locked(c.request.request_id);

  net::Response r(http::status::ok, 11);
  r.set(http::field::content_type, "application/json");
  r.set("Lambda-Runtime-Aws-Request-Id", c.request.request_id);
  r.set("Lambda-Runtime-Deadline-Ms", std::to_string(deadline));
  r.set("Lambda-Runtime-Invoked-Function-Arn", c.request.invoked_function_arn);
  r.set("Lambda-Runtime-Trace-Id", c.request.trace_id);
  if (!c.request.client_context.empty()) r.set("Lambda-Runtime-Client-Context", c.request.client_context);
  r.body() = c.request.payload;
  responder->respond(std::move(r));
}

void Environment::arm_timer_locked(std::chrono::steady_clock::duration after, uint64_t seq) {
  timer_.expires_after(after);
  std::weak_ptr<Environment> weak = weak_from_this();
  timer_.async_wait([weak, seq](boost::system::error_code ec) {
    if (ec) return;
    if (auto self = weak.lock()) self->on_timeout(seq);
  });
}

void Environment::on_runtime_request(net::Request&& request, net::ResponderPtr responder) {
  RuntimeRoute route = route_runtime_request(request.method_string(), request.target());
  switch (route.call) {
    case RuntimeCall::kNext: return handle_next(std::move(responder));
    case RuntimeCall::kInitError: return handle_init_error(std::move(request), std::move(responder));
    case RuntimeCall::kRestoreNext: return handle_restore_next(std::move(responder));
    case RuntimeCall::kRestoreError: return handle_restore_error(std::move(request), std::move(responder));
    case RuntimeCall::kResponse: return handle_result(route.request_id, std::move(request), false, std::move(responder));
    case RuntimeCall::kError: return handle_result(route.request_id, std::move(request), true, std::move(responder));
    case RuntimeCall::kUnknown: break;
  }
  responder->respond(runtime_error(http::status::not_found, "UnknownPath", "not a Runtime API path"));
}

void Environment::await_init(std::function<void(Status)> done) {
  std::function<void()> after;
  {
    std::lock_guard lock(mu_);
    init_waiter_ = std::move(done);
    if (init_ms_) {
      after = init_settled_locked(Status::Ok());
    } else if (!init_error_.empty()) {
      after = init_settled_locked({400, "Runtime.InitError", init_error_});
    } else if (dead_ || broken_) {
      after = init_settled_locked({400, "Runtime.ExitError", "the runtime exited during init"});
    }
  }
  if (after) after();
}

std::function<void()> Environment::init_settled_locked(Status result) {
  if (!init_waiter_) return nullptr;
  return [waiter = std::move(init_waiter_), result = std::move(result)] { waiter(result); };
}

void Environment::handle_next(net::ResponderPtr responder) {
  std::function<void()> after;
  {
    std::lock_guard lock(mu_);
    if (!init_ms_) {
      init_ms_ = ms_since(init_since_);
      if (!current_) timer_.cancel();  // init finished within its limit
      if (start_kind_ == StartKind::kForSnapshot && snapshot_replay_.empty()) {
        snapshot_replay_ = "GET /2018-06-01/runtime/invocation/next HTTP/1.1";
      }
      after = init_settled_locked(Status::Ok());
    }
    if (current_ && !current_->delivered) {
      deliver_locked(std::move(responder));
    } else {
      parked_next_ = std::move(responder);
    }
  }
  if (after) after();
}

void Environment::handle_restore_next(net::ResponderPtr responder) {
  std::function<void()> after;
  {
    std::lock_guard lock(mu_);
    if (start_kind_ == StartKind::kForSnapshot && !init_ms_) {
      // The snapshot point: answered only in the copies restored from the snapshot.
      init_ms_ = ms_since(init_since_);
      if (!current_) timer_.cancel();
      snapshot_replay_ = "GET /2018-06-01/runtime/restore/next HTTP/1.1";
      parked_restore_ = std::move(responder);
      after = init_settled_locked(Status::Ok());
    }
  }
  if (after) return after();
  if (!responder) return;
  net::Response r(http::status::ok, 11);
  r.set(http::field::content_type, "application/json");
  for (const auto& [name, value] : restore_headers_) r.set(name, value);
  r.body() = "{}";
  responder->respond(std::move(r));
}

void Environment::handle_restore_error(net::Request&& request, net::ResponderPtr responder) {
  if (start_kind_ == StartKind::kOnDemand) return handle_init_error(std::move(request), std::move(responder));
  std::function<void()> after;
  {
    std::lock_guard lock(mu_);
    const bool before_snapshot = start_kind_ == StartKind::kForSnapshot;
    std::string body = posted_error(std::move(request.body()), request["Lambda-Runtime-Function-Error-Type"],
                                    before_snapshot ? "Runtime.BeforeSnapshotError" : "Runtime.AfterRestoreError",
                                    before_snapshot ? "before-snapshot hook failed" : "after-restore hook failed");
    broken_ = true;
    log_line_locked(std::string(before_snapshot ? "INIT_REPORT Init Duration: " : "RESTORE_REPORT Restore Duration: ") +
                    std::to_string(ms_since(init_since_)) + " ms\tStatus: error");
    Status failure = before_snapshot ? Status(400, "Runtime.BeforeSnapshotError", body)
                                     : Status(400, "SnapStartException",
                                              "The afterRestore() runtime hook encountered an error: " + body);
    if (current_ && !current_->delivered) after = complete_locked("", "", failure);
    if (auto waiter = init_settled_locked(failure)) {
      after = after ? std::function<void()>([a = after, waiter] { a(); waiter(); }) : waiter;
    }
  }
  responder->respond(accepted());
  if (after) after();
}

void Environment::handle_result(const std::string& id, net::Request&& request, bool error,
                                net::ResponderPtr responder) {
  std::function<void()> after;
  {
    std::lock_guard lock(mu_);
    if (!current_ || !current_->delivered || current_->request.request_id != id) {
      responder->respond(runtime_error(http::status::bad_request, "InvalidRequestID", "Invalid request ID"));
      return;
    }
    if (error) {
      std::string body = posted_error(std::move(request.body()), request["Lambda-Runtime-Function-Error-Type"],
                                      "Unhandled", "");
      after = complete_locked(std::move(body), "Unhandled");
    } else if (request.body().size() > kMaxResponseBytes) {
      responder->respond(runtime_error(http::status::payload_too_large, "RequestEntityTooLarge",
                                       "Response payload too large"));
      after = fail_locked("Function.ResponseSizeTooLarge",
                          "Response payload size (" + std::to_string(request.body().size()) +
                              " bytes) exceeded maximum allowed payload size (" +
                              std::to_string(kMaxResponseBytes) + " bytes).");
      responder.reset();
    } else {
      after = complete_locked(std::move(request.body()), "");
    }
  }
  // The caller's answer first: the 202 wakes the runtime, and that send would otherwise
  // sit on the invoke's critical path (the runtime has nothing to do until /next).
  if (after) after();
  if (responder) responder->respond(accepted());
}

net::Response Environment::on_response_too_large() {
  std::function<void()> after;
  {
    std::lock_guard lock(mu_);
    if (current_ && current_->delivered) {
      after = fail_locked("Function.ResponseSizeTooLarge",
                          "Response payload size exceeded maximum allowed payload size (" +
                              std::to_string(kMaxResponseBytes) + " bytes).");
    }
  }
  if (after) after();
  return runtime_error(http::status::payload_too_large, "RequestEntityTooLarge", "Response payload too large");
}

void Environment::handle_init_error(net::Request&& request, net::ResponderPtr responder) {
  std::function<void()> after;
  {
    std::lock_guard lock(mu_);
    std::string body = posted_error(std::move(request.body()), request["Lambda-Runtime-Function-Error-Type"],
                                    "Runtime.Unknown", "init failed");
    init_error_ = body;
    broken_ = true;
    log_line_locked("INIT_REPORT Init Duration: " + std::to_string(ms_since(created_)) + " ms\tPhase: init\tStatus: error");
    if (current_ && !current_->delivered) after = complete_locked(body, "Unhandled");
    // Lambda's runtimes report a failed before-snapshot hook as an init error of this type.
    const bool hook = start_kind_ == StartKind::kForSnapshot &&
                      request["Lambda-Runtime-Function-Error-Type"] == "Runtime.BeforeSnapshotError";
    if (auto waiter = init_settled_locked({400, hook ? "Runtime.BeforeSnapshotError" : "Runtime.InitError", body})) {
      after = after ? std::function<void()>([a = after, waiter] { a(); waiter(); }) : waiter;
    }
  }
  responder->respond(accepted());
  if (after) after();
}

void Environment::on_exit() {
  std::function<void()> after;
  {
    std::lock_guard lock(mu_);
    if (dead_) return;
    drain_output_locked();
    bool oom = sandbox_ && sandbox_->out_of_memory();
    int status = 0;
    std::string how = "exit status 0";
    // SAFETY: WNOWAIT only peeks at the exit status: the backend's destroy() reaps the
    // process, so its pid cannot be reused while the backend still refers to it.
    siginfo_t info{};
    if (::waitid(P_PIDFD, static_cast<id_t>(exit_watch_.native_handle()), &info,
                 WEXITED | WNOHANG | WNOWAIT) == 0 &&
        info.si_pid != 0) {
      status = info.si_status;
      how = info.si_code == CLD_EXITED ? "exit status " + std::to_string(status)
                                       : std::string("signal: ") + (status == SIGKILL ? "killed" : std::to_string(status));
    }
    if (oom) how = "signal: killed";
    broken_ = true;
    if (current_) {
      if (!init_error_.empty() && !current_->delivered) {
        after = complete_locked(init_error_, "Unhandled");
      } else {
        after = fail_locked(oom ? "Runtime.OutOfMemory" : "Runtime.ExitError",
                            "RequestId: " + current_->request.request_id + " Error: Runtime exited with error: " + how);
      }
    }
    if (auto waiter = init_settled_locked(
            {400, "Runtime.ExitError", init_error_.empty() ? "Runtime exited with error: " + how : init_error_})) {
      after = after ? std::function<void()>([a = after, waiter] { a(); waiter(); }) : waiter;
    }
    kill_locked();
  }
  if (after) after();
  if (hooks_.on_dead) hooks_.on_dead(shared_from_this());
}

void Environment::on_timeout(uint64_t seq) {
  std::function<void()> after;
  {
    std::lock_guard lock(mu_);
    if (dead_) return;
    if (seq == 0) {
      // Init phase limit.
      if (init_ms_) return;
      broken_ = true;
      if (current_) {
        after = fail_locked("Runtime.InitTimeout", "RequestId: " + current_->request.request_id +
                                                       " Error: Init phase timed out after 10.00 seconds");
      }
      if (auto waiter = init_settled_locked({400, "Runtime.InitTimeout", "Init phase timed out after 10.00 seconds"})) {
        after = after ? std::function<void()>([a = after, waiter] { a(); waiter(); }) : waiter;
      }
    } else {
      if (!current_ || current_->seq != seq) return;
      broken_ = true;
      char msg[128];
      std::snprintf(msg, sizeof msg, "Task timed out after %.2f seconds", static_cast<double>(function_->timeout_s));
      log_line_locked(current_->request.request_id.empty() ? msg : (current_->request.request_id + " " + msg));
      after = fail_locked("Sandbox.Timedout", "RequestId: " + current_->request.request_id + " Error: " + msg);
    }
    kill_locked();
  }
  if (after) after();
  if (hooks_.on_dead) hooks_.on_dead(shared_from_this());
}

bool Environment::drain_output_locked(int max_reads) {
  if (!output_.is_open()) return false;
  char buf[16384];
  // At most max_reads x 16 KB per call: a function that floods its output waits on its own pipe
  // (back-pressure) instead of holding an event-loop thread from other sandboxes.
  for (int reads = 0; reads < max_reads; ++reads) {
    // SAFETY: non-blocking read into a stack buffer from the pipe we own.
    ssize_t n = ::read(output_.native_handle(), buf, sizeof buf);
    if (n == 0) return false;  // every writer is gone
    if (n < 0) return errno == EAGAIN || errno == EINTR;
    partial_line_.append(buf, static_cast<size_t>(n));
    size_t start = 0;
    for (size_t nl; (nl = partial_line_.find('\n', start)) != std::string::npos; start = nl + 1) {
      log_line_locked(std::string_view(partial_line_).substr(start, nl - start));
    }
    partial_line_.erase(0, start);
    if (partial_line_.size() > 256 * 1024) {  // a line without end: cut it
      log_line_locked(partial_line_);
      partial_line_.clear();
    }
  }
  return true;  // more may be waiting: the next wakeup reads it
}


void Environment::log_start_locked(const std::string& id) {
  if (function_->log_format != "JSON") {
    log_line_locked("START RequestId: " + id + " Version: " + function_->version);
  } else if (function_->system_log_level != "WARN") {
    log_line_locked(platform_start_json(id, function_->version));
  }
}

void Environment::log_line_locked(std::string_view line) {
  // Batched: a fast invocation's START, output, END and REPORT go in one write.
  pending_log_.append(line);
  pending_log_.push_back('\n');
  if (pending_log_.size() > 64 * 1024) flush_log_locked();
  if (current_ && current_->request.tail_log) {
    current_->log.append(line);
    current_->log.push_back('\n');
    if (current_->log.size() > 4 * kTailBytes) current_->log.erase(0, current_->log.size() - kTailBytes);
  }
}

void Environment::flush_log_locked() {
  if (pending_log_.empty()) return;
  if (log_) log_->append(epoch_ms_now(), pending_log_);
  pending_log_.clear();
}

std::function<void()> Environment::complete_locked(std::string payload, std::string function_error, Status status) {
  timer_.cancel();
  drain_output_locked(256);  // what the function printed before answering, bounded
  if (!partial_line_.empty()) {
    log_line_locked(partial_line_);
    partial_line_.clear();
  }
  Current& c = *current_;
  const std::string& id = c.request.request_id;
  if (!c.delivered) {
    log_start_locked(id);
    c.started = std::chrono::steady_clock::now();
  }
  double duration = ms_since(c.started);
  uint64_t max_mb = sandbox_ ? (sandbox_->max_memory_bytes() + (1 << 20) - 1) >> 20 : 0;
  char report[512];
  int n = std::snprintf(report, sizeof report,
                        "REPORT RequestId: %s\tDuration: %.2f ms\tBilled Duration: %lld ms\tMemory Size: %u MB\t"
                        "Max Memory Used: %llu MB\t",
                        id.c_str(), duration, static_cast<long long>(std::ceil(duration)), function_->memory_mb,
                        static_cast<unsigned long long>(max_mb));
  std::string report_line(report, static_cast<size_t>(n));
  const bool restored = start_kind_ == StartKind::kRestored;
  if (c.cold && init_ms_) {
    if (restored) {
      std::snprintf(report, sizeof report, "Restore Duration: %.2f ms\tBilled Restore Duration: %lld ms\t",
                    *init_ms_, static_cast<long long>(std::ceil(*init_ms_)));
    } else {
      std::snprintf(report, sizeof report, "Init Duration: %.2f ms\t", *init_ms_);
    }
    report_line += report;
  }
  if (function_->log_format != "JSON") {
    log_line_locked("END RequestId: " + id);
    log_line_locked(report_line);
  } else if (function_->system_log_level != "WARN") {  // platform records are INFO
    log_line_locked(platform_report_json(id, duration, function_->memory_mb, max_mb,
                                         c.cold ? init_ms_ : std::nullopt, restored,
                                         !function_error.empty() || !status.ok()));
  }

  InvokeResult result;
  result.status = std::move(status);
  result.payload = std::move(payload);
  result.function_error = std::move(function_error);
  result.cold_start = c.cold;
  result.duration_ms = duration;
  result.init_ms = c.cold && init_ms_ ? *init_ms_ : 0;
  result.restored = restored;
  result.max_memory_mb = max_mb;
  if (c.request.tail_log) {
    result.log_tail = c.log.size() > kTailBytes ? c.log.substr(c.log.size() - kTailBytes) : c.log;
  }
  InvokeDone done = std::move(c.done);
  current_.reset();
  flush_log_locked();
  return [done = std::move(done), result = std::move(result)]() mutable { done(std::move(result)); };
}

std::function<void()> Environment::fail_locked(const std::string& type, const std::string& message) {
  broken_ = true;
  return complete_locked(error_document(type, message), "Unhandled");
}

void Environment::kill_locked() {
  dead_ = true;
  flush_log_locked();
  boost::system::error_code ec;
  timer_.cancel();
  exit_watch_.close(ec);
  output_.close(ec);
  if (runtime_api_) runtime_api_->stop();
  runtime_api_.reset();
  parked_next_.reset();
  parked_restore_.reset();
  if (sandbox_ && hooks_.destroy) hooks_.destroy(std::move(sandbox_));
}

void Environment::retire() {
  std::function<void()> after;
  {
    std::lock_guard lock(mu_);
    if (current_) after = complete_locked("", "", ServiceError("The sandbox was retired during the invocation"));
    if (auto waiter = init_settled_locked(ServiceError("The sandbox was retired before it initialized"))) {
      after = after ? std::function<void()>([a = after, waiter] { a(); waiter(); }) : waiter;
    }
    if (!dead_) kill_locked();
  }
  if (after) after();
}

}  // namespace kiln::worker
