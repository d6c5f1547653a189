#include "registry/code_store.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "common/crypto.h"
#include "registry/testdata/zip_builder.h"

namespace kiln::registry {
namespace {

namespace fs = std::filesystem;
using testing::build_zip;

std::set<std::string> names_in(const fs::path& dir) {
  std::set<std::string> out;
  for (auto& e : fs::directory_iterator(dir)) out.insert(e.path().filename().string());
  return out;
}

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

class CodeStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "kiln-codestore-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    base_ = tmpl;
    root_ = base_ / "code";
  }
  void TearDown() override { fs::remove_all(base_); }

  fs::path base_;
  fs::path root_;
  const std::string zip_ = build_zip({{"index.js", "exports.handler = async () => 1;\n"},
                                      {"bin/run", "#!/bin/sh\n", 0100755},
                                      {"lib/link", "../index.js", 0120777}});
};

TEST_F(CodeStoreTest, CreatesRootPrivateToTheOwner) {
  CodeStore store(root_);
  struct stat st;
  ASSERT_EQ(::stat(root_.c_str(), &st), 0);
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0700u);
}

TEST_F(CodeStoreTest, PutStoresZipAndTreeUnderTheDigest) {
  CodeStore store(root_);
  StatusOr<CodeInfo> info = store.put(zip_);
  ASSERT_TRUE(info.ok()) << info.status().message();
  const std::string digest = crypto::sha256(zip_);
  EXPECT_EQ(info->sha256_hex, crypto::hex(digest));
  EXPECT_EQ(info->sha256_base64, crypto::base64(digest));
  EXPECT_EQ(info->sha256_base64.size(), 44u);
  EXPECT_EQ(info->zip_size, zip_.size());
  EXPECT_EQ(info->unzipped_size, 33u + 10u + 11u);
  EXPECT_TRUE(store.contains(info->sha256_hex));
  EXPECT_EQ(store.zip_path(info->sha256_hex), root_ / (info->sha256_hex + ".zip"));
  EXPECT_EQ(store.tree_path(info->sha256_hex), root_ / info->sha256_hex);
  EXPECT_EQ(read_file(store.zip_path(info->sha256_hex)), zip_);
  const fs::path tree = store.tree_path(info->sha256_hex);
  EXPECT_EQ(read_file(tree / "index.js"), "exports.handler = async () => 1;\n");
  EXPECT_EQ(read_file(tree / "lib/link"), "exports.handler = async () => 1;\n");
  EXPECT_EQ(fs::status(tree / "bin/run").permissions(), fs::perms(0755));
  EXPECT_EQ(names_in(root_), (std::set<std::string>{info->sha256_hex, info->sha256_hex + ".zip"}));
}

TEST_F(CodeStoreTest, PutTwiceKeepsOneEntryWithTheSameInfo) {
  CodeStore store(root_);
  StatusOr<CodeInfo> first = store.put(zip_);
  StatusOr<CodeInfo> second = store.put(zip_);
  ASSERT_TRUE(first.ok() && second.ok());
  EXPECT_EQ(second->sha256_hex, first->sha256_hex);
  EXPECT_EQ(second->sha256_base64, first->sha256_base64);
  EXPECT_EQ(second->zip_size, first->zip_size);
  EXPECT_EQ(second->unzipped_size, first->unzipped_size);
  EXPECT_EQ(names_in(root_).size(), 2u);
}

TEST_F(CodeStoreTest, ConcurrentPutsOfTheSameContentMakeOneEntry) {
  CodeStore store(root_);
  constexpr int kThreads = 8;
  std::vector<StatusOr<CodeInfo>> results(kThreads, StatusOr<CodeInfo>(ServiceError("unset")));
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] { results[i] = store.put(zip_); });
  }
  for (auto& t : threads) t.join();
  for (const auto& r : results) {
    ASSERT_TRUE(r.ok()) << r.status().message();
    EXPECT_EQ(r->sha256_hex, results[0]->sha256_hex);
    EXPECT_EQ(r->unzipped_size, results[0]->unzipped_size);
  }
  const std::string hex = results[0]->sha256_hex;
  EXPECT_EQ(names_in(root_), (std::set<std::string>{hex, hex + ".zip"}));
  EXPECT_EQ(read_file(store.tree_path(hex) / "bin/run"), "#!/bin/sh\n");
}

