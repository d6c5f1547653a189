// The registry against a real Store (SQLite in a temp dir) and CodeStore: the control
// operations, their validation errors, persistence across reopen and the on_retired hook.
#include "registry/registry.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <cstdio>
#include <filesystem>
#include <map>
#include <set>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/crypto.h"
#include "registry/testdata/zip_builder.h"

namespace kiln::registry {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr char kAccount[] = "123456789012";
constexpr char kRegion[] = "us-east-1";
constexpr char kRole[] = "arn:aws:iam::123456789012:role/lambda-role";

std::string zip_b64(const std::string& body) {
  return crypto::base64(testing::build_zip({{"bootstrap", body, 0100755}}));
}

json create_request(const std::string& name, const std::string& code = "#!/bin/sh\necho one\n") {
  return {{"FunctionName", name},
          {"Runtime", "provided.al2023"},
          {"Role", kRole},
          {"Handler", "bootstrap"},
          {"Code", {{"ZipFile", zip_b64(code)}}}};
}

class RegistryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/kiln-registry-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    open();
  }
  void TearDown() override {
    registry_.reset();
    code_.reset();
    store_.reset();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  // (Re)opens the store, code store and registry on the same files.
  void open() {
    registry_.reset();
    code_.reset();
    store_.reset();
    auto store = Store::open(dir_ / "kiln.db");
    ASSERT_TRUE(store.ok()) << store.status().message();
    store_ = std::move(store).value();
    code_ = std::make_unique<CodeStore>(dir_ / "code");
    registry_ = std::make_unique<Registry>(*store_, *code_, kRegion);
    ASSERT_TRUE(registry_->load().ok());
  }

  FunctionVersionPtr create(const std::string& name) {
    auto f = registry_->create_function(kAccount, create_request(name));
    EXPECT_TRUE(f.ok()) << f.status().type() << ": " << f.status().message();
    return f.ok() ? *f : nullptr;
  }

  // The error a CreateFunction request with `extra` fields merged in fails with.
  Status create_error(const json& extra) {
    json req = create_request("fn");
    req.update(extra);
    auto f = registry_->create_function(kAccount, req);
    if (f.ok()) return Status::Ok();
    return f.status();
  }

  fs::path dir_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<CodeStore> code_;
  std::unique_ptr<Registry> registry_;
};

// ---- create / get / list / update / delete ----

TEST_F(RegistryTest, CreateThenResolveReturnsTheSameConfiguration) {
  auto f = create("hello");
  ASSERT_TRUE(f);
  EXPECT_EQ(f->name, "hello");
  EXPECT_EQ(f->account_id, kAccount);
  EXPECT_EQ(f->runtime, "provided.al2023");
  EXPECT_EQ(f->role, kRole);
  EXPECT_EQ(f->memory_mb, 128u);
  EXPECT_EQ(f->timeout_s, 3u);
  EXPECT_EQ(f->version, "$LATEST");
  EXPECT_FALSE(f->revision_id.empty());
  EXPECT_GT(f->code_size, 0u);
  EXPECT_TRUE(fs::exists(f->code_dir / "bootstrap"));
  EXPECT_EQ(f->arn(), "arn:aws:lambda:us-east-1:123456789012:function:hello");

  auto got = registry_->resolve(kAccount, "hello", "");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ((*got)->revision_id, f->revision_id);
  EXPECT_TRUE(registry_->resolve(kAccount, "hello", "$LATEST").ok());
  EXPECT_TRUE(registry_->resolve(kAccount, f->arn(), "").ok());
}

TEST_F(RegistryTest, ResolveOfUnknownFunctionOrVersionIsNotFound) {
  create("hello");
  auto missing = registry_->resolve(kAccount, "nope", "");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().type(), "ResourceNotFoundException");
  EXPECT_EQ(missing.status().http_status(), 404);
  auto version = registry_->resolve(kAccount, "hello", "7");
  ASSERT_FALSE(version.ok());
  EXPECT_EQ(version.status().type(), "ResourceNotFoundException");
  auto other_account = registry_->resolve("210987654321", "hello", "");
  EXPECT_EQ(other_account.status().type(), "ResourceNotFoundException");
  auto mismatch = registry_->resolve(kAccount, "hello:$LATEST", "1");
  EXPECT_EQ(mismatch.status().type(), "InvalidParameterValueException");
}

