// The snapshot store: commit is all or nothing, a snapshot is found only for exactly the
// version (account, function, version, revision) it was taken of, partial snapshots of
// a killed Kiln are removed at open, and nothing in it is readable by others.
#include "worker/snapshot_store.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <vector>

namespace kiln::worker {
namespace {

namespace fs = std::filesystem;

class SnapshotStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/kiln-snapstore-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }

  static registry::FunctionVersion version(const std::string& account, const std::string& name,
                                           const std::string& v, const std::string& revision) {
    registry::FunctionVersion f;
    f.account_id = account;
    f.region = "us-east-1";
    f.name = name;
    f.version = v;
    f.revision_id = revision;
    return f;
  }

  static SnapshotMeta meta_of(const registry::FunctionVersion& v) {
    SnapshotMeta m;
    m.account = v.account_id;
    m.function = v.name;
    m.version = v.version;
    m.revision = v.revision_id;
    m.replay = "GET /2018-06-01/runtime/restore/next HTTP/1.1";
    return m;
  }

  // Takes a "snapshot" holding one file.
  void take(SnapshotStore& store, const registry::FunctionVersion& v, const std::string& content) {
    auto partial = store.begin(v);
    ASSERT_TRUE(partial.ok()) << partial.status().message();
    std::ofstream(*partial / "pages") << content;
    ASSERT_TRUE(store.commit(v, *partial, meta_of(v)).ok());
  }

  fs::path dir_;
};

TEST_F(SnapshotStoreTest, FoundOnlyForExactlyItsVersion) {
  SnapshotStore store(dir_ / "snapshots");
  ASSERT_TRUE(store.open().ok());
  auto v = version("111111111111", "fn", "1", "rev-a");
  take(store, v, "memory of fn:1");
  auto found = store.find(v);
  ASSERT_TRUE(found);
  EXPECT_EQ(found->meta.replay, "GET /2018-06-01/runtime/restore/next HTTP/1.1");
  std::ifstream in(found->dir / "pages");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(text, "memory of fn:1");
  EXPECT_FALSE(store.find(version("222222222222", "fn", "1", "rev-a")));  // another tenant
  EXPECT_FALSE(store.find(version("111111111111", "other", "1", "rev-a")));
  EXPECT_FALSE(store.find(version("111111111111", "fn", "2", "rev-a")));
  EXPECT_FALSE(store.find(version("111111111111", "fn", "1", "rev-b")));  // recreated function
  EXPECT_EQ(store.count(), 1u);
  store.remove(v);
  EXPECT_FALSE(store.find(v));
  EXPECT_EQ(store.count(), 0u);
  store.remove(v);  // idempotent
}

TEST_F(SnapshotStoreTest, RootOnlyAndPartialSnapshotsRemovedAtOpen) {
  {
    SnapshotStore store(dir_ / "snapshots");
    ASSERT_TRUE(store.open().ok());
    auto v = version("111111111111", "fn", "1", "rev-a");
    auto partial = store.begin(v);  // a Kiln killed mid-snapshot
    ASSERT_TRUE(partial.ok());
    std::ofstream(*partial / "pages") << "half";
    EXPECT_FALSE(store.find(v));
    struct stat st {};
    ASSERT_EQ(::stat((dir_ / "snapshots").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0700u);
    ASSERT_EQ(::stat(partial->c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0700u);
    take(store, version("111111111111", "fn", "2", "rev-b"), "whole");
  }
  SnapshotStore again(dir_ / "snapshots");
  ASSERT_TRUE(again.open().ok());
  size_t entries = 0;
  for (const auto& e : fs::directory_iterator(dir_ / "snapshots")) {
    (void)e;
    ++entries;
  }
  EXPECT_EQ(entries, 1u) << "the partial snapshot is gone, the whole one kept";
  EXPECT_TRUE(again.find(version("111111111111", "fn", "2", "rev-b")));
  struct stat st {};
  auto found = again.find(version("111111111111", "fn", "2", "rev-b"));
  ASSERT_EQ(::stat((found->dir / "meta.json").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 077, 0u);
}

TEST_F(SnapshotStoreTest, CorruptMetaIsNoSnapshot) {
  SnapshotStore store(dir_ / "snapshots");
  ASSERT_TRUE(store.open().ok());
  auto v = version("111111111111", "fn", "1", "rev-a");
  take(store, v, "x");
  auto found = store.find(v);
  ASSERT_TRUE(found);
  for (const std::string& bad : std::vector<std::string>{"", "{", "[1,2]", "{\"account\":5}", std::string(100000, '[')}) {
    std::ofstream(found->dir / "meta.json", std::ios::trunc) << bad;
    EXPECT_FALSE(store.find(v)) << bad.substr(0, 20);
  }
}

}  // namespace
}  // namespace kiln::worker