TEST_F(CodeStoreTest, ConcurrentPutsOfDifferentContentAllLand) {
  CodeStore store(root_);
  constexpr int kThreads = 6;
  std::vector<std::string> hexes(kThreads);
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      StatusOr<CodeInfo> r = store.put(build_zip({{"f", std::to_string(i)}}));
      if (r.ok()) hexes[i] = r->sha256_hex;
    });
  }
  for (auto& t : threads) t.join();
  for (const std::string& hex : hexes) {
    ASSERT_FALSE(hex.empty());
    EXPECT_TRUE(store.contains(hex));
  }
  EXPECT_EQ(names_in(root_).size(), 2u * kThreads);
}

TEST_F(CodeStoreTest, RefusedZipLeavesNothingBehind) {
  CodeStore store(root_);
  StatusOr<CodeInfo> r = store.put("definitely not a zip");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().type(), "InvalidParameterValueException");
  r = store.put(build_zip({{"../escape", "x"}}));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().type(), "InvalidParameterValueException");
  CodeStore small(base_ / "small", CodeLimits{4, 100});
  r = small.put(build_zip({{"big", "12345"}}));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "Unzipped size must be smaller than 4 bytes");
  EXPECT_TRUE(fs::is_empty(root_));
  EXPECT_TRUE(fs::is_empty(base_ / "small"));
  EXPECT_EQ(names_in(base_), (std::set<std::string>{"code", "small"}));
}

TEST_F(CodeStoreTest, OpeningRemovesCrashLeftovers) {
  std::string hex;
  {
    CodeStore store(root_);
    StatusOr<CodeInfo> r = store.put(zip_);
    ASSERT_TRUE(r.ok());
    hex = r->sha256_hex;
  }
  fs::create_directories(root_ / ".tmp-abc123/half/extracted");
  std::ofstream(root_ / ".tmp-abc123/half/extracted/file") << "partial";
  std::ofstream(root_ / ".tmp-def456.zip") << "partial zip";
  CodeStore reopened(root_);
  EXPECT_EQ(names_in(root_), (std::set<std::string>{hex, hex + ".zip"}));
  EXPECT_TRUE(reopened.contains(hex));
}

TEST_F(CodeStoreTest, TreeWithoutZipIsReusedAfterACrash) {
  CodeStore store(root_);
  StatusOr<CodeInfo> first = store.put(zip_);
  ASSERT_TRUE(first.ok());
  fs::remove(store.zip_path(first->sha256_hex));  // crash between the two renames
  EXPECT_FALSE(store.contains(first->sha256_hex));
  StatusOr<CodeInfo> again = store.put(zip_);
  ASSERT_TRUE(again.ok()) << again.status().message();
  EXPECT_EQ(again->unzipped_size, first->unzipped_size);
  EXPECT_TRUE(store.contains(first->sha256_hex));
}

TEST_F(CodeStoreTest, RemoveDeletesTheEntryAndPutRestoresIt) {
  CodeStore store(root_);
  StatusOr<CodeInfo> r = store.put(zip_);
  ASSERT_TRUE(r.ok());
  store.remove(r->sha256_hex);
  EXPECT_FALSE(store.contains(r->sha256_hex));
  EXPECT_TRUE(fs::is_empty(root_));
  store.remove(r->sha256_hex);  // twice is harmless
  ASSERT_TRUE(store.put(zip_).ok());
  EXPECT_TRUE(store.contains(r->sha256_hex));
}

TEST_F(CodeStoreTest, IgnoresNamesThatAreNotDigests) {
  CodeStore store(root_);
  fs::create_directories(base_ / "victim");
  std::ofstream(base_ / "victim.zip") << "keep";
  EXPECT_FALSE(store.contains("../victim"));
  store.remove("../victim");
  store.remove("");
  store.remove(std::string(64, 'G'));
  EXPECT_TRUE(fs::exists(base_ / "victim"));
  EXPECT_TRUE(fs::exists(base_ / "victim.zip"));
}

TEST_F(CodeStoreTest, UnusableRootFailsPutsWithServiceError) {
  std::ofstream(base_ / "file") << "not a directory";
  CodeStore store(base_ / "file" / "code");
  StatusOr<CodeInfo> r = store.put(zip_);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().http_status(), 500);
}

}  // namespace
}  // namespace kiln::registry