TEST_F(RegistryTest, ListIsPerAccountAndOrderedByName) {
  create("charlie");
  create("alpha");
  create("bravo");
  ASSERT_TRUE(registry_->create_function("210987654321", create_request("zulu")).ok());
  auto list = registry_->list(kAccount);
  ASSERT_EQ(list.size(), 3u);
  EXPECT_EQ(list[0]->name, "alpha");
  EXPECT_EQ(list[1]->name, "bravo");
  EXPECT_EQ(list[2]->name, "charlie");
  EXPECT_EQ(registry_->usage(kAccount).function_count, 3u);
  EXPECT_EQ(registry_->usage("210987654321").function_count, 1u);
  EXPECT_TRUE(registry_->list("000000000000").empty());
}

TEST_F(RegistryTest, ListPageVisitsOnlyThePageFromTheMarker) {
  char name[16];
  for (int i = 0; i < 60; ++i) {
    std::snprintf(name, sizeof name, "fn-%03d", i);
    ASSERT_TRUE(create(name));
  }
  uint64_t before = registry_->entries_listed();
  auto page = registry_->list_page(kAccount, "fn-039", 5);
  ASSERT_EQ(page.functions.size(), 5u);
  EXPECT_EQ(page.functions[0]->name, "fn-040");
  EXPECT_EQ(page.functions[4]->name, "fn-044");
  EXPECT_TRUE(page.more);
  EXPECT_LE(registry_->entries_listed() - before, 6u) << "a page walks the registry beyond itself";

  auto last = registry_->list_page(kAccount, "fn-057", 5);
  ASSERT_EQ(last.functions.size(), 2u);
  EXPECT_FALSE(last.more);
  EXPECT_TRUE(registry_->list_page(kAccount, "fn-059", 5).functions.empty());
  EXPECT_TRUE(registry_->list_page("000000000000", "", 5).functions.empty());
}

TEST_F(RegistryTest, PagingSeesEveryStableFunctionOnceWhileOthersComeAndGo) {
  std::set<std::string> stable;
  char name[16];
  for (int i = 0; i < 40; i += 2) {
    std::snprintf(name, sizeof name, "fn-%03d", i);
    ASSERT_TRUE(create(name));
    stable.insert(name);
  }
  std::map<std::string, int> seen;
  std::string after;
  for (int round = 0; round < 100; ++round) {
    auto page = registry_->list_page(kAccount, after, 3);
    for (const auto& f : page.functions) seen[f->name]++;
    if (!page.more) break;
    after = page.functions.back()->name;
    // Between pages: a function appears behind the marker and one ahead of it, the one
    // added ahead last time goes, and so does the marker's own function if transient.
    create("fn-000-b" + std::to_string(round));
    create("fn-038-a" + std::to_string(round));
    if (round > 0) (void)registry_->delete_function(kAccount, "fn-038-a" + std::to_string(round - 1), "");
    if (!stable.count(after)) (void)registry_->delete_function(kAccount, after, "");
  }
  for (const auto& s : stable) EXPECT_EQ(seen[s], 1) << s;
  for (const auto& [n, count] : seen) EXPECT_EQ(count, 1) << n << " seen twice";
}

TEST_F(RegistryTest, CreateTwiceIsResourceConflict) {
  create("dup");
  auto again = registry_->create_function(kAccount, create_request("dup"));
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.status().type(), "ResourceConflictException");
  EXPECT_EQ(again.status().http_status(), 409);
}

