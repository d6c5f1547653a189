// The /tmp archive of snapshots: a round trip keeps files, directories, links, modes and
// contents; hostile trees and hostile archives never reach outside the target.
#include "sandbox/tmp_archive.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <sstream>

#include "sandbox/test_util.h"
#include "sandbox/unique_fd.h"

namespace kiln::sandbox {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;
using testing::write_file;

std::string slurp(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

UniqueFd open_dir(const fs::path& p) { return UniqueFd(::open(p.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)); }

// Packs src into a memfd and returns it rewound.
UniqueFd pack(const fs::path& src, const TmpArchiveLimits& limits = {}, Status* status = nullptr) {
  UniqueFd out(::memfd_create("tmp-archive", MFD_CLOEXEC));
  UniqueFd dir = open_dir(src);
  Status s = pack_tmp_tree(dir.get(), out.get(), limits);
  if (status) *status = s;
  ::lseek(out.get(), 0, SEEK_SET);
  return out;
}

TEST(TmpArchive, RoundTripKeepsTreeModesAndLinks) {
  TempDir src, dst;
  fs::create_directories(src.path() / "a/b");
  write_file(src.path() / "a/b/data.bin", std::string("\0\x01payload", 9), 0644);
  write_file(src.path() / "top.txt", "hello", 0644);
  ::chmod((src.path() / "top.txt").c_str(), 0640);
  fs::create_symlink("a/b/data.bin", src.path() / "link");
  fs::create_symlink("/etc/passwd", src.path() / "outside-link");
  ::mkfifo((src.path() / "fifo").c_str(), 0600);  // not kept
  Status s;
  UniqueFd archive = pack(src.path(), {}, &s);
  ASSERT_TRUE(s.ok()) << s.message();
  UniqueFd dir = open_dir(dst.path());
  Status u = unpack_tmp_archive(archive.get(), dir.get(), ::getuid(), ::getgid(), 1 << 20);
  ASSERT_TRUE(u.ok()) << u.message();
  EXPECT_EQ(slurp(dst.path() / "a/b/data.bin"), std::string("\0\x01payload", 9));
  EXPECT_EQ(slurp(dst.path() / "top.txt"), "hello");
  struct stat st {};
  ASSERT_EQ(::stat((dst.path() / "top.txt").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0640u);
  EXPECT_EQ(fs::read_symlink(dst.path() / "link"), "a/b/data.bin");
  EXPECT_EQ(fs::read_symlink(dst.path() / "outside-link"), "/etc/passwd");  // kept as a link, not followed
  EXPECT_FALSE(fs::exists(fs::symlink_status(dst.path() / "fifo")));
}

TEST(TmpArchive, PackingNeverFollowsALinkOutOfTheTree) {
  TempDir src, secret, dst;
  write_file(secret.path() / "key", "SECRET", 0644);
  fs::create_directory_symlink(secret.path(), src.path() / "dir-link");
  Status s;
  UniqueFd archive = pack(src.path(), {}, &s);
  ASSERT_TRUE(s.ok()) << s.message();
  UniqueFd dir = open_dir(dst.path());
  ASSERT_TRUE(unpack_tmp_archive(archive.get(), dir.get(), ::getuid(), ::getgid(), 1 << 20).ok());
  EXPECT_TRUE(fs::is_symlink(dst.path() / "dir-link"));
  EXPECT_FALSE(fs::exists(dst.path() / "key"));
}

TEST(TmpArchive, LimitsRefuseTooDeepTooManyTooLarge) {
  TempDir src;
  fs::path deep = src.path();
  for (int i = 0; i < 5; ++i) deep /= "d";
  fs::create_directories(deep);
  Status s;
  pack(src.path(), {1 << 20, 1000, 3}, &s);
  EXPECT_FALSE(s.ok());
  TempDir many;
  for (int i = 0; i < 20; ++i) write_file(many.path() / ("f" + std::to_string(i)), "x", 0644);
  pack(many.path(), {1 << 20, 10, 64}, &s);
  EXPECT_FALSE(s.ok());
  TempDir big;
  write_file(big.path() / "big", std::string(4096, 'x'), 0644);
  pack(big.path(), {1000, 10, 64}, &s);
  EXPECT_FALSE(s.ok());
}

// Builds an archive by hand: magic, then records (type, mode, path, payload).
struct Forge {
  std::string bytes = "KILNTMP1";
  void add(uint8_t type, const std::string& path, const std::string& payload = "", uint32_t mode = 0644) {
    char rec[40] = {};
    rec[0] = static_cast<char>(type);
    uint32_t len = static_cast<uint32_t>(path.size());
    uint64_t size = payload.size();
    std::memcpy(rec + 4, &mode, 4);
    std::memcpy(rec + 8, &len, 4);
    std::memcpy(rec + 16, &size, 8);
    bytes.append(rec, sizeof rec);
    bytes += path;
    bytes += payload;
  }
  void end() { bytes.append(40, '\0'); }
  UniqueFd fd() const {
    UniqueFd f(::memfd_create("forged", MFD_CLOEXEC));
    EXPECT_EQ(::write(f.get(), bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
    ::lseek(f.get(), 0, SEEK_SET);
    return f;
  }
};

Status unpack_forged(const Forge& f, const fs::path& dst, uint64_t max = 1 << 20) {
  UniqueFd a = f.fd();
  UniqueFd dir = open_dir(dst);
  return unpack_tmp_archive(a.get(), dir.get(), ::getuid(), ::getgid(), max);
}

TEST(TmpArchive, HostileArchivesStayInside) {
  TempDir outside;
  const fs::path dst = outside.path() / "tmp";
  fs::create_directory(dst);
  for (const std::string path : {"../escape", "/abs", "a/../../escape", "", "a//b", "./x"}) {
    Forge f;
    f.add(2, path, "x");
    f.end();
    EXPECT_FALSE(unpack_forged(f, dst).ok()) << path;
  }
  // A link planted first, then a file "through" it: the parent walk never follows it.
  Forge through;
  through.add(3, "l", outside.path().string());
  through.add(2, "l/escape", "pwned");
  through.end();
  EXPECT_FALSE(unpack_forged(through, dst).ok());
  // A file over an existing link is refused (O_EXCL|O_NOFOLLOW), never written through.
  Forge over;
  over.add(3, "m", (outside.path() / "target").string());
  over.add(2, "m", "pwned");
  over.end();
  EXPECT_FALSE(unpack_forged(over, dst).ok());
  EXPECT_FALSE(fs::exists(outside.path() / "escape"));
  EXPECT_FALSE(fs::exists(outside.path() / "target"));
  // More bytes than /tmp holds; a truncated archive; garbage.
  Forge big;
  big.add(2, "big", std::string(2048, 'x'));
  big.end();
  EXPECT_FALSE(unpack_forged(big, dst, 1024).ok());
  Forge cut;
  cut.add(2, "cut", "abc");
  cut.bytes.resize(cut.bytes.size() - 2);
  EXPECT_FALSE(unpack_forged(cut, dst).ok());
  Forge garbage;
  garbage.bytes = "NOTMAGIC and more";
  EXPECT_FALSE(unpack_forged(garbage, dst).ok());
  Forge bad_type;
  bad_type.add(9, "x", "");
  EXPECT_FALSE(unpack_forged(bad_type, dst).ok());
}

}  // namespace
}  // namespace kiln::sandbox
