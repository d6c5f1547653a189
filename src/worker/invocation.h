// One invocation as the worker sees it: the event going in, the result coming out.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

#include "common/status.h"

namespace kiln::worker {

inline constexpr size_t kMaxResponseBytes = 6291556;  // Lambda's sync response limit

struct InvokeRequest {
  std::string request_id;
  std::string payload;
  std::string invoked_function_arn;
  std::string client_context;  // decoded JSON text, may be empty
  std::string trace_id;
  bool tail_log = false;  // collect the last 4 KB of this invocation's log
};

struct InvokeResult {
  Status status;               // a platform failure (not the function's): no payload
  std::string payload;         // the function's response, or its error document
  std::string function_error;  // "" or "Unhandled"
  std::string log_tail;        // raw last 4 KB of this invocation's log, if requested
  bool cold_start = false;
  // Measured as the REPORT line has them (0 when the invocation never ran).
  double duration_ms = 0;
  double init_ms = 0;          // 0 when warm; the Restore Duration when restored
  bool restored = false;       // the sandbox was restored from a snapshot (SnapStart)
  uint64_t max_memory_mb = 0;  // peak of the sandbox's cgroup
};

using InvokeDone = std::function<void(InvokeResult)>;

}  // namespace kiln::worker
