// Content-addressed code store (see code_store.h).
//
// Layout under root: <hex>.zip and <hex>/ (the extracted tree), plus .tmp-* names for
// work in progress. A tree appears (by rename) only when complete and synced; its zip
// is renamed into place after it, so "<hex>.zip exists" means the entry is complete.
// Trees are removed by first renaming them to a .tmp-* name, so a non-temporary tree
// is never partial. Concurrent puts of the same content both do the work; the first
// rename wins (RENAME_NOREPLACE) and the loser discards its copy.
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <system_error>

#include "common/crypto.h"
#include "common/log.h"
#include "registry/code_store.h"

namespace kiln::registry {
namespace {

namespace fs = std::filesystem;

constexpr std::string_view kTempPrefix = ".tmp-";

bool is_sha256_hex(const std::string& s) {
  if (s.size() != 64) return false;
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

std::string temp_name() {
  return std::string(kTempPrefix) +
         crypto::random_string(16, "abcdefghijklmnopqrstuvwxyz0123456789");
}

Status errno_error(const std::string& what) {
  return ServiceError(what + ": " + strerror(errno));
}

// Writes data to a new file at path and fsyncs it.
Status write_synced(const fs::path& path, std::string_view data) {
  // SAFETY: O_EXCL creates a fresh file; the descriptor is closed on every path.
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
  if (fd < 0) return errno_error("create " + path.string());
  size_t off = 0;
  while (off < data.size()) {
    ssize_t w = ::write(fd, data.data() + off, data.size() - off);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) {
      Status s = errno_error("write " + path.string());
      ::close(fd);
      return s;
    }
    off += static_cast<size_t>(w);
  }
  if (::fsync(fd) != 0) {
    Status s = errno_error("fsync " + path.string());
    ::close(fd);
    return s;
  }
  if (::close(fd) != 0) return errno_error("close " + path.string());
  return Status::Ok();
}

// Flushes the filesystem holding path (every file of an extracted tree at once).
Status sync_filesystem_of(const fs::path& path) {
  // SAFETY: read-only open of a directory, closed below.
  int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return errno_error("open " + path.string());
  int r = ::syncfs(fd);
  Status s = r == 0 ? Status::Ok() : errno_error("syncfs " + path.string());
  ::close(fd);
  return s;
}

void sync_directory(const fs::path& dir) {
  // SAFETY: read-only open of a directory, closed below.
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  if (::fsync(fd) != 0) log::warn("fsync " + dir.string() + ": " + strerror(errno));
  ::close(fd);
}

// Renames from -> to unless `to` exists. True if renamed, false if `to` was there.
StatusOr<bool> rename_no_replace(const fs::path& from, const fs::path& to) {
  // SAFETY: path-based rename inside the store's private root.
  if (::renameat2(AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), RENAME_NOREPLACE) == 0) {
    return true;
  }
  if (errno == EEXIST || errno == ENOTEMPTY) return false;
  return errno_error("rename " + from.string() + " to " + to.string());
}

// Unzipped size of an extracted tree, counted as extract_zip counts it: the bytes of
// every regular file plus the length of every symlink's target.
uint64_t tree_size(const fs::path& tree) {
  uint64_t total = 0;
  std::error_code ec;
  for (fs::recursive_directory_iterator it(tree, ec), end; !ec && it != end; it.increment(ec)) {
    struct stat st;
    // SAFETY: lstat does not follow the link it is asked about.
    if (::lstat(it->path().c_str(), &st) != 0) continue;
    if (S_ISREG(st.st_mode) || S_ISLNK(st.st_mode)) total += static_cast<uint64_t>(st.st_size);
  }
  return total;
}

void remove_quietly(const fs::path& path) {
  std::error_code ec;
  fs::remove_all(path, ec);
  if (ec) log::warn("cannot remove " + path.string() + ": " + ec.message());
}

}  // namespace

CodeStore::CodeStore(std::filesystem::path root, CodeLimits limits)
    : root_(std::move(root)), limits_(limits) {
  std::error_code ec;
  fs::create_directories(root_, ec);
  if (ec) {
    log::error("code store: cannot create " + root_.string() + ": " + ec.message());
    return;  // put() reports the failure
  }
  fs::permissions(root_, fs::perms::owner_all, fs::perm_options::replace, ec);
  for (fs::directory_iterator it(root_, ec), end; !ec && it != end; it.increment(ec)) {
    if (it->path().filename().string().starts_with(kTempPrefix)) remove_quietly(it->path());
  }
}

StatusOr<CodeInfo> CodeStore::put(std::string_view zip) {
  const std::string digest = crypto::sha256(zip);
  CodeInfo info{crypto::hex(digest), crypto::base64(digest), zip.size(), 0};
  const fs::path zip_final = zip_path(info.sha256_hex);
  const fs::path tree_final = tree_path(info.sha256_hex);
  std::error_code ec;

  if (contains(info.sha256_hex)) {
    info.zip_size = fs::file_size(zip_final, ec);
    if (ec) return ServiceError("stat " + zip_final.string() + ": " + ec.message());
    info.unzipped_size = tree_size(tree_final);
    return info;
  }

  // A tree without its zip is complete (trees only appear whole): keep it.
  if (!fs::is_directory(fs::symlink_status(tree_final, ec))) {
    const fs::path tree_tmp = root_ / temp_name();
    StatusOr<uint64_t> size = extract_zip(zip, tree_tmp, limits_);
    if (!size.ok()) return size.status();
    info.unzipped_size = *size;
    Status s = sync_filesystem_of(tree_tmp);
    StatusOr<bool> renamed = s.ok() ? rename_no_replace(tree_tmp, tree_final) : StatusOr<bool>(s);
    if (!renamed.ok() || !*renamed) remove_quietly(tree_tmp);  // failed, or another put won
    if (!renamed.ok()) return renamed.status();
    if (!*renamed && !fs::is_directory(fs::symlink_status(tree_final, ec))) {
      return ServiceError(tree_final.string() + " is in the way");
    }
  } else {
    info.unzipped_size = tree_size(tree_final);
  }

  const fs::path zip_tmp = root_ / (temp_name() + ".zip");
  Status s = write_synced(zip_tmp, zip);
  StatusOr<bool> renamed = s.ok() ? rename_no_replace(zip_tmp, zip_final) : StatusOr<bool>(s);
  if (!renamed.ok() || !*renamed) remove_quietly(zip_tmp);
  if (!renamed.ok()) return renamed.status();
  sync_directory(root_);
  return info;
}

bool CodeStore::contains(const std::string& sha256_hex) const {
  if (!is_sha256_hex(sha256_hex)) return false;
  std::error_code ec;
  return fs::is_regular_file(fs::symlink_status(zip_path(sha256_hex), ec)) &&
         fs::is_directory(fs::symlink_status(tree_path(sha256_hex), ec));
}

std::filesystem::path CodeStore::zip_path(const std::string& sha256_hex) const {
  return root_ / (sha256_hex + ".zip");
}

std::filesystem::path CodeStore::tree_path(const std::string& sha256_hex) const {
  return root_ / sha256_hex;
}

void CodeStore::remove(const std::string& sha256_hex) {
  if (!is_sha256_hex(sha256_hex)) return;
  std::error_code ec;
  fs::remove(zip_path(sha256_hex), ec);  // first: the entry stops existing
  const fs::path doomed = root_ / temp_name();
  // SAFETY: path-based rename inside the store's private root.
  if (::rename(tree_path(sha256_hex).c_str(), doomed.c_str()) == 0) remove_quietly(doomed);
  sync_directory(root_);
}

}  // namespace kiln::registry
