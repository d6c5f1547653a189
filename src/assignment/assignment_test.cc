#include "assignment/assignment.h"

#include <gtest/gtest.h>

namespace kiln::assignment {
namespace {

class FakeSandbox : public Assignable {
 public:
  explicit FakeSandbox(std::string key) : key_(std::move(key)) {}
  const std::string& key() const override { return key_; }
  bool reusable() const override { return reusable_; }
  void retire() override { retired_++; }
  std::string key_;
  bool reusable_ = true;
  int retired_ = 0;
};

struct FakeClock {
  std::chrono::steady_clock::time_point now{};
};

TEST(Assignment, IdleSandboxIsReusedForTheSameKeyOnly) {
  AssignmentService a;
  auto s = std::make_shared<FakeSandbox>("A#1");
  EXPECT_EQ(a.acquire("A#1"), nullptr);
  a.add_busy(s);
  a.release(s);
  EXPECT_EQ(a.acquire("B#1"), nullptr);
  EXPECT_EQ(a.acquire("A#1"), s);
  EXPECT_EQ(a.acquire("A#1"), nullptr) << "a leased sandbox is never handed out twice";
}

TEST(Assignment, MostRecentlyReleasedIsLeasedFirst) {
  AssignmentService a;
  auto s1 = std::make_shared<FakeSandbox>("A");
  auto s2 = std::make_shared<FakeSandbox>("A");
  a.add_busy(s1);
  a.add_busy(s2);
  a.release(s1);
  a.release(s2);
  EXPECT_EQ(a.acquire("A"), s2);
  EXPECT_EQ(a.acquire("A"), s1);
}

TEST(Assignment, BrokenSandboxIsRetiredNotReused) {
  AssignmentService a;
  auto s = std::make_shared<FakeSandbox>("A");
  a.add_busy(s);
  s->reusable_ = false;
  a.release(s);
  EXPECT_EQ(s->retired_, 1);
  EXPECT_EQ(a.acquire("A"), nullptr);
}

TEST(Assignment, RetiredKeyRetiresIdleNowAndBusyOnRelease) {
  AssignmentService a;
  auto idle = std::make_shared<FakeSandbox>("A");
  auto busy = std::make_shared<FakeSandbox>("A");
  a.add_busy(idle);
  a.add_busy(busy);
  a.release(idle);
  a.retire_key("A");
  EXPECT_EQ(idle->retired_, 1);
  EXPECT_EQ(busy->retired_, 0);
  a.release(busy);
  EXPECT_EQ(busy->retired_, 1) << "old code must not serve after an update";
  EXPECT_EQ(a.acquire("A"), nullptr);
  EXPECT_EQ(a.stats().busy + a.stats().idle, 0u);
}

TEST(Assignment, ReapIdleRetiresOnlyOldSandboxes) {
  FakeClock clock;
  AssignmentService a([&] { return clock.now; });
  auto old_one = std::make_shared<FakeSandbox>("A");
  auto young = std::make_shared<FakeSandbox>("A");
  a.add_busy(old_one);
  a.add_busy(young);
  a.release(old_one);
  clock.now += std::chrono::seconds(50);
  a.release(young);
  clock.now += std::chrono::seconds(20);
  EXPECT_EQ(a.reap_idle(std::chrono::seconds(60)), 1u);
  EXPECT_EQ(old_one->retired_, 1);
  EXPECT_EQ(young->retired_, 0);
  EXPECT_EQ(a.acquire("A"), young);
}

TEST(Assignment, RemoveForgetsADeadIdleSandbox) {
  AssignmentService a;
  auto s = std::make_shared<FakeSandbox>("A");
  a.add_busy(s);
  a.release(s);
  a.remove(s);
  EXPECT_EQ(s->retired_, 1);
  EXPECT_EQ(a.acquire("A"), nullptr);
}

}  // namespace
}  // namespace kiln::assignment

