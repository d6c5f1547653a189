// SnapStart in the registry: the SnapStart setting (validation, output, persistence),
// a published version's Pending -> Active/Failed life through the snapshotter, its
// resumption after a restart, the invoke check and the version-deletion hook.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/crypto.h"
#include "registry/registry.h"
#include "registry/testdata/zip_builder.h"

namespace kiln::registry {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr char kAccount[] = "123456789012";
constexpr char kRegion[] = "us-east-1";

json create_request(const std::string& name, bool snap_start) {
  json req = {{"FunctionName", name},
              {"Runtime", "python3.11"},
              {"Role", "arn:aws:iam::123456789012:role/lambda-role"},
              {"Handler", "app.handler"},
              {"Code", {{"ZipFile", crypto::base64(testing::build_zip({{"app.py", "def handler(e, c): pass\n", 0100644}}))}}}};
  if (snap_start) req["SnapStart"] = {{"ApplyOn", "PublishedVersions"}};
  return req;
}

// A snapshotter that records its calls; the test answers them.
struct TestSnapshotter {
  struct Call {
    FunctionVersionPtr version;
    std::function<void(Status)> done;
  };
  std::vector<Call> calls;
  Snapshotter fn() {
    return [this](const FunctionVersionPtr& v, std::function<void(Status)> done) {
      calls.push_back({v, std::move(done)});
    };
  }
};

class SnapStartRegistryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/kiln-snapstart-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    open();
  }
  void TearDown() override {
    close();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  void close() {
    registry_.reset();
    code_.reset();
    store_.reset();
  }
  // (Re)opens the registry on the same files, as Kiln does at start.
  void open() {
    close();
    auto store = Store::open(dir_ / "kiln.db");
    ASSERT_TRUE(store.ok()) << store.status().message();
    store_ = std::move(store).value();
    code_ = std::make_unique<CodeStore>(dir_ / "code");
    registry_ = std::make_unique<Registry>(*store_, *code_, kRegion);
    ASSERT_TRUE(registry_->load().ok());
  }
  FunctionVersionPtr create(const std::string& name, bool snap_start) {
    auto f = registry_->create_function(kAccount, create_request(name, snap_start));
    EXPECT_TRUE(f.ok()) << f.status().type() << ": " << f.status().message();
    return f.ok() ? *f : nullptr;
  }
  FunctionVersionPtr publish(const std::string& name, const std::string& description = "") {
    json req = json::object();
    if (!description.empty()) req["Description"] = description;
    auto v = registry_->publish_version(kAccount, name, req);
    EXPECT_TRUE(v.ok()) << v.status().type() << ": " << v.status().message();
    return v.ok() ? *v : nullptr;
  }
  FunctionVersionPtr get(const std::string& name, const std::string& qualifier) {
    auto f = registry_->configuration(kAccount, name, qualifier);
    EXPECT_TRUE(f.ok()) << f.status().message();
    return f.ok() ? *f : nullptr;
  }

  fs::path dir_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<CodeStore> code_;
  std::unique_ptr<Registry> registry_;
};

// ---- the setting ----

TEST_F(SnapStartRegistryTest, OffByDefaultAndOnOnlyForPublishedVersions) {
  auto plain = create("plain", false);
  EXPECT_EQ(configuration_json(*plain)["SnapStart"], json({{"ApplyOn", "None"}, {"OptimizationStatus", "Off"}}));
  auto snap = create("snap", true);
  EXPECT_EQ(configuration_json(*snap)["SnapStart"],
            json({{"ApplyOn", "PublishedVersions"}, {"OptimizationStatus", "Off"}}))
      << "$LATEST is never snapshotted";
  auto v = publish("snap");
  EXPECT_EQ(configuration_json(*v)["SnapStart"],
            json({{"ApplyOn", "PublishedVersions"}, {"OptimizationStatus", "On"}}));
  auto pv = publish("plain");
  EXPECT_EQ(configuration_json(*pv)["SnapStart"], json({{"ApplyOn", "None"}, {"OptimizationStatus", "Off"}}));
}