TEST_F(RegistryTest, UpdateConfigurationChangesFieldsAndRevision) {
  auto v1 = create("fn");
  auto v2 = registry_->update_configuration(kAccount, "fn",
                                            {{"MemorySize", 512}, {"Timeout", 30}, {"Description", "d"}});
  ASSERT_TRUE(v2.ok()) << v2.status().message();
  EXPECT_EQ((*v2)->memory_mb, 512u);
  EXPECT_EQ((*v2)->timeout_s, 30u);
  EXPECT_EQ((*v2)->description, "d");
  EXPECT_EQ((*v2)->code_hex, v1->code_hex);
  EXPECT_NE((*v2)->revision_id, v1->revision_id);
  EXPECT_NE((*v2)->sandbox_key(), v1->sandbox_key());
  EXPECT_EQ(v1->memory_mb, 128u) << "the old snapshot is immutable";
  EXPECT_EQ((*registry_->resolve(kAccount, "fn", ""))->memory_mb, 512u);
}

TEST_F(RegistryTest, UpdateCodeReplacesTheTreeAndRevision) {
  auto v1 = create("fn");
  auto v2 = registry_->update_code(kAccount, "fn", {{"ZipFile", zip_b64("#!/bin/sh\necho two\n")}});
  ASSERT_TRUE(v2.ok()) << v2.status().message();
  EXPECT_NE((*v2)->code_hex, v1->code_hex);
  EXPECT_NE((*v2)->code_sha256, v1->code_sha256);
  EXPECT_NE((*v2)->sandbox_key(), v1->sandbox_key());
  EXPECT_TRUE(fs::exists((*v2)->code_dir / "bootstrap"));
  // Same configuration.
  EXPECT_EQ((*v2)->role, v1->role);
}

TEST_F(RegistryTest, EveryUpdateGetsANewRevisionEvenWithoutChanges) {
  auto v1 = create("fn");
  auto v2 = registry_->update_configuration(kAccount, "fn", json::object());
  auto v3 = registry_->update_configuration(kAccount, "fn", json::object());
  ASSERT_TRUE(v2.ok());
  ASSERT_TRUE(v3.ok());
  EXPECT_NE(v1->revision_id, (*v2)->revision_id);
  EXPECT_NE((*v2)->revision_id, (*v3)->revision_id);
  EXPECT_NE((*v2)->sandbox_key(), (*v3)->sandbox_key());
}

TEST_F(RegistryTest, UpdateOfMissingFunctionIsNotFound) {
  auto r = registry_->update_configuration(kAccount, "ghost", {{"Timeout", 5}});
  EXPECT_EQ(r.status().type(), "ResourceNotFoundException");
  auto c = registry_->update_code(kAccount, "ghost", {{"ZipFile", zip_b64("x")}});
  EXPECT_EQ(c.status().type(), "ResourceNotFoundException");
}

TEST_F(RegistryTest, StaleRevisionIdIsPreconditionFailed) {
  auto v1 = create("fn");
  auto stale = registry_->update_configuration(kAccount, "fn",
                                               {{"Timeout", 10}, {"RevisionId", "00000000-0000-4000-8000-000000000000"}});
  ASSERT_FALSE(stale.ok());
  EXPECT_EQ(stale.status().type(), "PreconditionFailedException");
  EXPECT_EQ(stale.status().http_status(), 412);
  EXPECT_EQ((*registry_->resolve(kAccount, "fn", ""))->timeout_s, 3u) << "nothing changed";

  auto code = registry_->update_code(kAccount, "fn", {{"ZipFile", zip_b64("y")}, {"RevisionId", "stale"}});
  EXPECT_EQ(code.status().type(), "PreconditionFailedException");

  auto fresh = registry_->update_configuration(kAccount, "fn", {{"Timeout", 10}, {"RevisionId", v1->revision_id}});
  ASSERT_TRUE(fresh.ok()) << fresh.status().message();
  EXPECT_EQ((*fresh)->timeout_s, 10u);
}

