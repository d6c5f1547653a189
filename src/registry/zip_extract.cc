// Safe extraction of function zips (see extract_zip in code_store.h).
//
// How escapes are prevented:
// - entry names are split into components; absolute names and ".." are refused;
// - every parent directory is opened with O_DIRECTORY|O_NOFOLLOW relative to its own
//   parent, and files are created with O_CREAT|O_EXCL|O_NOFOLLOW relative to that fd,
//   so no symlink (from the zip or elsewhere) is ever followed while writing;
// - symlink targets are checked twice: lexically against the link's directory when the
//   entry is read, and, once the whole tree exists, by resolving them component by
//   component the way the kernel would (following links inside the tree), so that
//   chains of individually harmless links cannot point outside dest either.
#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <locale.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "common/log.h"
#include "registry/code_store.h"

#include "common/unique_fd.h"

namespace kiln::registry {
namespace {

constexpr char kCouldNotUnzip[] =
    "Could not unzip uploaded file. Please check your file, then try to upload again.";
constexpr int kMaxSymlinkHops = 40;  // the kernel's MAXSYMLINKS

std::string archive_why(archive* a) {
  const char* why = archive_error_string(a);
  return why != nullptr ? why : "unknown libarchive error";
}

Status unzip_error(const std::string& why) {
  log::debug("zip refused: " + why);
  return InvalidParameterValue(kCouldNotUnzip);
}

using Fd = UniqueFd;

// Makes the calling thread's locale C.UTF-8 while it lives, so that libarchive hands
// out names flagged UTF-8 as their bytes instead of failing to convert them to ASCII.
class Utf8ThreadLocale {
 public:
  Utf8ThreadLocale() {
    // Created once, never freed: an immutable locale object shared by all threads.
    static const locale_t utf8 = ::newlocale(LC_CTYPE_MASK, "C.UTF-8", nullptr);
    if (utf8 != nullptr) previous_ = ::uselocale(utf8);
  }
  ~Utf8ThreadLocale() {
    if (previous_ != nullptr) ::uselocale(previous_);
  }
  Utf8ThreadLocale(const Utf8ThreadLocale&) = delete;
  Utf8ThreadLocale& operator=(const Utf8ThreadLocale&) = delete;