TEST_F(SnapStartRegistryTest, ApplyOnIsValidatedFromTheModel) {
  json req = create_request("fn", false);
  req["SnapStart"] = {{"ApplyOn", "Always"}};
  auto bad = registry_->create_function(kAccount, req);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().type(), "ValidationException");
  EXPECT_EQ(bad.status().message(),
            "1 validation error detected: Value 'Always' at 'snapStart.applyOn' failed to satisfy constraint: "
            "Member must satisfy enum value set: [PublishedVersions, None]");
  req["SnapStart"] = "PublishedVersions";
  EXPECT_EQ(registry_->create_function(kAccount, req).status().type(), "InvalidRequestContentException");

  create("fn", false);
  auto on = registry_->update_configuration(kAccount, "fn", {{"SnapStart", {{"ApplyOn", "PublishedVersions"}}}});
  ASSERT_TRUE(on.ok());
  EXPECT_TRUE((*on)->snap_start);
  auto kept = registry_->update_configuration(kAccount, "fn", {{"Timeout", 10}});
  ASSERT_TRUE(kept.ok());
  EXPECT_TRUE((*kept)->snap_start) << "an update without SnapStart keeps it";
  auto wrong = registry_->update_configuration(kAccount, "fn", {{"SnapStart", {{"ApplyOn", 3}}}});
  EXPECT_EQ(wrong.status().type(), "ValidationException");
  auto off = registry_->update_configuration(kAccount, "fn", {{"SnapStart", {{"ApplyOn", "None"}}}});
  ASSERT_TRUE(off.ok());
  EXPECT_FALSE((*off)->snap_start);
}

TEST_F(SnapStartRegistryTest, SettingSurvivesARestartAndOldRecordsLoadAsOff) {
  create("snap", true);
  publish("snap");
  open();
  EXPECT_TRUE(get("snap", "")->snap_start);
  EXPECT_TRUE(get("snap", "1")->snap_start);

  json old = record_json(*get("snap", ""));
  old.erase("snap_start");
  EXPECT_FALSE(from_record_json(old).snap_start);
}

// ---- publish through the snapshotter ----

TEST_F(SnapStartRegistryTest, PublishIsPendingUntilTheSnapshotIsStored) {
  TestSnapshotter snaps;
  registry_->set_snapshotter(snaps.fn());
  create("snap", true);
  auto v = publish("snap");
  EXPECT_EQ(v->state, "Pending");
  EXPECT_EQ(v->state_reason, "The function is being created.");
  EXPECT_EQ(v->state_reason_code, "Creating");
  ASSERT_EQ(snaps.calls.size(), 1u);
  EXPECT_EQ(snaps.calls[0].version->version, "1");
  EXPECT_EQ(get("snap", "1")->state, "Pending");

  auto resolved = registry_->resolve(kAccount, "snap", "1");
  ASSERT_TRUE(resolved.ok());
  Status refused = check_invocable(**resolved);
  EXPECT_EQ(refused.type(), "ResourceConflictException");
  EXPECT_EQ(refused.http_status(), 409);
  EXPECT_EQ(refused.message(),
            "The operation cannot be performed at this time. The function is currently in the following state: Pending");
  EXPECT_TRUE(check_invocable(**registry_->resolve(kAccount, "snap", "")).ok()) << "$LATEST still runs";

  snaps.calls[0].done(Status::Ok());
  auto active = get("snap", "1");
  EXPECT_EQ(active->state, "Active");
  EXPECT_EQ(active->state_reason, "");
  EXPECT_EQ(active->state_reason_code, "");
  EXPECT_TRUE(check_invocable(**registry_->resolve(kAccount, "snap", "1")).ok());
  open();
  EXPECT_EQ(get("snap", "1")->state, "Active") << "the state change is durable";
}

TEST_F(SnapStartRegistryTest, AFailedSnapshotFailsTheVersionWithLambdasCode) {
  TestSnapshotter snaps;
  registry_->set_snapshotter(snaps.fn());
  create("snap", true);
  publish("snap");
  ASSERT_TRUE(registry_->update_configuration(kAccount, "snap", {{"Timeout", 7}}).ok());
  publish("snap");
  ASSERT_EQ(snaps.calls.size(), 2u);
  snaps.calls[0].done(Status(400, "FunctionError.RuntimeInitError", "Runtime.ImportModuleError: no module x"));
  snaps.calls[1].done(Status(500, "Kiln.SnapshotDumpError", "ptrace failed"));

  auto v1 = get("snap", "1");
  EXPECT_EQ(v1->state, "Failed");
  EXPECT_EQ(v1->state_reason_code, "FunctionError.RuntimeInitError");
  EXPECT_EQ(v1->state_reason, "Runtime.ImportModuleError: no module x");
  auto v2 = get("snap", "2");
  EXPECT_EQ(v2->state, "Failed");
  EXPECT_EQ(v2->state_reason_code, "InternalError") << "a type that is no StateReasonCode";
  EXPECT_EQ(v2->state_reason, "ptrace failed");
  Status refused = check_invocable(*v2);
  EXPECT_EQ(refused.type(), "ResourceConflictException");
  EXPECT_EQ(refused.message(),
            "The operation cannot be performed at this time. The function is currently in the following state: Failed");
  open();
  EXPECT_EQ(get("snap", "1")->state, "Failed");
  EXPECT_EQ(get("snap", "2")->state_reason_code, "InternalError");
}

