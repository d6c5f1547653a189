#include "concurrency/limiter.h"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

namespace kiln::concurrency {
namespace {

constexpr const char* kAcct = "123456789012";

TEST(Limiter, AdmitsUpToTheAccountLimitThenRefusesWithAccountReason) {
  Limiter l(3);
  Permit p[4];
  for (int i = 0; i < 3; ++i) EXPECT_EQ(l.try_acquire(kAcct, "f", &p[i]), Refusal::kNone);
  EXPECT_EQ(l.try_acquire(kAcct, "g", &p[3]), Refusal::kAccountLimit);
  EXPECT_STREQ(reason_name(Refusal::kAccountLimit), "ConcurrentInvocationLimitExceeded");
  p[0].release();
  EXPECT_EQ(l.try_acquire(kAcct, "g", &p[3]), Refusal::kNone);
  EXPECT_EQ(l.unreserved_in_flight(kAcct), 3);
}

TEST(Limiter, ReleaseIsIdempotentAndDefaultPermitReleasesNothing) {
  Limiter l(1);
  Permit empty;
  empty.release();
  Permit p;
  ASSERT_EQ(l.try_acquire(kAcct, "f", &p), Refusal::kNone);
  p.release();
  p.release();
  EXPECT_EQ(l.unreserved_in_flight(kAcct), 0);
}

TEST(Limiter, AccountsHaveSeparatePools) {
  Limiter l(1);
  Permit a, b, c;
  EXPECT_EQ(l.try_acquire("111111111111", "f", &a), Refusal::kNone);
  EXPECT_EQ(l.try_acquire("222222222222", "f", &b), Refusal::kNone);
  EXPECT_EQ(l.try_acquire("111111111111", "f", &c), Refusal::kAccountLimit);
}

TEST(Limiter, ReservedFunctionRunsExactlyItsReservation) {
  Limiter l(1000);
  ASSERT_TRUE(l.set_reserved(kAcct, "f", 2).ok());
  Permit p[3];
  EXPECT_EQ(l.try_acquire(kAcct, "f", &p[0]), Refusal::kNone);
  EXPECT_EQ(l.try_acquire(kAcct, "f", &p[1]), Refusal::kNone);
  EXPECT_EQ(l.try_acquire(kAcct, "f", &p[2]), Refusal::kReservedLimit);
  EXPECT_STREQ(reason_name(Refusal::kReservedLimit), "ReservedFunctionConcurrentInvocationLimitExceeded");
  EXPECT_EQ(l.reserved_in_flight(kAcct, "f"), 2);
  EXPECT_EQ(l.unreserved_in_flight(kAcct), 0);  // reserved invokes do not draw from the pool
  p[1].release();
  EXPECT_EQ(l.try_acquire(kAcct, "f", &p[2]), Refusal::kNone);
}

TEST(Limiter, ZeroReservationDisablesTheFunction) {
  Limiter l(1000);
  ASSERT_TRUE(l.set_reserved(kAcct, "f", 0).ok());
  Permit p;
  EXPECT_EQ(l.try_acquire(kAcct, "f", &p), Refusal::kReservedLimit);
  EXPECT_EQ(l.reserved(kAcct, "f"), 0u);
  EXPECT_EQ(l.try_acquire(kAcct, "other", &p), Refusal::kNone);
}

TEST(Limiter, ReservationsShrinkTheUnreservedPool) {
  Limiter l(110);
  EXPECT_EQ(l.unreserved_limit(kAcct), 110u);
  ASSERT_TRUE(l.set_reserved(kAcct, "f", 4).ok());
  ASSERT_TRUE(l.set_reserved(kAcct, "g", 6).ok());
  EXPECT_EQ(l.unreserved_limit(kAcct), 100u);
  ASSERT_TRUE(l.set_reserved(kAcct, "g", 1).ok());  // replaces, not adds
  EXPECT_EQ(l.unreserved_limit(kAcct), 105u);
  l.clear_reserved(kAcct, "f");
  EXPECT_EQ(l.unreserved_limit(kAcct), 109u);
  EXPECT_FALSE(l.reserved(kAcct, "f").has_value());
  l.clear_reserved(kAcct, "never-reserved");
  l.clear_reserved("999999999999", "f");
  EXPECT_EQ(l.unreserved_limit(kAcct), 109u);
}

TEST(Limiter, RefusesAReservationThatLeavesLessThanTheMinimumUnreserved) {
  Limiter l(1000);
  Status s = l.set_reserved(kAcct, "f", 901);
  EXPECT_EQ(s.type(), "InvalidParameterValueException");
  EXPECT_EQ(s.http_status(), 400);
  EXPECT_NE(s.message().find("below its minimum value of [100]"), std::string::npos);
  EXPECT_FALSE(l.reserved(kAcct, "f").has_value());
  EXPECT_TRUE(l.set_reserved(kAcct, "f", 900).ok());
  EXPECT_FALSE(l.set_reserved(kAcct, "g", 1).ok());
  EXPECT_FALSE(l.set_reserved(kAcct, "g", UINT64_MAX).ok());  // no overflow
  EXPECT_EQ(l.unreserved_limit(kAcct), 100u);
}

TEST(Limiter, SmallAccountLimitCapsTheMinimumAtTheLimit) {
  Limiter l(3);
  EXPECT_TRUE(l.set_reserved(kAcct, "f", 0).ok());
  EXPECT_FALSE(l.set_reserved(kAcct, "f", 1).ok());
}

TEST(Limiter, PermitTakenBeforeAReservationChangeReleasesWhereItCameFrom) {
  Limiter l(1000);
  Permit unreserved, reserved;
  ASSERT_EQ(l.try_acquire(kAcct, "f", &unreserved), Refusal::kNone);
  ASSERT_TRUE(l.set_reserved(kAcct, "f", 1).ok());
  ASSERT_EQ(l.try_acquire(kAcct, "f", &reserved), Refusal::kNone);
  l.clear_reserved(kAcct, "f");  // the reserved permit keeps its counter alive
  unreserved.release();
  reserved.release();
  EXPECT_EQ(l.unreserved_in_flight(kAcct), 0);
  ASSERT_TRUE(l.set_reserved(kAcct, "f", 1).ok());
  EXPECT_EQ(l.reserved_in_flight(kAcct, "f"), 0);
}

TEST(Limiter, ConcurrentAcquiresNeverExceedTheReservation) {
  Limiter l(1000);
  ASSERT_TRUE(l.set_reserved(kAcct, "f", 5).ok());
  std::atomic<int> admitted{0};
  std::atomic<int> peak{0};
  std::atomic<int> running{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 20000; ++i) {
        Permit p;
        if (l.try_acquire(kAcct, "f", &p) != Refusal::kNone) continue;
        int now = running.fetch_add(1) + 1;
        int seen = peak.load();
        while (now > seen && !peak.compare_exchange_weak(seen, now)) {
        }
        ++admitted;
        running.fetch_sub(1);
        p.release();
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_LE(peak.load(), 5);
  EXPECT_GT(admitted.load(), 0);
  EXPECT_EQ(l.reserved_in_flight(kAcct, "f"), 0);
}

}  // namespace
}  // namespace kiln::concurrency
