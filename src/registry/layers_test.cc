// LayerStore against a real SQLite file and CodeStore in a temp dir: publishing and
// numbering, get and list (filters, paging), delete tombstones, persistence, resolve
// for functions, and the bad inputs of the API's requests.
#include "registry/layers.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "common/crypto.h"
#include "registry/testdata/zip_builder.h"

namespace kiln::registry {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr char kAccount[] = "123456789012";
constexpr char kOther[] = "210987654321";
constexpr char kRegion[] = "us-east-1";

LayerPublish publish_request(const std::string& file_body, std::vector<std::string> runtimes = {},
                             std::vector<std::string> archs = {}) {
  LayerPublish p;
  p.zip = testing::build_zip({{"python/mod.py", file_body}});
  p.compatible_runtimes = std::move(runtimes);
  p.compatible_architectures = std::move(archs);
  return p;
}

LayerListQuery query(std::string runtime, std::string arch, std::string marker, std::string max_items) {
  LayerListQuery q;
  q.compatible_runtime = std::move(runtime);
  q.compatible_architecture = std::move(arch);
  q.marker = std::move(marker);
  q.max_items = std::move(max_items);
  return q;
}

std::vector<int64_t> versions_of(const LayerPage& page) {
  std::vector<int64_t> out;
  for (const auto& v : page.items) out.push_back(v.version);
  return out;
}

std::vector<std::string> names_of(const LayerPage& page) {
  std::vector<std::string> out;
  for (const auto& v : page.items) out.push_back(v.name + ":" + std::to_string(v.version));
  return out;
}

class LayerStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/kiln-layers-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    open();
  }
  void TearDown() override {
    layers_.reset();
    code_.reset();
    fs::remove_all(dir_);
  }
  void open(CodeLimits limits = {}) {
    layers_.reset();
    code_ = std::make_unique<CodeStore>(dir_ / "code", limits);
    // A fixed clock: 2026-01-02T03:04:05.678Z.
    auto clock = [] { return std::chrono::system_clock::time_point(std::chrono::milliseconds(1767323045678)); };
    auto s = LayerStore::open(dir_ / "kiln.db", *code_, kRegion, clock);
    ASSERT_TRUE(s.ok()) << s.status().message();
    layers_ = std::move(s).value();
  }
  LayerVersion publish(const std::string& name, const std::string& body, std::vector<std::string> runtimes = {},
                       std::vector<std::string> archs = {}, const std::string& account = kAccount) {
    auto v = layers_->publish(account, name, publish_request(body, std::move(runtimes), std::move(archs)));
    EXPECT_TRUE(v.ok()) << v.status().message();
    return v.ok() ? *v : LayerVersion{};
  }
  LayerPage list_layers(LayerListQuery q = {}) {
    auto page = layers_->list_layers(kAccount, q);
    EXPECT_TRUE(page.ok()) << page.status().message();
    return page.ok() ? *page : LayerPage{};
  }
  LayerPage list_versions(const std::string& name, LayerListQuery q = {}) {
    auto page = layers_->list_versions(kAccount, name, q);
    EXPECT_TRUE(page.ok()) << page.status().message();
    return page.ok() ? *page : LayerPage{};
  }

  fs::path dir_;
  std::unique_ptr<CodeStore> code_;
  std::unique_ptr<LayerStore> layers_;
};

TEST_F(LayerStoreTest, PublishNumbersVersionsPerLayerAndDescribesThem) {
  LayerPublish req = publish_request("x = 1\n", {"python3.12"}, {"x86_64"});
  req.description = "deps";
  req.license_info = "MIT";
  auto v1 = layers_->publish(kAccount, "deps", req);
  ASSERT_TRUE(v1.ok()) << v1.status().message();
  EXPECT_EQ(v1->version, 1);
  EXPECT_EQ(v1->layer_arn(), "arn:aws:lambda:us-east-1:123456789012:layer:deps");
  EXPECT_EQ(v1->version_arn(), "arn:aws:lambda:us-east-1:123456789012:layer:deps:1");
  EXPECT_EQ(v1->description, "deps");
  EXPECT_EQ(v1->license_info, "MIT");
  EXPECT_EQ(v1->compatible_runtimes, std::vector<std::string>{"python3.12"});
  EXPECT_EQ(v1->created_date, "2026-01-02T03:04:05.678+0000");
  EXPECT_EQ(v1->code_size, req.zip.size());
  EXPECT_EQ(v1->code_sha256, crypto::base64(crypto::sha256(req.zip)));
  EXPECT_EQ(v1->unzipped_size, 6u);
  EXPECT_EQ(publish("deps", "x = 2\n").version, 2);
  EXPECT_EQ(publish("other", "x = 2\n").version, 1);
  EXPECT_EQ(publish("deps", "x = 2\n", {}, {}, kOther).version, 1);
}