TEST_F(RegistryTest, DeleteRemovesTheFunction) {
  create("fn");
  ASSERT_TRUE(registry_->delete_function(kAccount, "fn", "").ok());
  EXPECT_EQ(registry_->resolve(kAccount, "fn", "").status().type(), "ResourceNotFoundException");
  EXPECT_TRUE(registry_->list(kAccount).empty());
  EXPECT_EQ(registry_->delete_function(kAccount, "fn", "").type(), "ResourceNotFoundException");
  // The name is free again.
  EXPECT_TRUE(registry_->create_function(kAccount, create_request("fn")).ok());
}

TEST_F(RegistryTest, DeleteOfLatestQualifierIsRefused) {
  create("fn");
  EXPECT_EQ(registry_->delete_function(kAccount, "fn", "$LATEST").type(), "InvalidParameterValueException");
  EXPECT_EQ(registry_->delete_function(kAccount, "fn", "3").type(), "ResourceNotFoundException");
  EXPECT_TRUE(registry_->resolve(kAccount, "fn", "").ok());
}

// ---- on_retired ----

TEST_F(RegistryTest, OnRetiredGetsTheOldSnapshotOnUpdateAndDelete) {
  std::vector<FunctionVersionPtr> retired;
  registry_->on_retired([&](const FunctionVersionPtr& f) { retired.push_back(f); });
  auto v1 = create("fn");
  EXPECT_TRUE(retired.empty()) << "create retires nothing";

  auto v2 = registry_->update_configuration(kAccount, "fn", {{"Timeout", 9}});
  ASSERT_TRUE(v2.ok());
  ASSERT_EQ(retired.size(), 1u);
  EXPECT_EQ(retired[0]->revision_id, v1->revision_id) << "the snapshot that served before";

  auto v3 = registry_->update_code(kAccount, "fn", {{"ZipFile", zip_b64("new")}});
  ASSERT_TRUE(v3.ok());
  ASSERT_EQ(retired.size(), 2u);
  EXPECT_EQ(retired[1]->revision_id, (*v2)->revision_id);

  ASSERT_TRUE(registry_->delete_function(kAccount, "fn", "").ok());
  ASSERT_EQ(retired.size(), 3u);
  EXPECT_EQ(retired[2]->revision_id, (*v3)->revision_id);
}

TEST_F(RegistryTest, FailedUpdateRetiresNothing) {
  std::vector<FunctionVersionPtr> retired;
  registry_->on_retired([&](const FunctionVersionPtr& f) { retired.push_back(f); });
  create("fn");
  EXPECT_FALSE(registry_->update_configuration(kAccount, "fn", {{"Timeout", 0}}).ok());
  EXPECT_FALSE(registry_->update_configuration(kAccount, "fn", {{"RevisionId", "x"}}).ok());
  EXPECT_FALSE(registry_->delete_function(kAccount, "ghost", "").ok());
  EXPECT_TRUE(retired.empty());
}

// ---- persistence ----

TEST_F(RegistryTest, ReopenLoadsEveryFunctionWithItsConfiguration) {
  auto a = create("alpha");
  json req = create_request("bravo");
  req["MemorySize"] = 1024;
  req["Timeout"] = 60;
  req["Environment"] = {{"Variables", {{"GREETING", "hi"}}}};
  req["Tags"] = {{"team", "kiln"}};
  auto b = registry_->create_function(kAccount, req);
  ASSERT_TRUE(b.ok());
  auto b2 = registry_->update_configuration(kAccount, "bravo", {{"Description", "second"}});
  ASSERT_TRUE(b2.ok());
  create("charlie");
  ASSERT_TRUE(registry_->delete_function(kAccount, "charlie", "").ok());

  open();

  auto list = registry_->list(kAccount);
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(list[0]->name, "alpha");
  EXPECT_EQ(list[0]->revision_id, a->revision_id);
  const FunctionVersion& got = *list[1];
  EXPECT_EQ(got.name, "bravo");
  EXPECT_EQ(got.memory_mb, 1024u);
  EXPECT_EQ(got.timeout_s, 60u);
  EXPECT_EQ(got.description, "second");
  EXPECT_EQ(got.revision_id, (*b2)->revision_id);
  EXPECT_EQ(got.code_sha256, (*b2)->code_sha256);
  ASSERT_EQ(got.environment.size(), 1u);
  EXPECT_EQ(got.environment[0].first, "GREETING");
  EXPECT_EQ(got.environment[0].second, "hi");
  EXPECT_EQ(got.tags.at("team"), "kiln");
  EXPECT_TRUE(fs::exists(got.code_dir / "bootstrap"));
  EXPECT_EQ(registry_->resolve(kAccount, "charlie", "").status().type(), "ResourceNotFoundException");
}

