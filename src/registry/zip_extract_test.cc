#include <archive.h>
#include <archive_entry.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <climits>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "registry/code_store.h"
#include "registry/testdata/zip_builder.h"

namespace kiln::registry {
namespace {

namespace fs = std::filesystem;
using testing::build_zip;
using testing::ZipEntry;

constexpr char kUnzipError[] =
    "Could not unzip uploaded file. Please check your file, then try to upload again.";

// Builds a deflated zip with libarchive's writer, as ordinary tools would. Entries whose
// name is in `hardlinks` are written as hard links to the mapped name.
std::string libarchive_zip(const std::vector<ZipEntry>& entries,
                           const std::map<std::string, std::string>& hardlinks = {}) {
  std::string out;
  archive* a = archive_write_new();
  archive_write_set_format_zip(a);
  archive_write_set_bytes_in_last_block(a, 1);
  archive_write_open(
      a, &out, nullptr,
      [](archive*, void* client, const void* buf, size_t n) -> la_ssize_t {
        static_cast<std::string*>(client)->append(static_cast<const char*>(buf), n);
        return static_cast<la_ssize_t>(n);
      },
      nullptr);
  for (const ZipEntry& e : entries) {
    archive_entry* entry = archive_entry_new();
    archive_entry_set_pathname(entry, e.name.c_str());
    archive_entry_set_mode(entry, e.unix_mode);
    if (auto it = hardlinks.find(e.name); it != hardlinks.end()) {
      archive_entry_set_hardlink(entry, it->second.c_str());
    }
    if ((e.unix_mode & S_IFMT) == S_IFLNK) {
      archive_entry_set_symlink(entry, e.data.c_str());
    } else if ((e.unix_mode & S_IFMT) == S_IFREG) {
      archive_entry_set_size(entry, static_cast<la_int64_t>(e.data.size()));
    }
    EXPECT_EQ(archive_write_header(a, entry), ARCHIVE_OK) << archive_error_string(a);
    if ((e.unix_mode & S_IFMT) == S_IFREG) archive_write_data(a, e.data.data(), e.data.size());
    archive_entry_free(entry);
  }
  archive_write_close(a);
  archive_write_free(a);
  return out;
}

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

mode_t mode_of(const fs::path& p) {
  struct stat st;
  EXPECT_EQ(::lstat(p.c_str(), &st), 0) << p;
  return st.st_mode & 07777;
}

// Every extraction goes to base/outer/inner/dest, so that escapes of one, two or three
// levels land inside base, where the test can see them.
class ZipExtractTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "kiln-zip-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    base_ = tmpl;
    fs::create_directories(base_ / "outer/inner");
    dest_ = base_ / "outer/inner/dest";
  }
  void TearDown() override { fs::remove_all(base_); }

  StatusOr<uint64_t> extract(const std::string& zip, CodeLimits limits = {}) {
    return extract_zip(zip, dest_, limits);
  }

  // Everything under base_, as relative paths.
  std::set<std::string> contents() const {
    std::set<std::string> out;
    for (auto& e : fs::recursive_directory_iterator(base_)) {
      out.insert(fs::relative(e.path(), base_).string());
    }
    return out;
  }

  // The zip is refused with `message`, dest is gone and nothing else appeared.
  void expect_refused(const std::string& zip, const std::string& message = kUnzipError,
                      CodeLimits limits = {}) {
    StatusOr<uint64_t> r = extract(zip, limits);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().type(), "InvalidParameterValueException");
    EXPECT_EQ(r.status().http_status(), 400);
    EXPECT_EQ(r.status().message(), message);
    EXPECT_FALSE(fs::exists(fs::symlink_status(dest_)));
    EXPECT_EQ(contents(), (std::set<std::string>{"outer", "outer/inner"}));
  }

  fs::path base_;
  fs::path dest_;
};