TEST_F(LayerStoreTest, IdenticalZipIsStoredOnceAndSharedWithFunctionCode) {
  LayerPublish req = publish_request("shared\n");
  auto as_code = code_->put(req.zip);
  ASSERT_TRUE(as_code.ok());
  auto v = layers_->publish(kAccount, "a", req);
  auto w = layers_->publish(kAccount, "b", req);
  ASSERT_TRUE(v.ok() && w.ok());
  EXPECT_EQ(v->code_hex, as_code->sha256_hex);
  EXPECT_EQ(w->code_hex, as_code->sha256_hex);
  EXPECT_EQ(layers_->referenced_code(), std::vector<std::string>{as_code->sha256_hex});
}

TEST_F(LayerStoreTest, VersionNumbersAreNeverReusedAfterDelete) {
  publish("l", "1");
  publish("l", "2");
  ASSERT_TRUE(layers_->remove(kAccount, "l", 2).ok());
  EXPECT_EQ(publish("l", "3").version, 3);
  ASSERT_TRUE(layers_->remove(kAccount, "l", 1).ok());
  ASSERT_TRUE(layers_->remove(kAccount, "l", 3).ok());
  open();
  EXPECT_EQ(publish("l", "4").version, 4);
}

TEST_F(LayerStoreTest, GetRefusesUnknownLayerVersionAndDeleted) {
  publish("l", "1");
  EXPECT_TRUE(layers_->get(kAccount, "l", 1).ok());
  for (auto [name, version] : std::vector<std::pair<std::string, int64_t>>{{"ghost", 1}, {"l", 2}, {"l", 0}}) {
    auto r = layers_->get(kAccount, name, version);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().type(), "ResourceNotFoundException");
    EXPECT_EQ(r.status().http_status(), 404);
  }
  ASSERT_TRUE(layers_->remove(kAccount, "l", 1).ok());
  EXPECT_EQ(layers_->get(kAccount, "l", 1).status().type(), "ResourceNotFoundException");
}

TEST_F(LayerStoreTest, AnotherAccountsLayerIsNotFound) {
  LayerVersion v = publish("mine", "1");
  EXPECT_EQ(layers_->get(kOther, "mine", 1).status().type(), "ResourceNotFoundException");
  EXPECT_EQ(layers_->get_by_arn(kOther, v.version_arn()).status().type(), "ResourceNotFoundException");
  EXPECT_EQ(layers_->resolve(kOther, v.version_arn()).status().type(), "InvalidParameterValueException");
  auto page = layers_->list_layers(kOther, {});
  ASSERT_TRUE(page.ok());
  EXPECT_TRUE(page->items.empty());
  ASSERT_TRUE(layers_->remove(kOther, "mine", 1).ok());  // a no-op for the other account
  EXPECT_TRUE(layers_->get(kAccount, "mine", 1).ok());
}

TEST_F(LayerStoreTest, GetByArnFindsVersionAndRejectsMalformedArns) {
  LayerVersion v = publish("l", "1");
  auto got = layers_->get_by_arn(kAccount, v.version_arn());
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->code_hex, v.code_hex);
  for (const char* bad : {"", "arn:aws:lambda:us-east-1:123456789012:layer:l", "l:1",
                          "arn:aws:lambda:us-east-1:123456789012:function:l:1",
                          "arn:aws:lambda:us-east-1:123456789012:layer:l:x",
                          "arn:aws:lambda:us-east-1:1234:layer:l:1"}) {
    EXPECT_EQ(layers_->get_by_arn(kAccount, bad).status().type(), "ValidationException") << bad;
  }
  EXPECT_EQ(layers_->get_by_arn(kAccount, "arn:aws:lambda:eu-west-1:123456789012:layer:l:1").status().type(),
            "ResourceNotFoundException");
  EXPECT_EQ(layers_->get_by_arn(kAccount, "arn:aws:lambda:us-east-1:123456789012:layer:l:9").status().type(),
            "ResourceNotFoundException");
}