TEST_F(SnapStartRegistryTest, CreateOrUpdateCodeWithPublishSnapshotsThePublishedVersion) {
  TestSnapshotter snaps;
  registry_->set_snapshotter(snaps.fn());
  json req = create_request("snap", true);
  req["Publish"] = true;
  auto v = registry_->create_function(kAccount, req);
  ASSERT_TRUE(v.ok());
  EXPECT_EQ((*v)->version, "1");
  EXPECT_EQ((*v)->state, "Pending");
  ASSERT_EQ(snaps.calls.size(), 1u);
  EXPECT_EQ(snaps.calls[0].version->version, "1");
  snaps.calls[0].done(Status::Ok());
  EXPECT_EQ(get("snap", "1")->state, "Active");

  json update = {{"ZipFile", crypto::base64(testing::build_zip({{"app.py", "def handler(e, c): return 2\n", 0100644}}))},
                 {"Publish", true}};
  auto v2 = registry_->update_code(kAccount, "snap", update);
  ASSERT_TRUE(v2.ok()) << v2.status().message();
  EXPECT_EQ((*v2)->version, "2");
  EXPECT_EQ((*v2)->state, "Pending") << "UpdateFunctionCode with Publish takes the same path";
  ASSERT_EQ(snaps.calls.size(), 2u);
  EXPECT_EQ(snaps.calls[1].version->version, "2");
}

TEST_F(SnapStartRegistryTest, WithoutSnapStartOrSnapshotterPublishIsActiveAtOnce) {
  TestSnapshotter snaps;
  registry_->set_snapshotter(snaps.fn());
  create("plain", false);
  EXPECT_EQ(publish("plain")->state, "Active");
  EXPECT_TRUE(snaps.calls.empty());

  open();  // no snapshotter set
  create("snap", true);
  EXPECT_EQ(publish("snap")->state, "Active");
}

TEST_F(SnapStartRegistryTest, AVersionLeftPendingIsSnapshottedAgainAfterARestart) {
  TestSnapshotter before;
  registry_->set_snapshotter(before.fn());
  create("snap", true);
  publish("snap");
  ASSERT_EQ(before.calls.size(), 1u);  // Kiln dies before it answers

  open();
  EXPECT_EQ(get("snap", "1")->state, "Pending");
  TestSnapshotter after;
  registry_->set_snapshotter(after.fn());
  registry_->resume_preparations();
  ASSERT_EQ(after.calls.size(), 1u);
  EXPECT_EQ(after.calls[0].version->version, "1");
  after.calls[0].done(Status::Ok());
  EXPECT_EQ(get("snap", "1")->state, "Active");

  open();
  TestSnapshotter again;
  registry_->set_snapshotter(again.fn());
  registry_->resume_preparations();
  EXPECT_TRUE(again.calls.empty()) << "an Active version is not snapshotted again";
}

TEST_F(SnapStartRegistryTest, AnAnswerForADeletedVersionChangesNothing) {
  TestSnapshotter snaps;
  registry_->set_snapshotter(snaps.fn());
  create("snap", true);
  publish("snap");
  ASSERT_TRUE(registry_->delete_function(kAccount, "snap", "1").ok());
  snaps.calls[0].done(Status::Ok());
  EXPECT_EQ(registry_->configuration(kAccount, "snap", "1").status().type(), "ResourceNotFoundException");

  ASSERT_TRUE(registry_->delete_function(kAccount, "snap", "").ok());
  create("snap", true);
  publish("snap");  // version 1 again, another revision
  ASSERT_EQ(snaps.calls.size(), 2u);
  EXPECT_EQ(get("snap", "1")->state, "Pending");
}

// ---- deletion ----

TEST_F(SnapStartRegistryTest, DeletionReportsEveryRemovedPublishedVersion) {
  std::vector<std::string> deleted;
  registry_->on_version_deleted([&](const FunctionVersionPtr& v) { deleted.push_back(v->name + ":" + v->version); });
  create("snap", true);
  publish("snap");
  ASSERT_TRUE(registry_->update_configuration(kAccount, "snap", {{"Timeout", 7}}).ok());
  publish("snap");
  ASSERT_TRUE(registry_->update_configuration(kAccount, "snap", {{"Timeout", 8}}).ok());
  publish("snap");

  ASSERT_TRUE(registry_->delete_function(kAccount, "snap", "2").ok());
  EXPECT_EQ(deleted, std::vector<std::string>({"snap:2"}));
  EXPECT_FALSE(registry_->delete_function(kAccount, "snap", "9").ok());
  EXPECT_EQ(deleted.size(), 1u) << "nothing deleted, nothing reported";

  ASSERT_TRUE(registry_->delete_function(kAccount, "snap", "").ok());
  EXPECT_EQ(deleted, std::vector<std::string>({"snap:2", "snap:1", "snap:3"}));
}

}  // namespace
}  // namespace kiln::registry