// ---- parse_function_ref ----

TEST(ParseFunctionRef, AcceptsNameQualifierPartialAndFullArn) {
  auto name = parse_function_ref("my-fn_1", kRegion, kAccount);
  ASSERT_TRUE(name.ok());
  EXPECT_EQ(name->name, "my-fn_1");
  EXPECT_EQ(name->qualifier, "");

  auto q = parse_function_ref("my-fn:$LATEST", kRegion, kAccount);
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(q->name, "my-fn");
  EXPECT_EQ(q->qualifier, "$LATEST");

  auto alias = parse_function_ref("my-fn:prod", kRegion, kAccount);
  ASSERT_TRUE(alias.ok());
  EXPECT_EQ(alias->qualifier, "prod");

  auto partial = parse_function_ref("123456789012:function:my-fn", kRegion, kAccount);
  ASSERT_TRUE(partial.ok());
  EXPECT_EQ(partial->name, "my-fn");

  auto partial_q = parse_function_ref("123456789012:function:my-fn:7", kRegion, kAccount);
  ASSERT_TRUE(partial_q.ok());
  EXPECT_EQ(partial_q->qualifier, "7");

  auto arn = parse_function_ref("arn:aws:lambda:us-east-1:123456789012:function:my-fn", kRegion, kAccount);
  ASSERT_TRUE(arn.ok());
  EXPECT_EQ(arn->name, "my-fn");
  EXPECT_EQ(arn->qualifier, "");

  auto arn_q = parse_function_ref("arn:aws:lambda:us-east-1:123456789012:function:my-fn:$LATEST", kRegion, kAccount);
  ASSERT_TRUE(arn_q.ok());
  EXPECT_EQ(arn_q->qualifier, "$LATEST");
}

TEST(ParseFunctionRef, OtherAccountIsAccessDenied) {
  for (const char* p : {"arn:aws:lambda:us-east-1:999999999999:function:f", "999999999999:function:f"}) {
    auto r = parse_function_ref(p, kRegion, kAccount);
    ASSERT_FALSE(r.ok()) << p;
    EXPECT_EQ(r.status().type(), "AccessDeniedException") << p;
    EXPECT_EQ(r.status().http_status(), 403) << p;
  }
}

TEST(ParseFunctionRef, OtherRegionIsNotFound) {
  auto r = parse_function_ref("arn:aws:lambda:eu-west-1:123456789012:function:f", kRegion, kAccount);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().type(), "ResourceNotFoundException");
}

TEST(ParseFunctionRef, BadNamesAreValidationErrors) {
  const std::vector<std::string> bad = {
      "", "has space", "slash/name", "dot.name", "a:b:c", "fn:", ":q", "fn:bad.q",
      "arn:aws:lambda:us-east-1:123456789012:function:", "arn:aws:lambda:us-east-1:1234:function:f",
      std::string(65, 'a'), std::string(257, 'a'), "fn:" + std::string(129, 'q'), "f\xc3\xa9"};
  for (const auto& p : bad) {
    auto r = parse_function_ref(p, kRegion, kAccount);
    ASSERT_FALSE(r.ok()) << "'" << p << "' was accepted";
    EXPECT_EQ(r.status().type(), "ValidationException") << p;
    EXPECT_EQ(r.status().http_status(), 400) << p;
  }
  EXPECT_TRUE(parse_function_ref(std::string(64, 'a'), kRegion, kAccount).ok());
}