namespace kiln::assignment {
namespace {

class WarmSandbox : public Assignable {
 public:
  explicit WarmSandbox(std::string key) : key_(std::move(key)) {}
  const std::string& key() const override { return key_; }
  bool reusable() const override { return true; }
  void retire() override { retired_++; }
  std::string key_;
  int retired_ = 0;
};

TEST(Assignment, InvokeTakesASandboxStillWarmingRatherThanStartingAnother) {
  AssignmentService a;
  auto s = std::make_shared<WarmSandbox>("A");
  a.add_warming(s);
  EXPECT_EQ(a.acquire("A"), s);
  EXPECT_FALSE(a.finish_warming(s, true)) << "the invoke owns it now";
  a.release(s);
  EXPECT_EQ(a.acquire("A"), s);
}

TEST(Assignment, WarmedSandboxNobodyTookBecomesIdleAndAFailedOneIsRetired) {
  AssignmentService a;
  auto good = std::make_shared<WarmSandbox>("A");
  auto bad = std::make_shared<WarmSandbox>("A");
  a.add_warming(good);
  a.add_warming(bad);
  EXPECT_TRUE(a.finish_warming(good, true));
  EXPECT_TRUE(a.finish_warming(bad, false));
  EXPECT_EQ(bad->retired_, 1);
  EXPECT_EQ(a.acquire("A"), good);
  EXPECT_EQ(a.acquire("A"), nullptr);
}

TEST(Assignment, RetiringAKeyRetiresItsWarmingSandboxes) {
  AssignmentService a;
  auto s = std::make_shared<WarmSandbox>("A");
  a.add_warming(s);
  a.retire_key("A");
  EXPECT_EQ(s->retired_, 1);
  EXPECT_FALSE(a.finish_warming(s, true));
}

TEST(Assignment, ReapIdleNeverRetiresAProvisionedSandbox) {
  FakeClock clock;
  AssignmentService a([&clock] { return clock.now; });
  auto kept = std::make_shared<FakeSandbox>("A");
  auto plain = std::make_shared<FakeSandbox>("A");
  kept->set_provisioned(true);
  a.add_busy(kept);
  a.add_busy(plain);
  a.release(kept);
  a.release(plain);
  clock.now += std::chrono::hours(1);
  EXPECT_EQ(a.reap_idle(std::chrono::minutes(5)), 1u);
  EXPECT_EQ(kept->retired_, 0);
  EXPECT_EQ(plain->retired_, 1);
  EXPECT_EQ(a.acquire("A"), kept) << "the provisioned sandbox is still idle and leasable";
}

TEST(Assignment, RetireIfIdleLeavesALeasedSandboxToItsInvoke) {
  AssignmentService a;
  auto idle = std::make_shared<FakeSandbox>("A");
  auto busy = std::make_shared<FakeSandbox>("A");
  auto warming = std::make_shared<FakeSandbox>("A");
  a.add_busy(idle);
  a.release(idle);
  a.add_busy(busy);
  a.add_warming(warming);
  EXPECT_TRUE(a.retire_if_idle(idle));
  EXPECT_TRUE(a.retire_if_idle(warming));
  EXPECT_FALSE(a.retire_if_idle(busy));
  EXPECT_FALSE(a.retire_if_idle(std::make_shared<FakeSandbox>("unknown")));
  EXPECT_EQ(idle->retired_, 1);
  EXPECT_EQ(warming->retired_, 1);
  EXPECT_EQ(busy->retired_, 0);
  EXPECT_EQ(a.acquire("A"), nullptr);
}

TEST(Assignment, ReclaimTakesTheOldestIdleOfOtherKeys) {
  FakeClock clock;
  AssignmentService a([&clock] { return clock.now; });
  auto old_b = std::make_shared<FakeSandbox>("B");
  auto new_b = std::make_shared<FakeSandbox>("B");
  auto mid_c = std::make_shared<FakeSandbox>("C");
  auto own_a = std::make_shared<FakeSandbox>("A");
  for (auto& s : {old_b, new_b, mid_c, own_a}) a.add_busy(s);
  a.release(own_a);  // the oldest of all, but of the key that needs room
  clock.now += std::chrono::seconds(1);
  a.release(old_b);
  clock.now += std::chrono::seconds(1);
  a.release(mid_c);
  clock.now += std::chrono::seconds(1);
  a.release(new_b);
  EXPECT_EQ(a.reclaim_oldest_idle("A"), old_b);
  EXPECT_EQ(old_b->retired_, 1);
  EXPECT_EQ(a.reclaim_oldest_idle("A"), mid_c);
  EXPECT_EQ(a.reclaim_oldest_idle("A"), new_b);
  EXPECT_EQ(a.reclaim_oldest_idle("A"), nullptr) << "the spared key's idle sandbox is kept";
  EXPECT_EQ(own_a->retired_, 0);
  EXPECT_EQ(a.acquire("A"), own_a);
  EXPECT_EQ(a.acquire("B"), nullptr) << "a reclaimed sandbox is never leased";
}

TEST(Assignment, ReclaimNeverTakesBusyOrWarmingSandboxes) {
  AssignmentService a;
  auto busy = std::make_shared<FakeSandbox>("B");
  auto warming = std::make_shared<FakeSandbox>("C");
  auto provisioned = std::make_shared<FakeSandbox>("D");
  provisioned->set_provisioned(true);
  a.add_busy(busy);
  a.add_warming(warming);
  a.add_busy(provisioned);
  a.release(provisioned);
  EXPECT_EQ(a.reclaim_oldest_idle("A"), nullptr);
  EXPECT_EQ(a.reclaim_oldest_idle(""), nullptr);
  EXPECT_EQ(busy->retired_ + warming->retired_ + provisioned->retired_, 0);
  a.release(busy);
  EXPECT_EQ(a.reclaim_oldest_idle("A"), busy) << "the older provisioned one is skipped";
  EXPECT_EQ(a.reclaim_oldest_idle("A"), nullptr);
  EXPECT_EQ(a.stats().idle, 1u);
  EXPECT_EQ(a.stats().busy, 0u);
}

}  // namespace
}  // namespace kiln::assignment

namespace kiln::assignment {
namespace {

class LateSandbox : public Assignable {
 public:
  explicit LateSandbox(std::string key) : key_(std::move(key)) {}
  const std::string& key() const override { return key_; }
  bool reusable() const override { return true; }
  void retire() override { retired_++; }
  std::string key_;
  int retired_ = 0;
};

TEST(Assignment, SandboxStartedForAReplacedConfigurationIsRetiredOnRelease) {
  AssignmentService a;
  a.retire_key("old");  // the update switched before this cold start registered
  auto late = std::make_shared<LateSandbox>("old");
  a.add_busy(late);
  a.release(late);
  EXPECT_EQ(late->retired_, 1) << "old code must not stay warm";
  EXPECT_EQ(a.acquire("old"), nullptr);
  EXPECT_EQ(a.reap_idle(std::chrono::seconds(0)), 0u);
  auto later = std::make_shared<LateSandbox>("old");
  a.add_busy(later);
  a.release(later);
  EXPECT_EQ(later->retired_, 1) << "the tombstone outlives the reaper";
}

}  // namespace
}  // namespace kiln::assignment