TEST_F(LayerStoreTest, ListLayersShowsLatestMatchingVersionPerLayer) {
  publish("a", "1", {"python3.12"}, {"x86_64"});
  publish("a", "2", {"nodejs20.x"}, {"arm64"});
  publish("b", "1", {"python3.12", "nodejs20.x"});
  publish("c", "1");
  EXPECT_EQ(names_of(list_layers()), (std::vector<std::string>{"a:2", "b:1", "c:1"}));
  EXPECT_EQ(names_of(list_layers(query("python3.12", "", "", ""))), (std::vector<std::string>{"a:1", "b:1"}));
  EXPECT_EQ(names_of(list_layers(query("", "arm64", "", ""))), (std::vector<std::string>{"a:2"}));
  EXPECT_EQ(names_of(list_layers(query("python3.12", "arm64", "", ""))),
            std::vector<std::string>{});
  ASSERT_TRUE(layers_->remove(kAccount, "a", 2).ok());
  ASSERT_TRUE(layers_->remove(kAccount, "c", 1).ok());
  EXPECT_EQ(names_of(list_layers()), (std::vector<std::string>{"a:1", "b:1"}));
}

TEST_F(LayerStoreTest, ListLayersPaginatesWithMarkers) {
  for (const char* n : {"e", "a", "d", "b", "c"}) publish(n, n);
  publish("c", "again");
  std::vector<std::string> seen;
  LayerListQuery q = query("", "", "", "2");
  int pages = 0;
  do {
    LayerPage page = list_layers(q);
    EXPECT_LE(page.items.size(), 2u);
    for (const auto& s : names_of(page)) seen.push_back(s);
    q.marker = page.next_marker;
    ++pages;
  } while (!q.marker.empty() && pages < 10);
  EXPECT_EQ(pages, 3);
  EXPECT_EQ(seen, (std::vector<std::string>{"a:1", "b:1", "c:2", "d:1", "e:1"}));
  // A page that ends exactly at the last layer has no marker.
  EXPECT_TRUE(list_layers(query("", "", "", "5")).next_marker.empty());
}

TEST_F(LayerStoreTest, ListVersionsNewestFirstWithFiltersAndPages) {
  for (int i = 1; i <= 5; ++i) publish("l", std::to_string(i), {i % 2 ? "python3.12" : "nodejs20.x"});
  publish("l-other", "x");
  ASSERT_TRUE(layers_->remove(kAccount, "l", 4).ok());
  EXPECT_EQ(versions_of(list_versions("l")), (std::vector<int64_t>{5, 3, 2, 1}));
  EXPECT_EQ(versions_of(list_versions("l", query("python3.12", "", "", ""))), (std::vector<int64_t>{5, 3, 1}));
  LayerPage first = list_versions("l", query("", "", "", "3"));
  EXPECT_EQ(versions_of(first), (std::vector<int64_t>{5, 3, 2}));
  ASSERT_FALSE(first.next_marker.empty());
  LayerPage second = list_versions("l", query("", "", first.next_marker, "3"));
  EXPECT_EQ(versions_of(second), (std::vector<int64_t>{1}));
  EXPECT_TRUE(second.next_marker.empty());
  EXPECT_TRUE(list_versions("ghost").items.empty());
}

TEST_F(LayerStoreTest, ListRejectsBadFiltersMarkersAndMaxItems) {
  publish("l", "1");
  for (LayerListQuery q : {query("cobol", "", "", ""),
                           query("", "mips", "", ""), query("", "", "", "0"),
                           query("", "", "", "51"), query("", "", "", "-1"),
                           query("", "", "", "ten")}) {
    EXPECT_EQ(layers_->list_layers(kAccount, q).status().type(), "ValidationException");
    EXPECT_EQ(layers_->list_versions(kAccount, "l", q).status().type(), "ValidationException");
  }
  EXPECT_EQ(layers_->list_layers(kAccount, query("", "", "!!!", "")).status().type(), "InvalidParameterValueException");
  EXPECT_EQ(layers_->list_versions(kAccount, "l", query("", "", crypto::base64("abc"), "")).status().type(),
            "InvalidParameterValueException");
}

TEST_F(LayerStoreTest, DeleteIsIdempotent) {
  publish("l", "1");
  EXPECT_TRUE(layers_->remove(kAccount, "l", 1).ok());
  EXPECT_TRUE(layers_->remove(kAccount, "l", 1).ok());
  EXPECT_TRUE(layers_->remove(kAccount, "l", 7).ok());
  EXPECT_TRUE(layers_->remove(kAccount, "ghost", 1).ok());
}

