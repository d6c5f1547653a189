// What the frontend tells an observer (metrics) about every invoke it executes. Called on
// the invoke path from any thread: implementations must be cheap and thread-safe
// (atomics; no locks held across the call, no I/O, no formatting).
#pragma once

#include "registry/function.h"
#include "worker/invocation.h"

namespace kiln::api {

class InvokeObserver {
 public:
  virtual ~InvokeObserver() = default;
  // An invoke of `f` starts executing (it counts toward concurrency until its end).
  virtual void on_invoke_start(const registry::FunctionVersion& f) = 0;
  // It ended with `result` (a platform error, a function error or a response). Called
  // exactly once per on_invoke_start, throttled invokes included.
  virtual void on_invoke_end(const registry::FunctionVersion& f, const worker::InvokeResult& result) = 0;
  // The invoke was refused for lack of capacity (429), before any sandbox ran it.
  virtual void on_throttle(const registry::FunctionVersion& f) = 0;
};

}  // namespace kiln::api
