#include "async/retry_policy.h"

#include <algorithm>

namespace kiln::async {

int64_t function_error_delay_ms(int n, int64_t base_ms) { return std::max<int64_t>(1, base_ms * std::max(1, n)); }

int64_t platform_error_delay_ms(int n, int64_t base_ms) {
  int64_t cap = std::max<int64_t>(1, base_ms * 5);
  int64_t d = std::max<int64_t>(1, base_ms / 60);
  for (int i = 1; i < n && d < cap; ++i) d *= 2;
  return std::min(d, cap);
}

int64_t throttle_delay_ms(int64_t base_ms) { return std::clamp<int64_t>(base_ms / 60, 1, 1000); }

Decision decide(const EventProgress& p, OutcomeKind outcome, const RetrySettings& s, int64_t base_ms,
                int64_t now_ms) {
  Decision d;
  int64_t delay = 0;
  switch (outcome) {
    case OutcomeKind::kSuccess:
      d.kind = Decision::kSucceeded;
      return d;
    case OutcomeKind::kPermanentPlatform:
      d.kind = Decision::kFailed;
      d.condition = "RetriesExhausted";
      return d;
    case OutcomeKind::kFunctionError:
      if (p.function_errors > s.maximum_retry_attempts) {
        d.kind = Decision::kFailed;
        d.condition = "RetriesExhausted";
        return d;
      }
      delay = function_error_delay_ms(p.function_errors, base_ms);
      break;
    case OutcomeKind::kRetryablePlatform:
      delay = platform_error_delay_ms(p.platform_errors, base_ms);
      break;
  }
  if (now_ms + delay > expiry_ms(p, s)) {
    d.kind = Decision::kFailed;
    d.condition = "EventAgeExceeded";
    return d;
  }
  d.kind = Decision::kRetry;
  d.next_attempt_ms = now_ms + delay;
  return d;
}

}  // namespace kiln::async