 private:
  locale_t previous_ = nullptr;
};

// libarchive turns entries of types it does not know into regular files; to refuse
// them instead, read the Unix file types in the central directory. Returns the name
// of the first entry that is not a file, directory or symlink. Best effort: archives
// this cannot parse are left to libarchive, which then creates plain files at worst.
std::optional<std::string> find_special_file(std::string_view zip) {
  auto u16 = [&](size_t at) { return uint32_t(uint8_t(zip[at])) | uint32_t(uint8_t(zip[at + 1])) << 8; };
  auto u32 = [&](size_t at) { return u16(at) | u16(at + 2) << 16; };
  auto u64 = [&](size_t at) { return uint64_t(u32(at)) | uint64_t(u32(at + 4)) << 32; };
  if (zip.size() < 22) return std::nullopt;
  size_t eocd = zip.size() - 22;
  const size_t lowest = zip.size() > 22 + 65535 ? zip.size() - 22 - 65535 : 0;
  while (u32(eocd) != 0x06054b50) {
    if (eocd == lowest) return std::nullopt;
    --eocd;
  }
  size_t end = eocd;  // the central directory ends where its end record starts
  uint64_t cd_size = u32(eocd + 12);
  if (cd_size == 0xFFFFFFFF || u16(eocd + 10) == 0xFFFF || u32(eocd + 16) == 0xFFFFFFFF) {
    if (eocd < 20 || u32(eocd - 20) != 0x07064b50) return std::nullopt;
    uint64_t z64 = u64(eocd - 20 + 8);
    if (z64 + 56 > eocd || u32(z64) != 0x06064b50) return std::nullopt;
    end = z64;
    cd_size = u64(z64 + 40);
  }
  if (cd_size > end) return std::nullopt;
  for (size_t at = end - cd_size; at + 46 <= end;) {
    if (u32(at) != 0x02014b50) return std::nullopt;
    const size_t name_len = u16(at + 28);
    const size_t next = at + 46 + name_len + u16(at + 30) + u16(at + 32);
    if (next > end) return std::nullopt;
    const uint32_t type = (u32(at + 38) >> 16) & S_IFMT;
    if ((u16(at + 4) >> 8) == 3 && type != 0 && type != S_IFREG && type != S_IFDIR &&
        type != S_IFLNK) {
      return std::string(zip.substr(at + 46, name_len));
    }
    at = next;
  }
  return std::nullopt;
}

using Components = std::vector<std::string>;

// Splits a relative path on '/', dropping empty and "." components. ".." is kept.
Components split_path(std::string_view path) {
  Components out;
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    std::string_view c = path.substr(start, end - start);
    if (!c.empty() && c != ".") out.emplace_back(c);
    start = end + 1;
  }
  return out;
}

std::string join(const Components& dir, size_t n) {
  std::string out;
  for (size_t i = 0; i < n; ++i) {
    if (i) out += '/';
    out += dir[i];
  }
  return out;
}

// Applies `target` (relative) to the directory `dir` lexically; false if it climbs
// above the root.
bool lexically_inside(Components dir, std::string_view target) {
  for (const std::string& c : split_path(target)) {
    if (c != "..") {
      dir.push_back(c);
    } else if (dir.empty()) {
      return false;
    } else {
      dir.pop_back();
    }
  }
  return true;
}

// Resolves `target` starting in `dir` (components below root_fd, none of them links)
// as path resolution would, following links found in the tree. Returns false when the
// resolution would leave the root at any step, or follows more links than the kernel
// would (loops included: refusing them is simpler than proving the counts agree).
// Paths that stop at a missing component are harmless: the tree is immutable once
// extracted, so they never resolve to anything.
bool resolves_inside(int root_fd, Components& dir, std::string_view target, int& hops) {
  if (target.empty() || target.front() == '/') return false;
  for (const std::string& c : split_path(target)) {
    if (c == "..") {
      if (dir.empty()) return false;
      dir.pop_back();
      continue;
    }
    std::string rel = join(dir, dir.size());
    rel = rel.empty() ? c : rel + "/" + c;
    struct stat st;
    // SAFETY: read-only lookup relative to root_fd; intermediate components of rel were
    // all checked not to be symlinks, so this follows no link.
    if (::fstatat(root_fd, rel.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      return errno == ENOENT || errno == ENOTDIR;
    }
    if (!S_ISLNK(st.st_mode)) {
      dir.push_back(c);
      continue;
    }
    if (--hops < 0) return false;
    std::string link(static_cast<size_t>(st.st_size) + 1, '\0');
    // SAFETY: link has room for st_size + 1 bytes; a longer result means it changed.
    ssize_t n = ::readlinkat(root_fd, rel.c_str(), link.data(), link.size());
    if (n < 0 || static_cast<size_t>(n) >= link.size()) return false;
    link.resize(static_cast<size_t>(n));
    if (!resolves_inside(root_fd, dir, link, hops)) return false;
  }
  return true;
}

class Extractor {
 public:
  Extractor(int dest_fd, const CodeLimits& limits) : dest_fd_(dest_fd), limits_(limits) {}

  Status run(archive* a) {
    for (;;) {
      archive_entry* entry = nullptr;
      int r = archive_read_next_header(a, &entry);
      if (r == ARCHIVE_EOF) break;
      if (r < ARCHIVE_WARN) return unzip_error(archive_why(a));
      if (++entries_ > limits_.max_entries) {
        return InvalidParameterValue("Uploaded file must contain at most " +
                                     std::to_string(limits_.max_entries) + " entries");
      }
      Status s = write_entry(a, entry);
      if (!s.ok()) return s;
    }
    // Resolving each link's own path reads its final target from disk, so links
    // replaced by later entries are checked as they are, not as they were.
    for (const auto& [rel, link] : symlinks_) {
      Components dir(link.begin(), link.end() - 1);
      int hops = kMaxSymlinkHops;
      if (!resolves_inside(dest_fd_, dir, link.back(), hops)) {
        return unzip_error("symlink escapes through other links: " + rel);
      }
    }
    return Status::Ok();
  }

  uint64_t unzipped_size() const { return total_; }

 private:
  Status write_entry(archive* a, archive_entry* entry) {
    const char* name = archive_entry_pathname_utf8(entry);
    if (name == nullptr) name = archive_entry_pathname(entry);
    if (name == nullptr || *name == '\0') return unzip_error("entry without a name");
    if (name[0] == '/') return unzip_error(std::string("absolute path: ") + name);
    Components path = split_path(name);
    for (const std::string& c : path) {
      if (c == "..") return unzip_error(std::string("'..' in path: ") + name);
    }
    if (archive_entry_hardlink(entry) != nullptr) return unzip_error("hard link");
    const mode_t type = archive_entry_filetype(entry);
    if (strlen(name) >= PATH_MAX) return unzip_error("path too long");
    if (path.empty()) {
      if (type == AE_IFDIR) return Status::Ok();  // "./": the root itself
      return unzip_error(std::string("no file name: ") + name);
    }
    StatusOr<int> parent = open_parent(path);
    if (!parent.ok()) return parent.status();
    const std::string& leaf = path.back();
    switch (type) {
      case AE_IFDIR: {
        Fd dir;
        return open_dir(*parent, leaf, &dir);
      }
      case AE_IFREG:
        if (archive_entry_size_is_set(entry) && archive_entry_size(entry) > 0) {
          Status s = check_size(static_cast<uint64_t>(archive_entry_size(entry)));
          if (!s.ok()) return s;  // declared too big: refuse before writing
        }
        return write_file(a, *parent, leaf, archive_entry_mode(entry));
      case AE_IFLNK:
        return write_symlink(entry, *parent, path);
      default:
        return unzip_error(std::string("special file: ") + name);
    }
  }

  // Opens (creating as needed) every directory above the leaf of `path`, and returns
  // the innermost one. The descriptor stays valid until the next call; the last one is
  // kept, since archives usually list a directory's files together.
  StatusOr<int> open_parent(const Components& path) {
    const Components dirs(path.begin(), path.end() - 1);
    if (dirs.empty()) return dest_fd_;
    if (parent_fd_.valid() && dirs == parent_path_) return parent_fd_.get();
    parent_fd_.reset();
    Fd cur;
    for (const std::string& name : dirs) {
      Fd next;
      Status s = open_dir(cur.valid() ? cur.get() : dest_fd_, name, &next);
      if (!s.ok()) return s;
      cur = std::move(next);
    }
    parent_fd_ = std::move(cur);
    parent_path_ = dirs;
    return parent_fd_.get();
  }

  // Creates (if missing) and opens the directory `name` in `parent`, mode 0755.
  // Refuses when `name` is a symlink or not a directory.
  static Status open_dir(int parent, const std::string& name, Fd* out) {
    // SAFETY: mkdirat/openat relative to a directory fd; O_NOFOLLOW refuses a symlink.
    const bool created = ::mkdirat(parent, name.c_str(), 0755) == 0;
    if (!created && errno != EEXIST) return unzip_error("mkdir " + name + ": " + strerror(errno));
    Fd fd(::openat(parent, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!fd.valid()) return unzip_error("not a directory: " + name);
    // SAFETY: fchmod on the fd just opened, not on a path; mkdirat's mode met the umask.
    if (created && ::fchmod(fd.get(), 0755) != 0) {
      return ServiceError(std::string("chmod: ") + strerror(errno));
    }
    *out = std::move(fd);
    return Status::Ok();
  }

  // Makes room for a new file or link called `name`: a previous file or link of the
  // same name (a duplicate entry) is replaced; a directory is not.
  static Status clear_leaf(int parent, const std::string& name) {
    struct stat st;
    // SAFETY: lookups relative to a directory fd without following the leaf.
    if (::fstatat(parent, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) return Status::Ok();
    if (S_ISDIR(st.st_mode)) return unzip_error("file over directory: " + name);
    if (::unlinkat(parent, name.c_str(), 0) != 0) {
      return ServiceError("unlink " + name + ": " + strerror(errno));
    }
    return Status::Ok();
  }

  // Fails when n more bytes would pass the limit.
  Status check_size(uint64_t n) const {
    if (n > limits_.max_unzipped_bytes || total_ > limits_.max_unzipped_bytes - n) {
      return InvalidParameterValue("Unzipped size must be smaller than " +
                                   std::to_string(limits_.max_unzipped_bytes) + " bytes");
    }
    return Status::Ok();
  }

  Status add_bytes(uint64_t n) {
    Status s = check_size(n);
    total_ += n;
    return s;
  }

  Status write_file(archive* a, int parent, const std::string& name, mode_t zip_mode) {
    Status s = clear_leaf(parent, name);
    if (!s.ok()) return s;
    // SAFETY: O_EXCL|O_NOFOLLOW creates a new inode here and never follows a link.
    Fd fd(::openat(parent, name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                   0600));
    if (!fd.valid()) return unzip_error("create " + name + ": " + strerror(errno));
    char buf[64 * 1024];
    for (;;) {
      la_ssize_t n = archive_read_data(a, buf, sizeof buf);
      if (n == 0) break;
      if (n < 0) return unzip_error(archive_why(a));
      s = add_bytes(static_cast<uint64_t>(n));
      if (!s.ok()) return s;
      for (la_ssize_t off = 0; off < n;) {
        // SAFETY: writes bytes [off, n) of buf, which archive_read_data filled.
        ssize_t w = ::write(fd.get(), buf + off, static_cast<size_t>(n - off));
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) return ServiceError("write " + name + ": " + strerror(errno));
        off += w;
      }
    }
    const mode_t mode = (zip_mode & 0111) ? 0755 : 0644;
    // SAFETY: fchmod and close on the descriptor we own.
    if (::fchmod(fd.get(), mode) != 0) return ServiceError(std::string("chmod: ") + strerror(errno));
    if (::close(fd.release()) != 0) return ServiceError("close " + name + ": " + strerror(errno));
    return Status::Ok();
  }

  Status write_symlink(archive_entry* entry, int parent, const Components& path) {
    const char* target = archive_entry_symlink_utf8(entry);
    if (target == nullptr) target = archive_entry_symlink(entry);
    const std::string rel = join(path, path.size());
    if (target == nullptr || *target == '\0') return unzip_error("empty symlink: " + rel);
    if (target[0] == '/') return unzip_error("absolute symlink: " + rel + " -> " + target);
    if (!lexically_inside(Components(path.begin(), path.end() - 1), target)) {
      return unzip_error("symlink escapes: " + rel + " -> " + target);
    }
    Status s = add_bytes(strlen(target));
    if (!s.ok()) return s;
    s = clear_leaf(parent, path.back());
    if (!s.ok()) return s;
    // SAFETY: creates the link itself relative to a directory fd; follows nothing.
    if (::symlinkat(target, parent, path.back().c_str()) != 0) {
      return unzip_error("symlink " + rel + ": " + strerror(errno));
    }
    symlinks_.emplace(rel, path);
    return Status::Ok();
  }

  int dest_fd_;
  const CodeLimits& limits_;
  Fd parent_fd_;             // the directory open_parent returned last
  Components parent_path_;   // its path below dest
  uint64_t total_ = 0;
  uint64_t entries_ = 0;
  std::map<std::string, Components> symlinks_;  // every link written, by relative path
};

}  // namespace

StatusOr<uint64_t> extract_zip(std::string_view zip, const std::filesystem::path& dest,
                               const CodeLimits& limits) {
  // SAFETY: creates dest itself; an existing dest (or a link there) makes this fail.
  if (::mkdir(dest.c_str(), 0755) != 0) {
    return ServiceError("cannot create " + dest.string() + ": " + strerror(errno));
  }
  auto fail = [&dest](Status s) -> StatusOr<uint64_t> {
    std::error_code ec;
    std::filesystem::remove_all(dest, ec);  // does not follow links inside dest
    return s;
  };
  Fd dest_fd(::open(dest.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!dest_fd.valid()) return fail(ServiceError("open " + dest.string() + ": " + strerror(errno)));
  // SAFETY: fchmod on the descriptor just opened (mkdir's mode went through the umask).
  if (::fchmod(dest_fd.get(), 0755) != 0) return fail(ServiceError("chmod " + dest.string()));

  if (std::optional<std::string> special = find_special_file(zip)) {
    return fail(unzip_error("special file: " + *special));
  }
  Utf8ThreadLocale utf8;  // outlives the archive, which may cache charset converters
  std::unique_ptr<archive, decltype(&archive_read_free)> a(archive_read_new(), &archive_read_free);
  if (!a) return fail(ServiceError("archive_read_new failed"));
  archive_read_support_format_zip(a.get());
  if (zip.empty() ||
      archive_read_open_memory(a.get(), zip.data(), zip.size()) != ARCHIVE_OK) {
    return fail(unzip_error(zip.empty() ? "empty input" : archive_why(a.get())));
  }
  Extractor extractor(dest_fd.get(), limits);
  Status s = extractor.run(a.get());
  if (!s.ok()) return fail(s);
  return extractor.unzipped_size();
}

}  // namespace kiln::registry
