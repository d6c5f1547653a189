#include "async/retry_policy.h"

#include <gtest/gtest.h>

namespace kiln::async {
namespace {

constexpr int64_t kBase = 60000;
constexpr int64_t kT0 = 1'700'000'000'000;

TEST(RetryPolicy, SuccessSettles) {
  Decision d = decide({kT0, 1, 0, 0}, OutcomeKind::kSuccess, {}, kBase, kT0 + 5);
  EXPECT_EQ(d.kind, Decision::kSucceeded);
}

TEST(RetryPolicy, FunctionErrorsRetryAfterOneThenTwoBaseDelaysThenExhaust) {
  RetrySettings s;  // 2 retries
  Decision first = decide({kT0, 1, 1, 0}, OutcomeKind::kFunctionError, s, kBase, kT0);
  ASSERT_EQ(first.kind, Decision::kRetry);
  EXPECT_EQ(first.next_attempt_ms, kT0 + kBase);
  Decision second = decide({kT0, 2, 2, 0}, OutcomeKind::kFunctionError, s, kBase, kT0 + kBase);
  ASSERT_EQ(second.kind, Decision::kRetry);
  EXPECT_EQ(second.next_attempt_ms, kT0 + 3 * kBase);
  Decision third = decide({kT0, 3, 3, 0}, OutcomeKind::kFunctionError, s, kBase, kT0 + 3 * kBase);
  EXPECT_EQ(third.kind, Decision::kFailed);
  EXPECT_EQ(third.condition, "RetriesExhausted");
}

TEST(RetryPolicy, ZeroRetriesFailsOnFirstFunctionError) {
  Decision d = decide({kT0, 1, 1, 0}, OutcomeKind::kFunctionError, {0, 21600}, kBase, kT0);
  EXPECT_EQ(d.kind, Decision::kFailed);
  EXPECT_EQ(d.condition, "RetriesExhausted");
}

TEST(RetryPolicy, RetryThatWouldBeTooOldFailsWithEventAgeExceeded) {
  RetrySettings s{2, 60};
  Decision d = decide({kT0, 1, 1, 0}, OutcomeKind::kFunctionError, s, kBase, kT0 + 1);
  EXPECT_EQ(d.kind, Decision::kFailed);
  EXPECT_EQ(d.condition, "EventAgeExceeded");
}

TEST(RetryPolicy, ThrottlesRetryWithGrowingBackoffRegardlessOfRetryAttempts) {
  RetrySettings s{0, 21600};
  int64_t prev = 0;
  for (int n = 1; n <= 12; ++n) {
    Decision d = decide({kT0, n, 0, n}, OutcomeKind::kRetryablePlatform, s, kBase, kT0);
    ASSERT_EQ(d.kind, Decision::kRetry) << n;
    int64_t delay = d.next_attempt_ms - kT0;
    EXPECT_GE(delay, prev);
    EXPECT_LE(delay, 5 * kBase);
    prev = delay;
  }
  EXPECT_EQ(platform_error_delay_ms(1, kBase), 1000);
  EXPECT_EQ(platform_error_delay_ms(2, kBase), 2000);
  EXPECT_EQ(platform_error_delay_ms(30, kBase), 5 * kBase);
}

TEST(RetryPolicy, ThrottlesStopWhenTheEventIsTooOld) {
  RetrySettings s{2, 60};
  Decision d = decide({kT0, 5, 0, 5}, OutcomeKind::kRetryablePlatform, s, kBase, kT0 + 59'999);
  EXPECT_EQ(d.kind, Decision::kFailed);
  EXPECT_EQ(d.condition, "EventAgeExceeded");
}

TEST(RetryPolicy, PermanentPlatformErrorFailsAtOnce) {
  Decision d = decide({kT0, 1, 0, 1}, OutcomeKind::kPermanentPlatform, {}, kBase, kT0);
  EXPECT_EQ(d.kind, Decision::kFailed);
}

TEST(RetryPolicy, TinyBaseStillWaitsAtLeastOneMillisecond) {
  EXPECT_EQ(platform_error_delay_ms(1, 1), 1);
  EXPECT_EQ(function_error_delay_ms(1, 0), 1);
}

}  // namespace
}  // namespace kiln::async