TEST_F(ZipExtractTest, ExtractsNestedDirectoriesWithModesAndExecBit) {
  std::string zip = libarchive_zip({
      {"index.py", "def handler(e, c): return 1\n", 0100644},
      {"bin/", "", 040755},
      {"bin/tool", "#!/bin/sh\necho hi\n", 0100755},
      {"lib/a/b/c.txt", "deep", 0100600},
      {"lib/group-exec", "x", 0100610},
  });
  StatusOr<uint64_t> r = extract(zip);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(*r, 28u + 18u + 4u + 1u);
  EXPECT_EQ(read_file(dest_ / "index.py"), "def handler(e, c): return 1\n");
  EXPECT_EQ(read_file(dest_ / "bin/tool"), "#!/bin/sh\necho hi\n");
  EXPECT_EQ(read_file(dest_ / "lib/a/b/c.txt"), "deep");
  EXPECT_EQ(mode_of(dest_), 0755u);
  EXPECT_EQ(mode_of(dest_ / "index.py"), 0644u);
  EXPECT_EQ(mode_of(dest_ / "bin/tool"), 0755u);
  EXPECT_EQ(mode_of(dest_ / "lib/a/b/c.txt"), 0644u);
  EXPECT_EQ(mode_of(dest_ / "lib/group-exec"), 0755u);
  EXPECT_EQ(mode_of(dest_ / "bin"), 0755u);
  EXPECT_EQ(mode_of(dest_ / "lib/a/b"), 0755u);
  struct stat st;
  ASSERT_EQ(::stat((dest_ / "index.py").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, ::geteuid());
}

TEST_F(ZipExtractTest, CreatesDirectoriesImpliedByFilePathsAndStripsDotSlash) {
  std::string zip = build_zip({{"./a/b/c.txt", "c"}, {"./top.txt", "t", 0100644, true},
                               {"./", "", 040755}, {"x/./y//z", "z"}});
  StatusOr<uint64_t> r = extract(zip);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(read_file(dest_ / "a/b/c.txt"), "c");
  EXPECT_EQ(read_file(dest_ / "top.txt"), "t");
  EXPECT_EQ(read_file(dest_ / "x/y/z"), "z");
  EXPECT_EQ(mode_of(dest_ / "a/b"), 0755u);
}

TEST_F(ZipExtractTest, EmptyArchiveGivesEmptyTree) {
  StatusOr<uint64_t> r = extract(build_zip({}));
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(*r, 0u);
  EXPECT_TRUE(fs::is_empty(dest_));
}

TEST_F(ZipExtractTest, KeepsSymlinksThatStayInside) {
  std::string zip = build_zip({{"lib/real.js", "r"},
                               {"node_modules/.bin/tool", "../../lib/real.js", 0120777},
                               {"self", ".", 0120777},
                               {"dangling", "missing/file", 0120777}});
  StatusOr<uint64_t> r = extract(zip);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(fs::read_symlink(dest_ / "node_modules/.bin/tool"), "../../lib/real.js");
  EXPECT_EQ(read_file(dest_ / "node_modules/.bin/tool"), "r");
  EXPECT_EQ(*r, 1u + 17u + 1u + 12u);  // file bytes plus link targets
}

TEST_F(ZipExtractTest, RefusesSymlinkLoopsAndOverlongChains) {
  expect_refused(build_zip({{"loop1", "loop2", 0120777}, {"loop2", "loop1", 0120777}}));
  std::vector<ZipEntry> chain = {{"l0", "x"}};
  for (int i = 1; i <= 41; ++i) {
    chain.emplace_back("l" + std::to_string(i), "l" + std::to_string(i - 1), 0120777);
  }
  expect_refused(build_zip(chain));
  chain.erase(chain.begin() + 30, chain.end());  // a chain the kernel follows is fine
  EXPECT_TRUE(extract(build_zip(chain)).ok());
}

TEST_F(ZipExtractTest, DuplicateEntryReplacesEarlierOne) {
  StatusOr<uint64_t> r = extract(build_zip({{"f", "first"}, {"f", "second"}}));
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(read_file(dest_ / "f"), "second");
}

TEST_F(ZipExtractTest, KeepsUtf8Names) {
  StatusOr<uint64_t> r = extract(build_zip({{"caf\xc3\xa9/\xe2\x9c\x93.txt", "ok"}}));
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(read_file(dest_ / "caf\xc3\xa9/\xe2\x9c\x93.txt"), "ok");
}

TEST_F(ZipExtractTest, RefusesWhatIsNotAZip) {
  expect_refused("");
  expect_refused("hello, this is not a zip file at all");
  std::string zip = build_zip({{"a.txt", std::string(1000, 'a')}});
  expect_refused(zip.substr(0, zip.size() / 2));  // truncated
}

TEST_F(ZipExtractTest, RefusesCorruptData) {
  std::string zip = build_zip({{"a.txt", std::string(1000, 'a')}});
  zip[30 + 5 + 10] ^= 1;  // a byte of the data: the CRC no longer matches
  expect_refused(zip);
}

TEST_F(ZipExtractTest, RefusesAbsolutePaths) {
  expect_refused(build_zip({{(base_ / "evil").string(), "x"}}));
  expect_refused(build_zip({{"/" + (base_ / "evil").string(), "x"}}));
}

TEST_F(ZipExtractTest, RefusesDotDotComponents) {
  expect_refused(build_zip({{"../evil", "x"}}));
  expect_refused(build_zip({{"a/../../evil", "x"}}));
  expect_refused(build_zip({{"ok.txt", "fine"}, {"../../../evil", "x"}}));
  expect_refused(build_zip({{"a/b/../c", "x"}}));  // harmless, but Lambda-style strict
  expect_refused(build_zip({{"../", "", 040755}}));
}

TEST_F(ZipExtractTest, RefusesAbsoluteSymlinks) {
  expect_refused(build_zip({{"passwd", "/etc/passwd", 0120777}}));
  expect_refused(build_zip({{"l", base_.string(), 0120777}, {"l/evil", "x"}}));
}

TEST_F(ZipExtractTest, RefusesRelativeSymlinksThatLeaveDest) {
  expect_refused(build_zip({{"up", "..", 0120777}}));
  expect_refused(build_zip({{"a/b/l", "../../../x", 0120777}}));
  expect_refused(build_zip({{"a/l", "b/../../../outer", 0120777}}));
}

TEST_F(ZipExtractTest, NeverWritesThroughASymlink) {
  expect_refused(build_zip({{"a", "..", 0120777}, {"a/evil", "x"}}));
  // An inside link ("sub/a" is dest itself) is not followed either.
  expect_refused(build_zip({{"sub/a", "..", 0120777}, {"sub/a/evil", "x"}}));
  expect_refused(build_zip({{"sub/a", "..", 0120777}, {"sub/a/", "", 040755}}));
  // Nor is a link replaced by a file or directory of the same name.
  expect_refused(build_zip({{"d/", "", 040755}, {"d", "x", 0120777}}));
}

TEST_F(ZipExtractTest, RefusesSymlinkChainsThatLeaveDest) {
  // Each link is inside on its own; together sub2/l resolves to dest/.. .
  expect_refused(build_zip({{"sub/up", "..", 0120777}, {"sub2/l", "../sub/up/..", 0120777}}));
  // Order does not matter: the chain is checked on the finished tree.
  expect_refused(build_zip({{"sub2/l", "../sub/up/../inner", 0120777}, {"sub/up", "..", 0120777}}));
  // A link later replaced by another link is checked as it ends up.
  expect_refused(build_zip({{"sub/up", "x", 0120777}, {"sub/up", "..", 0120777},
                            {"l", "sub/up/..", 0120777}}));
}

TEST_F(ZipExtractTest, RefusesSpecialFiles) {
  expect_refused(build_zip({{"fifo", "", 0010644}}));
  expect_refused(build_zip({{"chr", "", 0020644}}));
  expect_refused(build_zip({{"blk", "", 0060644}}));
  expect_refused(build_zip({{"sock", "", 0140644}}));
}

TEST_F(ZipExtractTest, HardLinkEntriesNeverBecomeHardLinks) {
  // Zip cannot say "hard link": libarchive's writer stores one as a plain empty file
  // and its reader never reports one (extract_zip refuses one if it ever does).
  fs::path outside = base_ / "outside";
  std::ofstream(outside) << "secret";
  std::string zip = libarchive_zip({{"target", "data"}, {"alias", ""}, {"escape", ""}},
                                   {{"alias", "target"}, {"escape", outside.string()}});
  StatusOr<uint64_t> r = extract(zip);
  ASSERT_TRUE(r.ok()) << r.status().message();
  for (const char* name : {"target", "alias", "escape"}) {
    struct stat st;
    ASSERT_EQ(::lstat((dest_ / name).c_str(), &st), 0);
    EXPECT_TRUE(S_ISREG(st.st_mode));
    EXPECT_EQ(st.st_nlink, 1u) << name;
  }
  EXPECT_EQ(read_file(dest_ / "escape"), "");
  EXPECT_EQ(read_file(outside), "secret");
}

TEST_F(ZipExtractTest, RefusesOverlongPaths) {
  std::string deep;
  while (deep.size() < PATH_MAX) deep += "abcdefgh/";
  expect_refused(build_zip({{deep + "f", "x"}}));
}

TEST_F(ZipExtractTest, RefusesZipBombOverTheLimit) {
  CodeLimits limits;
  limits.max_unzipped_bytes = 1 << 20;
  std::string zip = libarchive_zip({{"bomb", std::string(16 << 20, '\0'), 0100644}});
  ASSERT_LT(zip.size(), 100000u);  // really compressed
  expect_refused(zip, "Unzipped size must be smaller than 1048576 bytes", limits);
  // The same bomb declaring a small size is stopped while it is written.
  ZipEntry liar("bomb", std::string(16 << 20, '\0'), 0100644, true, 1000);
  expect_refused(build_zip({liar}), "Unzipped size must be smaller than 1048576 bytes", limits);
  // Many small files add up too.
  std::vector<ZipEntry> many;
  for (int i = 0; i < 40; ++i) many.push_back({"f" + std::to_string(i), std::string(30000, 'x')});
  expect_refused(build_zip(many), "Unzipped size must be smaller than 1048576 bytes", limits);
}

TEST_F(ZipExtractTest, CountsBytesWrittenNotBytesDeclared) {
  CodeLimits limits;
  limits.max_unzipped_bytes = 100000;
  ZipEntry liar{"liar", std::string(1 << 20, 'z'), 0100644, true, 10};
  StatusOr<uint64_t> r = extract(build_zip({liar}), limits);
  ASSERT_FALSE(r.ok());
  EXPECT_FALSE(fs::exists(dest_));
  EXPECT_EQ(contents(), (std::set<std::string>{"outer", "outer/inner"}));
}

TEST_F(ZipExtractTest, AcceptsExactlyTheLimit) {
  CodeLimits limits;
  limits.max_unzipped_bytes = 10;
  ASSERT_TRUE(extract(build_zip({{"a", "12345"}, {"b", "67890"}}), limits).ok());
}

TEST_F(ZipExtractTest, RefusesTooManyEntries) {
  CodeLimits limits;
  limits.max_entries = 3;
  std::vector<ZipEntry> four = {{"a", ""}, {"b", ""}, {"c/", "", 040755}, {"d", ""}};
  expect_refused(build_zip(four), "Uploaded file must contain at most 3 entries", limits);
  four.pop_back();
  EXPECT_TRUE(extract(build_zip(four), limits).ok());
}

TEST_F(ZipExtractTest, RefusesFileUsedAsDirectory) {
  expect_refused(build_zip({{"a", "file"}, {"a/b", "x"}}));
  expect_refused(build_zip({{"a/b", "x"}, {"a", "file"}}));
}

TEST_F(ZipExtractTest, RefusesExistingDestAndLeavesItAlone) {
  fs::create_directory(dest_);
  std::ofstream(dest_ / "keep") << "mine";
  StatusOr<uint64_t> r = extract(build_zip({{"a", "x"}}));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(read_file(dest_ / "keep"), "mine");
}

TEST_F(ZipExtractTest, ExtractsZipMadeByInfoZip) {
  if (::access("/usr/bin/zip", X_OK) != 0) GTEST_SKIP() << "no /usr/bin/zip";
  fs::path src = base_ / "src";
  fs::create_directories(src / "pkg/sub");
  std::ofstream(src / "app.py") << "print('hi')\n";
  std::ofstream(src / "pkg/sub/data.bin") << std::string(5000, 'q');
  fs::permissions(src / "app.py", fs::perms(0755));
  fs::create_symlink("sub/data.bin", src / "pkg/link");
  std::string cmd = "cd " + src.string() + " && /usr/bin/zip -qry ../code.zip . >/dev/null";
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  std::string zip = read_file(base_ / "code.zip");
  fs::remove_all(src);
  fs::remove(base_ / "code.zip");
  StatusOr<uint64_t> r = extract(zip);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(read_file(dest_ / "app.py"), "print('hi')\n");
  EXPECT_EQ(mode_of(dest_ / "app.py"), 0755u);
  EXPECT_EQ(read_file(dest_ / "pkg/sub/data.bin"), std::string(5000, 'q'));
  EXPECT_EQ(fs::read_symlink(dest_ / "pkg/link"), "sub/data.bin");
  EXPECT_EQ(*r, 12u + 5000u + 12u);
}

TEST_F(ZipExtractTest, ExtractsZipMadeByPythonZipfile) {
  if (std::system("python3 -c pass >/dev/null 2>&1") != 0) GTEST_SKIP() << "no python3";
  fs::path out = base_ / "py.zip";
  std::string cmd =
      "python3 -c \"import zipfile,sys\n"
      "with zipfile.ZipFile(sys.argv[1], 'w', zipfile.ZIP_DEFLATED) as z:\n"
      "  z.writestr('lambda_function.py', 'def h(e,c): pass\\n')\n"
      "  z.writestr('./pkg/__init__.py', '')\n"
      "  i = zipfile.ZipInfo('pkg/run.sh'); i.external_attr = 0o100755 << 16\n"
      "  z.writestr(i, '#!/bin/sh\\n')\n"
      "  w = zipfile.ZipInfo('win.txt'); w.create_system = 0\n"
      "  z.writestr(w, 'dos')\n"
      "\" " + out.string();
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  std::string zip = read_file(out);
  fs::remove(out);
  StatusOr<uint64_t> r = extract(zip);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(read_file(dest_ / "lambda_function.py"), "def h(e,c): pass\n");
  EXPECT_TRUE(fs::is_regular_file(dest_ / "pkg/__init__.py"));
  EXPECT_EQ(mode_of(dest_ / "pkg/run.sh"), 0755u);
  EXPECT_EQ(mode_of(dest_ / "lambda_function.py"), 0644u);
  EXPECT_EQ(read_file(dest_ / "win.txt"), "dos");
  EXPECT_EQ(mode_of(dest_ / "win.txt"), 0644u);
}

}  // namespace
}  // namespace kiln::registry