TEST_F(RegistryTest, CreateWithQualifiedOrInvalidNameIsValidationError) {
  EXPECT_EQ(create_error({{"FunctionName", "fn:1"}}).type(), "ValidationException");
  EXPECT_EQ(create_error({{"FunctionName", "bad name"}}).type(), "ValidationException");
  EXPECT_EQ(create_error({{"FunctionName", nullptr}}).type(), "ValidationException");
  EXPECT_EQ(create_error({{"FunctionName", 7}}).type(), "ValidationException");
  EXPECT_EQ(create_error({{"FunctionName", "999999999999:function:fn"}}).type(), "AccessDeniedException");
  EXPECT_TRUE(registry_->list(kAccount).empty());
}

// ---- field validation ----

TEST_F(RegistryTest, MemorySizeRangeIs128To10240) {
  EXPECT_EQ(create_error({{"MemorySize", 127}}).type(), "ValidationException");
  EXPECT_EQ(create_error({{"MemorySize", 10241}}).type(), "ValidationException");
  EXPECT_EQ(create_error({{"MemorySize", "256"}}).type(), "InvalidRequestContentException");
  EXPECT_TRUE(create_error({{"FunctionName", "lo"}, {"MemorySize", 128}}).ok());
  EXPECT_TRUE(create_error({{"FunctionName", "hi"}, {"MemorySize", 10240}}).ok());
  EXPECT_EQ((*registry_->resolve(kAccount, "hi", ""))->memory_mb, 10240u);
}

TEST_F(RegistryTest, TimeoutRangeIs1To900) {
  EXPECT_EQ(create_error({{"Timeout", 0}}).type(), "ValidationException");
  EXPECT_EQ(create_error({{"Timeout", 901}}).type(), "ValidationException");
  EXPECT_EQ(create_error({{"Timeout", -1}}).type(), "ValidationException");
  EXPECT_TRUE(create_error({{"FunctionName", "lo"}, {"Timeout", 1}}).ok());
  EXPECT_TRUE(create_error({{"FunctionName", "hi"}, {"Timeout", 900}}).ok());
  EXPECT_EQ((*registry_->resolve(kAccount, "hi", ""))->timeout_s, 900u);
}

TEST_F(RegistryTest, EphemeralStorageRangeIs512To10240) {
  EXPECT_EQ(create_error({{"EphemeralStorage", {{"Size", 511}}}}).type(), "ValidationException");
  EXPECT_EQ(create_error({{"EphemeralStorage", {{"Size", 10241}}}}).type(), "ValidationException");
  EXPECT_EQ(create_error({{"EphemeralStorage", {{"Size", "1024"}}}}).type(), "InvalidRequestContentException");
  EXPECT_EQ(create_error({{"EphemeralStorage", 1024}}).type(), "InvalidRequestContentException");
  EXPECT_TRUE(create_error({{"FunctionName", "lo"}, {"EphemeralStorage", {{"Size", 512}}}}).ok());
  EXPECT_TRUE(create_error({{"FunctionName", "hi"}, {"EphemeralStorage", {{"Size", 10240}}}}).ok());
  EXPECT_EQ((*registry_->resolve(kAccount, "hi", ""))->ephemeral_mb, 10240u);
}

TEST_F(RegistryTest, ReservedEnvironmentKeysAreRefused) {
  for (const char* key : {"AWS_REGION", "AWS_LAMBDA_RUNTIME_API", "AWS_LAMBDA_FUNCTION_NAME",
                          "AWS_SECRET_ACCESS_KEY", "LAMBDA_TASK_ROOT"}) {
    Status s = create_error({{"Environment", {{"Variables", {{key, "x"}}}}}});
    EXPECT_EQ(s.type(), "InvalidParameterValueException") << key;
    EXPECT_NE(s.message().find(key), std::string::npos) << s.message();
  }
  // "_HANDLER" fails the model's key pattern first, as in Lambda.
  EXPECT_EQ(create_error({{"Environment", {{"Variables", {{"_HANDLER", "x"}}}}}}).type(), "ValidationException");
}

