#include "concurrency/reservations.h"

#include <gtest/gtest.h>

#include <filesystem>

namespace kiln::concurrency {
namespace {

constexpr const char* kAcct = "123456789012";

class ReservationsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("kiln-reservations-" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::unique_ptr<registry::Store> open() {
    auto s = registry::Store::open(dir_ / "kiln.db");
    EXPECT_TRUE(s.ok()) << s.status().message();
    return std::move(s).value();
  }
  std::filesystem::path dir_;
};

TEST_F(ReservationsTest, SurviveARestart) {
  {
    auto store = open();
    Limiter l(1000);
    Reservations r(*store, l);
    ASSERT_TRUE(r.load().ok());
    ASSERT_TRUE(r.put(kAcct, "f", 7).ok());
    ASSERT_TRUE(r.put(kAcct, "g", 0).ok());
    ASSERT_TRUE(r.put(kAcct, "h", 3).ok());
    ASSERT_TRUE(r.remove(kAcct, "h").ok());
  }
  auto store = open();
  Limiter l(1000);
  Reservations r(*store, l);
  ASSERT_TRUE(r.load().ok());
  EXPECT_EQ(r.get(kAcct, "f"), 7u);
  EXPECT_EQ(r.get(kAcct, "g"), 0u);
  EXPECT_FALSE(r.get(kAcct, "h").has_value());
  EXPECT_EQ(l.unreserved_limit(kAcct), 993u);
}

TEST_F(ReservationsTest, RefusedPutChangesNothingDurable) {
  {
    auto store = open();
    Limiter l(1000);
    Reservations r(*store, l);
    ASSERT_TRUE(r.put(kAcct, "f", 10).ok());
    EXPECT_EQ(r.put(kAcct, "f", 901).type(), "InvalidParameterValueException");
    EXPECT_EQ(r.get(kAcct, "f"), 10u);
  }
  auto store = open();
  EXPECT_EQ(store->reservations().size(), 1u);
  EXPECT_EQ(store->reservations()[0].reserved, 10u);
}

TEST_F(ReservationsTest, ReservationThatNoLongerFitsALowerLimitIsNotEnforced) {
  {
    auto store = open();
    Limiter l(1000);
    Reservations r(*store, l);
    ASSERT_TRUE(r.put(kAcct, "f", 500).ok());
  }
  auto store = open();
  Limiter l(200);
  Reservations r(*store, l);
  ASSERT_TRUE(r.load().ok());
  EXPECT_FALSE(r.get(kAcct, "f").has_value());
  EXPECT_EQ(store->reservations().size(), 1u);  // kept, for when the limit is raised again
}

}  // namespace
}  // namespace kiln::concurrency
