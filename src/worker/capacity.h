// Host capacity for new sandboxes: the scaling rate (Lambda's "1,000 new execution
// environments per function every 10 seconds"), the host memory Kiln may reserve for
// sandboxes and the file descriptors they cost Kiln, reclaiming idle sandboxes of other
// functions before it refuses.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <unordered_map>

#include "assignment/assignment.h"
#include "common/status.h"
#include "registry/function.h"

namespace kiln::worker {

class Worker;

// Lambda's ThrottleReason values used by capacity refusals.
inline constexpr const char* kScaleRateReason = "FunctionInvocationRateLimitExceeded";
inline constexpr const char* kHostMemoryReason = "ConcurrentInvocationLimitExceeded";
inline constexpr const char* kHostFdReason = "ConcurrentInvocationLimitExceeded";

// Descriptors a sandbox holds in Kiln, measured with /proc/PID/fd (jail backend, one
// runtime connection): its Runtime API listener and connection, output pipe, exit
// watch, log file and the backend's own (cgroup, pidfd, ...). Each further Runtime API
// connection costs one more, up to the server's connection limit: capacity charges the
// worst case so a sandbox can never take another's descriptors.
inline constexpr uint64_t kFdsPerSandboxBase = 12;
uint64_t fds_per_sandbox();  // kFdsPerSandboxBase + the Runtime API's extra connections

// Descriptors kept for everything but sandboxes (frontend connections, SQLite, log
// segments, async work) beyond those open when the worker starts.
uint64_t fd_headroom(uint64_t fd_limit);  // max(64, fd_limit / 8)

// How many sandboxes fit under `fd_limit` (RLIMIT_NOFILE) when `open_now` are in use.
uint64_t sandboxes_by_fds(uint64_t fd_limit, uint64_t open_now);

// This process's soft RLIMIT_NOFILE, and how many descriptors it has open.
uint64_t fd_soft_limit();
uint64_t open_fd_count();

// Per-function token bucket: `rate` new sandboxes per `window`, refilled continuously, so
// a burst of `rate` is admitted at once and then `rate` more per window. Thread-safe;
// time is injected so tests control it. rate 0 = unlimited.
class ScaleRate {
 public:
  using Clock = std::function<std::chrono::steady_clock::time_point()>;
  explicit ScaleRate(uint64_t rate = 1000, std::chrono::steady_clock::duration window = std::chrono::seconds(10),
                     Clock clock = [] { return std::chrono::steady_clock::now(); });
  // Takes one token of `function` (e.g. "account:name"); false when it has none left.
  bool try_start(const std::string& function);

 private:
  struct Bucket {
    double tokens = 0;
    std::chrono::steady_clock::time_point at;
  };
  uint64_t rate_;
  std::chrono::steady_clock::duration window_;
  Clock clock_;
  std::mutex mu_;
  std::unordered_map<std::string, Bucket> buckets_;  // guarded by mu_
};

// Makes room on `w` for a sandbox of `memory_mb` needed by `spare_key`: while it does not
// fit (memory or descriptors), retires the idle sandbox of another key that has been idle longest. Returns whether
// it fits now (a concurrent creation may still take the room first: Worker::create
// re-checks atomically). A retired sandbox frees its reservation at once.
bool make_room(Worker& w, assignment::AssignmentService& assignment, const std::string& spare_key,
               uint64_t memory_mb);

// Admits one new on-demand sandbox of `f` on `w`: the worker's scaling rate for the
// function, then host memory and descriptors (after make_room). On refusal: 429 TooManyRequestsException
// and *reason = Lambda's ThrottleReason. Sandboxes made ahead of demand (update
// preparation, provisioned concurrency) skip the scaling rate: call make_room only.
Status admit_new_sandbox(Worker& w, assignment::AssignmentService& assignment, const registry::FunctionVersion& f,
                         std::string* reason);

}  // namespace kiln::worker
