// An execution environment: one sandbox, the Runtime API its runtime talks to, and the
// invocation it is running. At most one invocation at a time. Created by the Worker,
// leased through the AssignmentService.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "assignment/assignment.h"
#include "net/http_server.h"
#include "registry/function.h"
#include "sandbox/sandbox.h"
#include "worker/invocation.h"
#include "worker/log_store.h"

namespace kiln::worker {

// Bounds of each sandbox's Runtime API server (see runtime_api_options in the .cc): a
// request body above the limit answers 413; connections beyond the count are closed
// unread (each would cost Kiln a descriptor).
inline constexpr uint64_t kRuntimeApiBodyLimit = 7 * 1024 * 1024;
inline constexpr uint64_t kRuntimeApiMaxConnections = 8;

// How an environment's runtime starts (SnapStart, issue 11):
// - kOnDemand: from scratch, as always. A runtime that still calls /restore/next (a
//   SnapStart version started cold because its snapshot could not be used) is answered
//   at once.
// - kForSnapshot: from scratch, to be snapshotted: init is complete when the runtime
//   calls /restore/next (its before-snapshot hooks have run) or, for a runtime that does
//   not take part, its first /invocation/next. That request stays unanswered: the
//   snapshot is taken while the runtime waits on it (snapshot_point()). A
//   /restore/error fails init with the runtime's error (a before-snapshot hook failed).
// - kRestored: restored from a snapshot; the runtime's first request is the replayed
//   /restore/next (or /invocation/next), answered at once. Its init is complete at its
//   first /invocation/next (after its after-restore hooks), measured from the start of
//   the restore: its REPORT shows Restore Duration instead of Init Duration. A
//   /restore/error (an after-restore hook failed) fails the sandbox, and an invoke
//   waiting on it answers SnapStartException.
enum class StartKind { kOnDemand, kForSnapshot, kRestored };

class Environment : public assignment::Assignable, public std::enable_shared_from_this<Environment> {
 public:
  struct Hooks {
    // Tears a sandbox down off the event loop (blocking work).
    std::function<void(std::unique_ptr<sandbox::Sandbox>)> destroy;
    // The runtime died, timed out or failed to initialize in time (not called by
    // retire()); called at most once, on any thread.
    std::function<void(const std::shared_ptr<Environment>&)> on_dead;
  };

  // Takes ownership of the sandbox and of output_fd (read end of its stdout/stderr).
  Environment(boost::asio::io_context& io, registry::FunctionVersionPtr function,
              std::unique_ptr<sandbox::Sandbox> sandbox, int output_fd,
              std::unique_ptr<LogStream> log, Hooks hooks);
  ~Environment() override;
  // Starts serving the Runtime API and watching the runtime. Call once, right after
  // construction.
  void start();

  const std::string& key() const override { return key_; }
  bool reusable() const override;
  void retire() override;

  // Runs one invocation. Requires: no other invocation is running here. `done` is called
  // exactly once, on any thread.
  void invoke(InvokeRequest request, InvokeDone done);

  // Calls `done` once the runtime has initialized (its first /next: Ok) or has failed to
  // (init error, exit, init timeout: the error, with the runtime's error document as
  // message). Its first invocation still reports the Init Duration, as Lambda does for
  // environments it initialized ahead of demand. Call at most once; any thread.
  void await_init(std::function<void(Status)> done);
  // Initialized for provisioned concurrency: no invocation reports an Init Duration, as
  // Lambda shows none for such environments. Call before its first invocation.
  void set_init_not_reported();

  // Before start(): how the runtime starts. For kRestored, `since` is when the restore
  // began (its Restore Duration counts from there) and `restore_headers` go on the
  // answer to the replayed /restore/next (what differs per copy, e.g. the log stream).
  void set_start_kind(StartKind kind, std::chrono::steady_clock::time_point since = {},
                      std::vector<std::pair<std::string, std::string>> restore_headers = {});
  StartKind start_kind() const { return start_kind_; }
  // kForSnapshot, once await_init() has succeeded: the sandbox's first process (host
  // pid) and the request line the runtime is blocked on, to replay after a restore.
  struct SnapshotPoint {
    pid_t pid = -1;
    std::string replay;  // e.g. "GET /2018-06-01/runtime/restore/next HTTP/1.1"
  };
  std::optional<SnapshotPoint> snapshot_point() const;