TEST_F(RegistryTest, EnvironmentOver4KBIsRefusedAndExactly4KBAccepted) {
  // Key "BIG" (3 bytes) + value: the limit counts keys and values.
  Status over = create_error({{"Environment", {{"Variables", {{"BIG", std::string(4094, 'v')}}}}}});
  EXPECT_EQ(over.type(), "InvalidParameterValueException");
  EXPECT_NE(over.message().find("4KB"), std::string::npos) << over.message();
  EXPECT_TRUE(create_error({{"FunctionName", "ok"}, {"Environment", {{"Variables", {{"BIG", std::string(4093, 'v')}}}}}})
                  .ok());
}

TEST_F(RegistryTest, BadEnvironmentShapesAreRefused) {
  EXPECT_EQ(create_error({{"Environment", {{"Variables", {{"1BAD", "x"}}}}}}).type(), "ValidationException");
  EXPECT_EQ(create_error({{"Environment", {{"Variables", {{"A-B", "x"}}}}}}).type(), "ValidationException");
  EXPECT_EQ(create_error({{"Environment", {{"Variables", {{"GOOD", 5}}}}}}).type(), "InvalidRequestContentException");
  EXPECT_EQ(create_error({{"Environment", "x"}}).type(), "InvalidRequestContentException");
}

TEST_F(RegistryTest, BadOrMissingRoleIsValidationError) {
  EXPECT_EQ(create_error({{"Role", "not-an-arn"}}).type(), "ValidationException");
  EXPECT_EQ(create_error({{"Role", "arn:aws:iam::1234:role/x"}}).type(), "ValidationException");
  json req = create_request("fn");
  req.erase("Role");
  auto r = registry_->create_function(kAccount, req);
  EXPECT_EQ(r.status().type(), "ValidationException");
}

TEST_F(RegistryTest, UnsupportedOrMissingRuntimeIsInvalidParameter) {
  EXPECT_EQ(create_error({{"Runtime", "java8"}}).type(), "InvalidParameterValueException");
  EXPECT_EQ(create_error({{"Runtime", "python2.7"}}).type(), "InvalidParameterValueException");
  json req = create_request("fn");
  req.erase("Runtime");
  EXPECT_EQ(registry_->create_function(kAccount, req).status().type(), "InvalidParameterValueException");
}

TEST_F(RegistryTest, ManagedRuntimeNeedsAHandler) {
  json req = create_request("fn");
  req["Runtime"] = "python3.11";
  req.erase("Handler");
  EXPECT_EQ(registry_->create_function(kAccount, req).status().type(), "InvalidParameterValueException");
  req["Handler"] = "app.handler";
  EXPECT_TRUE(registry_->create_function(kAccount, req).ok());
}

TEST_F(RegistryTest, Arm64IsRefusedAndX86Accepted) {
  EXPECT_EQ(create_error({{"Architectures", {"arm64"}}}).type(), "InvalidParameterValueException");
  EXPECT_EQ(create_error({{"Architectures", {"x86_64", "arm64"}}}).type(), "ValidationException");
  EXPECT_TRUE(create_error({{"Architectures", {"x86_64"}}}).ok());
  EXPECT_EQ(registry_->update_code(kAccount, "fn", {{"ZipFile", zip_b64("z")}, {"Architectures", {"arm64"}}})
                .status()
                .type(),
            "InvalidParameterValueException");
}

TEST_F(RegistryTest, ImagePackageTypeIsRefused) {
  EXPECT_EQ(create_error({{"PackageType", "Image"}}).type(), "InvalidParameterValueException");
  EXPECT_TRUE(create_error({{"PackageType", "Zip"}}).ok());
}

