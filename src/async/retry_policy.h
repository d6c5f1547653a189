// What happens to an asynchronous event after an attempt: done, retried later, or failed
// for good. Pure functions of the event's progress, the outcome and the time: no clock,
// no store, so that every rule is tested with injected time.
#pragma once

#include <cstdint>
#include <string>

namespace kiln::async {

// The event invoke config's retry settings (Lambda's defaults).
struct RetrySettings {
  int maximum_retry_attempts = 2;          // 0-2: retries after a function error
  int maximum_event_age_seconds = 21600;   // 60-21600
};

// Durable counters of one event.
struct EventProgress {
  int64_t received_ms = 0;
  int attempts = 0;         // invocations started (Lambda's approximateInvokeCount)
  int function_errors = 0;  // attempts that ended in a function error or timeout
  int platform_errors = 0;  // attempts that failed in Kiln (throttles are not attempts)
};

enum class OutcomeKind {
  kSuccess,
  kFunctionError,      // the function failed (Unhandled, timeout): counts against retries
  kRetryablePlatform,  // Kiln's own error: retried until the event is too old
  kPermanentPlatform,  // the function is gone or the event is unrunnable: fail now
};

struct Decision {
  enum Kind { kSucceeded, kRetry, kFailed } kind = kSucceeded;
  int64_t next_attempt_ms = 0;  // kRetry: when
  std::string condition;        // kFailed: "RetriesExhausted" or "EventAgeExceeded"
};

// Delay before retry number `n` (1-based) after a function error: base, then 2 x base.
int64_t function_error_delay_ms(int n, int64_t base_ms);
// Delay after the n-th (1-based) throttle or platform error: base/60 doubling, at most
// 5 x base (with the default base of one minute: 1 s, 2 s, 4 s ... up to 5 minutes).
int64_t platform_error_delay_ms(int n, int64_t base_ms);

// Delay before an event whose attempt was throttled runs again: fixed, base/60 capped at
// one second (throttles are not attempts and do not back off: the poller already keeps
// within the function's concurrency, so a throttle means a brief contention).
int64_t throttle_delay_ms(int64_t base_ms);

// The event's deadline: received + maximum age.
inline int64_t expiry_ms(const EventProgress& p, const RetrySettings& s) {
  return p.received_ms + int64_t{s.maximum_event_age_seconds} * 1000;
}

// Decides after an attempt. `progress` already counts this attempt (attempts and the
// matching error counter incremented by the caller).
Decision decide(const EventProgress& progress, OutcomeKind outcome, const RetrySettings& settings,
                int64_t base_ms, int64_t now_ms);

}  // namespace kiln::async