  const registry::FunctionVersionPtr& function() const { return function_; }
  const std::string& id() const { return id_; }
  // For the operator's listing (thread-safe): running an invocation now; peak memory of
  // the sandbox's cgroup; when it was created.
  bool busy() const;
  uint64_t max_memory_bytes() const;
  std::chrono::steady_clock::time_point created() const { return created_; }

 private:
  struct Current {
    InvokeRequest request;
    InvokeDone done;
    uint64_t seq = 0;
    bool delivered = false;
    bool cold = false;
    std::chrono::steady_clock::time_point started;
    std::string log;  // this invocation's log, for LogType Tail
  };

  void on_runtime_request(net::Request&& request, net::ResponderPtr responder);
  void handle_next(net::ResponderPtr responder);
  void handle_result(const std::string& id, net::Request&& request, bool error, net::ResponderPtr responder);
  void handle_init_error(net::Request&& request, net::ResponderPtr responder);
  void handle_restore_next(net::ResponderPtr responder);
  void handle_restore_error(net::Request&& request, net::ResponderPtr responder);
  net::Response on_response_too_large();
  void on_exit();
  void on_timeout(uint64_t seq);
  void watch_output();

  // All *_locked functions require mu_ held.
  void deliver_locked(net::ResponderPtr responder);
  void arm_timer_locked(std::chrono::steady_clock::duration after, uint64_t seq);
  // Reads what the runtime wrote so far; false once the pipe is at EOF or closed.
  bool drain_output_locked(int max_reads = 64);
  void log_line_locked(std::string_view line);
  void flush_log_locked();
  // START line, or platform.start record for LogFormat JSON (none at SystemLogLevel WARN).
  void log_start_locked(const std::string& id);
  // Finishes the current invocation; returns the callback to run after unlocking.
  std::function<void()> complete_locked(std::string payload, std::string function_error, Status status = {});
  std::function<void()> fail_locked(const std::string& type, const std::string& message);
  void kill_locked();
  // Takes the init waiter, to call after unlocking with `result`.
  std::function<void()> init_settled_locked(Status result);

  boost::asio::io_context& io_;
  const registry::FunctionVersionPtr function_;
  const std::string key_;
  const std::string id_;
  Hooks hooks_;

  mutable std::mutex mu_;
  std::unique_ptr<sandbox::Sandbox> sandbox_;          // guarded by mu_
  std::unique_ptr<LogStream> log_;                     // guarded by mu_
  std::shared_ptr<net::HttpServer> runtime_api_;       // guarded by mu_
  boost::asio::posix::stream_descriptor exit_watch_;   // guarded by mu_
  boost::asio::posix::stream_descriptor output_;       // guarded by mu_
  boost::asio::steady_timer timer_;                    // guarded by mu_
  std::optional<Current> current_;                     // guarded by mu_
  net::ResponderPtr parked_next_;                      // guarded by mu_
  std::string partial_line_;                           // guarded by mu_
  std::string pending_log_;                            // guarded by mu_: lines not yet written
  std::chrono::steady_clock::time_point created_;
  std::optional<double> init_ms_;                      // guarded by mu_; set at first /next
  bool init_reported_ = false;                         // guarded by mu_
  std::string init_error_;                             // guarded by mu_: error document
  bool broken_ = false;                                // guarded by mu_
  std::function<void(Status)> init_waiter_;            // guarded by mu_
  bool dead_ = false;                                  // guarded by mu_
  uint64_t seq_ = 0;                                   // guarded by mu_
  StartKind start_kind_ = StartKind::kOnDemand;        // set before start()
  std::chrono::steady_clock::time_point init_since_;   // set before start(): created_ or the restore's start
  std::vector<std::pair<std::string, std::string>> restore_headers_;  // set before start()
  std::string snapshot_replay_;                        // guarded by mu_: kForSnapshot's pending request
  net::ResponderPtr parked_restore_;                   // guarded by mu_: kForSnapshot's /restore/next
};

}  // namespace kiln::worker
