// Host capacity for new sandboxes: the scaling rate (Lambda's "1,000 new execution
// environments per function every 10 seconds") and the host memory Kiln may reserve for
// sandboxes, reclaiming idle sandboxes of other functions before it refuses.
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
// fit, retires the idle sandbox of another key that has been idle longest. Returns whether
// it fits now (a concurrent creation may still take the room first: Worker::create
// re-checks atomically). A retired sandbox frees its reservation at once.
bool make_room(Worker& w, assignment::AssignmentService& assignment, const std::string& spare_key,
               uint64_t memory_mb);

// Admits one new on-demand sandbox of `f` on `w`: the worker's scaling rate for the
// function, then host memory (after make_room). On refusal: 429 TooManyRequestsException
// and *reason = Lambda's ThrottleReason. Sandboxes made ahead of demand (update
// preparation, provisioned concurrency) skip the scaling rate: call make_room only.
Status admit_new_sandbox(Worker& w, assignment::AssignmentService& assignment, const registry::FunctionVersion& f,
                         std::string* reason);

}  // namespace kiln::worker