TEST_F(LayerStoreTest, VersionsAndTombstonesSurviveReopen) {
  LayerVersion v1 = publish("l", "1", {"python3.12"}, {"arm64"});
  LayerVersion v2 = publish("l", "2");
  ASSERT_TRUE(layers_->remove(kAccount, "l", 1).ok());
  open();
  auto got = layers_->get(kAccount, "l", 2);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->code_hex, v2.code_hex);
  EXPECT_EQ(got->created_date, v2.created_date);
  EXPECT_FALSE(layers_->get(kAccount, "l", 1).ok());
  auto kept = layers_->resolve(kAccount, v1.version_arn(), /*include_deleted=*/true);
  ASSERT_TRUE(kept.ok()) << kept.status().message();
  EXPECT_EQ(kept->code_hex, v1.code_hex);
  EXPECT_EQ(versions_of(list_versions("l")), std::vector<int64_t>{2});
}

TEST_F(LayerStoreTest, ResolveGivesTheExtractedTree) {
  LayerVersion v = publish("l", "print('hi')\n");
  auto c = layers_->resolve(kAccount, v.version_arn());
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->arn, v.version_arn());
  EXPECT_EQ(c->code_size, v.code_size);
  EXPECT_EQ(c->unzipped_size, 12u);
  std::ifstream in(c->dir / "python" / "mod.py");
  std::string body((std::istreambuf_iterator<char>(in)), {});
  EXPECT_EQ(body, "print('hi')\n");
}

TEST_F(LayerStoreTest, ResolveRefusesMissingDeletedAndMalformed) {
  LayerVersion v = publish("l", "1");
  auto missing = layers_->resolve(kAccount, "arn:aws:lambda:us-east-1:123456789012:layer:l:2");
  EXPECT_EQ(missing.status().type(), "InvalidParameterValueException");
  EXPECT_EQ(missing.status().message(),
            "Layer version arn:aws:lambda:us-east-1:123456789012:layer:l:2 does not exist.");
  EXPECT_EQ(layers_->resolve(kAccount, "arn:aws:lambda:eu-west-1:123456789012:layer:l:1").status().type(),
            "InvalidParameterValueException");
  EXPECT_EQ(layers_->resolve(kAccount, "not-an-arn").status().type(), "ValidationException");
  ASSERT_TRUE(layers_->remove(kAccount, "l", 1).ok());
  EXPECT_EQ(layers_->resolve(kAccount, v.version_arn()).status().type(), "InvalidParameterValueException");
  EXPECT_TRUE(layers_->resolve(kAccount, v.version_arn(), true).ok());
}

TEST_F(LayerStoreTest, BadZipAndZipOverLimitsRecordNothing) {
  LayerPublish bad;
  bad.zip = "not a zip at all";
  EXPECT_EQ(layers_->publish(kAccount, "l", bad).status().type(), "InvalidParameterValueException");
  bad.zip = "";
  EXPECT_EQ(layers_->publish(kAccount, "l", bad).status().type(), "InvalidParameterValueException");
  open(CodeLimits{.max_unzipped_bytes = 100});
  LayerPublish big;
  big.zip = testing::build_zip({{"big", std::string(101, 'x')}});
  auto r = layers_->publish(kAccount, "l", big);
  EXPECT_EQ(r.status().type(), "InvalidParameterValueException");
  EXPECT_TRUE(list_layers().items.empty());
  EXPECT_EQ(publish("l", "fits").version, 1);
}

TEST_F(LayerStoreTest, ConcurrentPublishesGetDistinctVersions) {
  std::vector<std::thread> threads;
  std::vector<int64_t> got(8);
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&, i] {
      auto v = layers_->publish(kAccount, "l", publish_request(std::to_string(i)));
      got[i] = v.ok() ? v->version : -1;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(std::set<int64_t>(got.begin(), got.end()), (std::set<int64_t>{1, 2, 3, 4, 5, 6, 7, 8}));
}

// ---------------------------------------------------------------- request parsing

json good_request() {
  return {{"Content", {{"ZipFile", crypto::base64(testing::build_zip({{"f", "x"}}))}}},
          {"Description", "d"},
          {"LicenseInfo", "MIT"},
          {"CompatibleRuntimes", {"python3.12", "provided.al2023"}},
          {"CompatibleArchitectures", {"x86_64", "arm64"}}};
}

TEST(LayerRequestTest, ParsesAGoodRequest) {
  auto p = parse_publish_request(good_request());
  ASSERT_TRUE(p.ok()) << p.status().message();
  EXPECT_EQ(p->description, "d");
  EXPECT_EQ(p->license_info, "MIT");
  EXPECT_EQ(p->compatible_runtimes, (std::vector<std::string>{"python3.12", "provided.al2023"}));
  EXPECT_EQ(p->compatible_architectures, (std::vector<std::string>{"x86_64", "arm64"}));
  EXPECT_EQ(p->zip, testing::build_zip({{"f", "x"}}));
  EXPECT_TRUE(parse_publish_request({{"Content", {{"ZipFile", "UEsFBgAAAAAAAAAAAAAAAAAAAAAAAA=="}}},
                                     {"Description", nullptr}})
                  .ok());
}

