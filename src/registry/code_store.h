// Content-addressed store of function code: each zip is kept once per SHA-256, beside
// its extracted tree, which the sandbox binds read-only at /var/task.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

#include "common/status.h"

namespace kiln::registry {

struct CodeLimits {
  uint64_t max_unzipped_bytes = 262144000;  // 250 MB, Lambda's limit (code + layers)
  uint64_t max_entries = 100000;
};

struct CodeInfo {
  std::string sha256_hex;     // identity in the store
  std::string sha256_base64;  // Lambda's CodeSha256
  uint64_t zip_size = 0;      // Lambda's CodeSize
  uint64_t unzipped_size = 0;
};

// Extracts the zip archive `zip` into `dest`, which must not exist yet. Refuses
// (InvalidParameterValueException, nothing left behind) anything that is not a zip,
// entries with absolute paths or "..", symlinks that resolve outside dest, hard links,
// device nodes and fifos, and archives whose unzipped size or entry count passes the
// limits. Files are written 0644 (0755 when executable in the zip), directories 0755.
// Never writes outside dest. Returns the unzipped size.
StatusOr<uint64_t> extract_zip(std::string_view zip, const std::filesystem::path& dest,
                               const CodeLimits& limits);

// Thread-safe. Crash-safe: an entry appears only when complete (written to a temporary
// name, fsync'ed and renamed); leftovers of a crash are removed when the store opens.
class CodeStore {
 public:
  explicit CodeStore(std::filesystem::path root, CodeLimits limits = {});

  // Stores the zip (if not already present) and its extracted tree.
  StatusOr<CodeInfo> put(std::string_view zip);
  bool contains(const std::string& sha256_hex) const;
  std::filesystem::path zip_path(const std::string& sha256_hex) const;
  std::filesystem::path tree_path(const std::string& sha256_hex) const;
  // Removes an entry (when no function version refers to it any more).
  void remove(const std::string& sha256_hex);

 private:
  std::filesystem::path root_;
  CodeLimits limits_;
};

}  // namespace kiln::registry
