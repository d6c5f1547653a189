#include "worker/provisioner.h"

#include <gtest/gtest.h>

namespace kiln::worker {
namespace {

class FakeSandbox : public assignment::Assignable {
 public:
  explicit FakeSandbox(std::string key) : key_(std::move(key)) {}
  const std::string& key() const override { return key_; }
  bool reusable() const override { return alive_; }
  void retire() override {
    alive_ = false;
    retired_++;
  }
  std::string key_;
  bool alive_ = true;
  int retired_ = 0;
};

// Creations wait in `pending` until the test finishes them: initialization is in the
// test's hands, so every step is deterministic.
struct FakeFleet {
  struct Creation {
    registry::FunctionVersionPtr f;
    std::function<void(const assignment::AssignablePtr&)> on_dead;
    std::function<void(StatusOr<assignment::AssignablePtr>)> ready;
  };
  std::vector<Creation> pending;
  std::map<std::string, registry::FunctionVersionPtr> versions;  // qualifier -> version

  Provisioner::SandboxFactory factory() {
    return [this](const registry::FunctionVersionPtr& f, auto on_dead, auto ready) {
      pending.push_back({f, std::move(on_dead), std::move(ready)});
    };
  }
  Provisioner::Resolver resolver() {
    return [this](const std::string&, const std::string&, const std::string& q)
               -> StatusOr<registry::FunctionVersionPtr> {
      auto it = versions.find(q);
      if (it == versions.end()) return ResourceNotFound("Function not found: f:" + q);
      return it->second;
    };
  }
  // Finishes the oldest creation: initialized, or failed with `error`.
  std::shared_ptr<FakeSandbox> finish(Status error = Status::Ok()) {
    Creation c = std::move(pending.front());
    pending.erase(pending.begin());
    if (!error.ok()) {
      c.ready(error);
      return nullptr;
    }
    auto s = std::make_shared<FakeSandbox>(c.f->sandbox_key());
    dead_hooks[s.get()] = c.on_dead;
    c.ready(assignment::AssignablePtr(s));
    return s;
  }
  std::map<FakeSandbox*, std::function<void(const assignment::AssignablePtr&)>> dead_hooks;
};

registry::FunctionVersionPtr version(const std::string& v) {
  auto f = std::make_shared<registry::FunctionVersion>();
  f->name = "f";
  f->version = v;
  f->revision_id = "r" + v;
  return f;
}

struct ProvisionerTest : ::testing::Test {
  FakeFleet fleet;
  assignment::AssignmentService assignment;
  std::shared_ptr<Provisioner> p;
  void SetUp() override {
    fleet.versions["1"] = version("1");
    fleet.versions["2"] = version("2");
    p = std::make_shared<Provisioner>(assignment, fleet.factory(), fleet.resolver());
  }
  std::string status(const std::string& q = "1") { return p->status("a", "f", q)->status; }
};

TEST_F(ProvisionerTest, InProgressUntilEverySandboxHasInitializedThenReady) {
  ASSERT_TRUE(p->put("a", "f", "1", 2).ok());
  EXPECT_EQ(fleet.pending.size(), 2u);
  EXPECT_EQ(status(), "IN_PROGRESS");
  EXPECT_EQ(assignment.acquire(fleet.versions["1"]->sandbox_key()), nullptr)
      << "a sandbox still initializing is not leasable through the provisioner";
  auto s1 = fleet.finish();
  EXPECT_EQ(status(), "IN_PROGRESS");
  EXPECT_EQ(p->status("a", "f", "1")->allocated, 1u);
  auto s2 = fleet.finish();
  EXPECT_EQ(status(), "READY");
  EXPECT_EQ(p->status("a", "f", "1")->requested, 2u);
  EXPECT_TRUE(s1->provisioned());
  EXPECT_EQ(assignment.stats().idle, 2u);
}

TEST_F(ProvisionerTest, ProvisionedSandboxesSurviveTheIdleReaper) {
  ASSERT_TRUE(p->put("a", "f", "1", 1).ok());
  auto s = fleet.finish();
  EXPECT_EQ(assignment.reap_idle(std::chrono::seconds(0)), 0u);
  EXPECT_EQ(s->retired_, 0);
}

TEST_F(ProvisionerTest, ADeadSandboxIsReplaced) {
  ASSERT_TRUE(p->put("a", "f", "1", 1).ok());
  auto s = fleet.finish();
  s->alive_ = false;
  fleet.dead_hooks[s.get()](s);
  EXPECT_EQ(status(), "IN_PROGRESS");
  ASSERT_EQ(fleet.pending.size(), 1u) << "a replacement is on its way";
  fleet.finish();
  EXPECT_EQ(status(), "READY");
}

TEST_F(ProvisionerTest, ReconcileReplacesSandboxesThatDiedSilently) {
  ASSERT_TRUE(p->put("a", "f", "1", 1).ok());
  auto s = fleet.finish();
  s->alive_ = false;
  p->reconcile();
  ASSERT_EQ(fleet.pending.size(), 1u);
  p->reconcile();
  EXPECT_EQ(fleet.pending.size(), 1u) << "a creation under way is not duplicated";
}

TEST_F(ProvisionerTest, InitFailureReportsFailedWithAReasonAndStopsRetrying) {
  ASSERT_TRUE(p->put("a", "f", "1", 2).ok());
  fleet.finish({400, "Runtime.InitError", "boom"});
  auto st = p->status("a", "f", "1");
  EXPECT_EQ(st->status, "FAILED");
  EXPECT_NE(st->reason.find("boom"), std::string::npos);
  fleet.finish();
  p->reconcile();
  EXPECT_TRUE(fleet.pending.empty());
  EXPECT_EQ(status(), "FAILED");
  ASSERT_TRUE(p->put("a", "f", "1", 2).ok()) << "a new put tries again";
  EXPECT_EQ(status(), "IN_PROGRESS");
}

TEST_F(ProvisionerTest, UnknownQualifierIsRefused) {
  Status s = p->put("a", "f", "9", 1);
  EXPECT_EQ(s.type(), "ResourceNotFoundException");
  EXPECT_FALSE(p->status("a", "f", "9").has_value());
}

TEST_F(ProvisionerTest, RemoveRetiresIdleSandboxesAndLateOnesAndLeavesLeasedOnes) {
  ASSERT_TRUE(p->put("a", "f", "1", 3).ok());
  auto idle = fleet.finish();
  auto leased = fleet.finish();
  auto key = fleet.versions["1"]->sandbox_key();
  auto got = assignment.acquire(key);
  ASSERT_TRUE(got);
  auto busy = std::static_pointer_cast<FakeSandbox>(got);
  auto other = busy == idle ? leased : idle;
  EXPECT_TRUE(p->remove("a", "f", "1"));
  EXPECT_FALSE(p->remove("a", "f", "1"));
  EXPECT_FALSE(p->status("a", "f", "1").has_value());
  EXPECT_EQ(other->retired_, 1);
  EXPECT_EQ(busy->retired_, 0);
  EXPECT_FALSE(busy->provisioned()) << "the leased one becomes an ordinary sandbox";
  auto late = fleet.finish();
  EXPECT_EQ(late->retired_, 1) << "a sandbox that initializes after delete is not kept";
}

TEST_F(ProvisionerTest, LoweringTheCountReleasesTheExtraSandboxes) {
  ASSERT_TRUE(p->put("a", "f", "1", 2).ok());
  auto a = fleet.finish();
  auto b = fleet.finish();
  ASSERT_TRUE(p->put("a", "f", "1", 1).ok());
  EXPECT_EQ(a->retired_ + b->retired_, 1);
  EXPECT_EQ(status(), "READY");
}

TEST_F(ProvisionerTest, AnAliasMovedToAnotherVersionIsReprovisioned) {
  fleet.versions["live"] = fleet.versions["1"];
  ASSERT_TRUE(p->put("a", "f", "live", 1).ok());
  auto old = fleet.finish();
  fleet.versions["live"] = fleet.versions["2"];
  p->reconcile();
  EXPECT_EQ(old->retired_, 1);
  EXPECT_EQ(status("live"), "IN_PROGRESS");
  auto fresh = fleet.finish();
  EXPECT_EQ(fresh->key(), fleet.versions["2"]->sandbox_key());
  EXPECT_EQ(status("live"), "READY");
  auto list = p->list("a", "f");
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0].first, "live");
}

TEST_F(ProvisionerTest, ADeletedVersionFailsItsConfiguration) {
  ASSERT_TRUE(p->put("a", "f", "1", 1).ok());
  auto s = fleet.finish();
  fleet.versions.erase("1");
  p->reconcile();
  EXPECT_EQ(status(), "FAILED");
  EXPECT_EQ(s->retired_, 1);
}

TEST_F(ProvisionerTest, CallbacksAfterTheProvisionerIsGoneRetireTheSandbox) {
  ASSERT_TRUE(p->put("a", "f", "1", 1).ok());
  p.reset();
  auto s = fleet.finish();
  EXPECT_EQ(s->retired_, 1);
}

}  // namespace
}  // namespace kiln::worker