TEST(LayerRequestTest, RefusesBadRequestsWithLambdasErrors) {
  auto error_of = [](const std::function<void(json&)>& edit) {
    json j = good_request();
    edit(j);
    auto p = parse_publish_request(j);
    return p.ok() ? std::string("ok") : p.status().type();
  };
  EXPECT_EQ(parse_publish_request(json::array()).status().type(), "InvalidRequestContentException");
  EXPECT_EQ(error_of([](json& j) { j.erase("Content"); }), "ValidationException");
  EXPECT_EQ(error_of([](json& j) { j["Content"] = nullptr; }), "ValidationException");
  EXPECT_EQ(error_of([](json& j) { j["Content"] = "zip"; }), "InvalidRequestContentException");
  EXPECT_EQ(error_of([](json& j) { j["Content"] = json::object(); }), "InvalidParameterValueException");
  EXPECT_EQ(error_of([](json& j) { j["Content"]["S3Bucket"] = "b"; }), "InvalidParameterValueException");
  EXPECT_EQ(error_of([](json& j) { j["Content"]["ZipFile"] = 7; }), "InvalidRequestContentException");
  EXPECT_EQ(error_of([](json& j) { j["Content"]["ZipFile"] = "not base64!"; }), "InvalidRequestContentException");
  EXPECT_EQ(error_of([](json& j) { j["Description"] = std::string(257, 'd'); }), "ValidationException");
  EXPECT_EQ(error_of([](json& j) { j["Description"] = 5; }), "InvalidRequestContentException");
  EXPECT_EQ(error_of([](json& j) { j["LicenseInfo"] = std::string(513, 'l'); }), "ValidationException");
  EXPECT_EQ(error_of([](json& j) { j["CompatibleRuntimes"] = {"cobol"}; }), "ValidationException");
  EXPECT_EQ(error_of([](json& j) { j["CompatibleRuntimes"] = "python3.12"; }), "InvalidRequestContentException");
  EXPECT_EQ(error_of([](json& j) { j["CompatibleRuntimes"] = {1}; }), "InvalidRequestContentException");
  EXPECT_EQ(error_of([](json& j) { j["CompatibleRuntimes"] = std::vector<std::string>(16, "python3.12"); }),
            "ValidationException");
  EXPECT_EQ(error_of([](json& j) { j["CompatibleArchitectures"] = {"mips"}; }), "ValidationException");
  EXPECT_EQ(error_of([](json& j) { j["CompatibleArchitectures"] = {"x86_64", "arm64", "x86_64"}; }),
            "ValidationException");
  EXPECT_EQ(error_of([](json& j) { j["Description"] = std::string(256, 'd'); }), "ok");
}

TEST(LayerRequestTest, LayerNamesAndArnsAreParsedForOurAccountOnly) {
  EXPECT_EQ(*parse_layer_name("my-layer_1", kRegion, kAccount), "my-layer_1");
  EXPECT_EQ(*parse_layer_name("arn:aws:lambda:us-east-1:123456789012:layer:deps", kRegion, kAccount), "deps");
  EXPECT_EQ(parse_layer_name("arn:aws:lambda:us-east-1:210987654321:layer:deps", kRegion, kAccount).status().type(),
            "ResourceNotFoundException");
  EXPECT_EQ(parse_layer_name("arn:aws:lambda:eu-west-1:123456789012:layer:deps", kRegion, kAccount).status().type(),
            "ResourceNotFoundException");
  for (const std::string& bad : {std::string(), std::string(141, 'a'), std::string("has space"),
                                std::string("a/b"), std::string("arn:aws:lambda:us-east-1:123456789012:layer:d:1"),
                                std::string("../x"), std::string("name\n")}) {
    EXPECT_EQ(parse_layer_name(bad, kRegion, kAccount).status().type(), "ValidationException") << bad;
  }
  EXPECT_TRUE(parse_layer_name(std::string(140, 'a'), kRegion, kAccount).ok());
}

TEST(LayerRequestTest, VersionNumbersArePositiveIntegers) {
  EXPECT_EQ(*parse_layer_version_number("1"), 1);
  EXPECT_EQ(*parse_layer_version_number("123456"), 123456);
  for (const char* bad : {"", "0", "-1", "1.5", "abc", "1e3", "9999999999999999999"}) {
    EXPECT_EQ(parse_layer_version_number(bad).status().type(), "ValidationException") << bad;
  }
}

}  // namespace
}  // namespace kiln::registry
