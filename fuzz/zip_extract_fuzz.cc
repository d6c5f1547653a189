// Fuzzes zip extraction (extract_zip, src/registry/code_store.h). Input: the bytes of a
// zip. Each input is extracted into <scratch>/dest beside a canary file; afterwards
// nothing but dest and the unchanged canary may exist in <scratch>, every symlink in
// dest must resolve inside dest, and the scratch directory is removed.
#include <stdlib.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>

#include "registry/code_store.h"

namespace fs = std::filesystem;

namespace {

constexpr char kCanary[] = "canary: must not change";

[[noreturn]] void fail(const std::string& what) {
  std::fprintf(stderr, "fuzz check failed: %s\n", what.c_str());
  std::abort();
}

std::string read(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

bool inside(const fs::path& p, const fs::path& root) {
  auto [r, q] = std::mismatch(root.begin(), root.end(), p.begin(), p.end());
  return r == root.end();
}

void check_tree(const fs::path& scratch, const fs::path& dest) {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(scratch, ec)) {
    std::string name = entry.path().filename();
    if (name != "dest" && name != "canary") fail("extraction wrote outside dest: " + name);
  }
  if (!fs::is_regular_file(fs::symlink_status(scratch / "canary")) || read(scratch / "canary") != kCanary) {
    fail("extraction changed a file outside dest");
  }
  if (!fs::exists(fs::symlink_status(dest))) return;
  const fs::path root = fs::canonical(dest, ec);
  if (ec) fail("dest cannot be resolved");
  for (auto it = fs::recursive_directory_iterator(dest, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    if (!it->is_symlink()) continue;
    fs::path resolved = fs::weakly_canonical(it->path(), ec);
    if (ec) {
      ec.clear();  // a loop: resolving fails inside as well as outside
      continue;
    }
    if (!inside(resolved, root)) fail("a symlink resolves outside dest: " + it->path().string());
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const fs::path base = [] {
    std::string tmpl = (fs::temp_directory_path() / "kiln-zip-fuzz-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) fail("mkdtemp");
    return fs::path(tmpl);
  }();
  const fs::path scratch = base / "s";
  const fs::path dest = scratch / "dest";
  std::error_code ec;
  fs::remove_all(scratch, ec);
  fs::create_directories(scratch);
  std::ofstream(scratch / "canary", std::ios::binary) << kCanary;

  kiln::registry::CodeLimits limits;
  limits.max_unzipped_bytes = 1 << 20;  // small: the fuzzer writes to disk
  limits.max_entries = 200;
  auto result = kiln::registry::extract_zip(std::string_view(reinterpret_cast<const char*>(data), size), dest, limits);
  if (!result.ok() && fs::exists(fs::symlink_status(dest))) fail("a refused zip left dest behind");
  check_tree(scratch, dest);

  fs::remove_all(scratch, ec);
  if (ec) fail("cannot remove the extracted tree: " + ec.message());
  return 0;
}