TEST_F(RegistryTest, S3OrImageCodeIsRefused) {
  EXPECT_EQ(create_error({{"Code", {{"S3Bucket", "b"}, {"S3Key", "k"}}}}).type(), "InvalidParameterValueException");
  EXPECT_EQ(create_error({{"Code", {{"ImageUri", "x"}}}}).type(), "InvalidParameterValueException");
  EXPECT_EQ(create_error({{"Code", json::object()}}).type(), "InvalidParameterValueException");
  EXPECT_EQ(create_error({{"Code", nullptr}}).type(), "ValidationException");
  create("fn");
  EXPECT_EQ(registry_->update_code(kAccount, "fn", {{"S3Bucket", "b"}, {"S3Key", "k"}}).status().type(),
            "InvalidParameterValueException");
  EXPECT_EQ(registry_->update_code(kAccount, "fn", json::object()).status().type(), "InvalidParameterValueException");
}

TEST_F(RegistryTest, BadZipFileIsRefusedAndNothingIsCreated) {
  EXPECT_EQ(create_error({{"Code", {{"ZipFile", "!!not base64!!"}}}}).type(), "InvalidRequestContentException");
  EXPECT_EQ(create_error({{"Code", {{"ZipFile", 12}}}}).type(), "InvalidRequestContentException");
  EXPECT_EQ(create_error({{"Code", {{"ZipFile", crypto::base64("not a zip at all")}}}}).type(),
            "InvalidParameterValueException");
  EXPECT_TRUE(registry_->list(kAccount).empty());
}

TEST_F(RegistryTest, LayersAndLongDescriptionAreRefused) {
  EXPECT_EQ(create_error({{"Layers", {"arn:aws:lambda:us-east-1:123456789012:layer:l:1"}}}).type(),
            "InvalidParameterValueException");
  EXPECT_EQ(create_error({{"Description", std::string(257, 'd')}}).type(), "ValidationException");
  EXPECT_TRUE(create_error({{"Description", std::string(256, 'd')}}).ok());
}

TEST_F(RegistryTest, InvalidUpdateLeavesTheFunctionUnchanged) {
  auto v1 = create("fn");
  for (const json& bad : {json{{"MemorySize", 10241}}, json{{"Timeout", 901}}, json{{"Runtime", "java8"}},
                          json{{"Environment", {{"Variables", {{"AWS_REGION", "x"}}}}}}}) {
    auto r = registry_->update_configuration(kAccount, "fn", bad);
    EXPECT_FALSE(r.ok()) << bad.dump();
  }
  auto now = registry_->resolve(kAccount, "fn", "");
  ASSERT_TRUE(now.ok());
  EXPECT_EQ((*now)->revision_id, v1->revision_id);
  EXPECT_EQ((*now)->memory_mb, 128u);
}

TEST_F(RegistryTest, CreateWithMoreThan50TagsIsRefusedAsTagResourceIs) {
  json tags = json::object();
  for (int i = 0; i < 51; ++i) tags["k" + std::to_string(i)] = "v";
  Status s = create_error({{"Tags", tags}});
  EXPECT_EQ(s.type(), "InvalidParameterValueException");
  EXPECT_EQ(s.http_status(), 400);
  EXPECT_EQ(s.message(), "Number of tags exceeds resource tag limit.");
  EXPECT_EQ(registry_->resolve(kAccount, "fn", "").status().type(), "ResourceNotFoundException");

  tags.erase("k50");
  ASSERT_TRUE(create_error({{"Tags", tags}}).ok());
  auto f = registry_->configuration(kAccount, "fn", "");
  ASSERT_TRUE(f.ok());
  Status more = registry_->tag(kAccount, (*f)->arn(), {{"one-more", "v"}});
  EXPECT_EQ(more.type(), "InvalidParameterValueException");
  EXPECT_EQ(more.message(), s.message());
}

TEST_F(RegistryTest, NonObjectRequestIsInvalidRequestContent) {
  EXPECT_EQ(registry_->create_function(kAccount, json::array()).status().type(), "InvalidRequestContentException");
  create("fn");
  EXPECT_EQ(registry_->update_configuration(kAccount, "fn", "x").status().type(), "InvalidRequestContentException");
}

}  // namespace
}  // namespace kiln::registry
