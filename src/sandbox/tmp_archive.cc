#include "sandbox/tmp_archive.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "sandbox/unique_fd.h"

namespace kiln::sandbox {
namespace {

constexpr char kMagic[8] = {'K', 'I', 'L', 'N', 'T', 'M', 'P', '1'};
constexpr uint32_t kMaxPath = 4096;

enum Type : uint8_t { kEnd = 0, kDir = 1, kFile = 2, kLink = 3 };

struct Record {
  uint8_t type = kEnd;
  uint8_t pad[3] = {};
  uint32_t mode = 0;
  uint32_t path_len = 0;
  uint32_t pad2 = 0;
  uint64_t size = 0;
  int64_t mtime_s = 0;
  int64_t mtime_ns = 0;
};
static_assert(sizeof(Record) == 40);

Status io_error(const std::string& what, int err) {
  return ServiceError("/tmp archive: " + what + ": " + std::strerror(err));
}

bool write_all(int fd, const void* data, size_t n) {
  const char* p = static_cast<const char*>(data);
  while (n > 0) {
    ssize_t w = ::write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    p += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

bool read_all(int fd, void* data, size_t n) {
  char* p = static_cast<char*>(data);
  while (n > 0) {
    ssize_t r = ::read(fd, p, n);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) {
      if (r == 0) errno = EPROTO;
      return false;
    }
    p += r;
    n -= static_cast<size_t>(r);
  }
  return true;
}

// Copies n bytes from `from` (current offset) to `to`.
bool copy_bytes(int from, int to, uint64_t n) {
  char buf[65536];
  while (n > 0) {
    size_t chunk = n < sizeof buf ? static_cast<size_t>(n) : sizeof buf;
    if (!read_all(from, buf, chunk) || !write_all(to, buf, chunk)) return false;
    n -= chunk;
  }
  return true;
}

class Packer {
 public:
  Packer(int out, const TmpArchiveLimits& limits) : out_(out), limits_(limits) {}

  Status pack_dir(int dir_fd, const std::string& prefix, uint32_t depth) {
    if (depth > limits_.max_depth) return ServiceError("/tmp is nested deeper than " + std::to_string(limits_.max_depth) + " directories");
    // fdopendir takes the fd; a duplicate keeps the caller's.
    int dup = ::fcntl(dir_fd, F_DUPFD_CLOEXEC, 0);
    if (dup < 0) return io_error("dup", errno);
    DIR* d = ::fdopendir(dup);
    if (!d) {
      ::close(dup);
      return io_error("opendir", errno);
    }
    std::vector<std::string> names;
    errno = 0;
    while (dirent* e = ::readdir(d)) {
      std::string_view n = e->d_name;
      if (n == "." || n == "..") continue;
      names.emplace_back(n);
      if (++entries_ > limits_.max_entries) {
        ::closedir(d);
        return ServiceError("/tmp holds more than " + std::to_string(limits_.max_entries) + " entries");
      }
    }
    ::closedir(d);
    for (const std::string& name : names) {
      if (Status s = pack_entry(dir_fd, name, prefix.empty() ? name : prefix + "/" + name, depth); !s.ok()) return s;
    }
    return Status::Ok();
  }

  Status finish() {
    Record end;
    if (!write_all(out_, &end, sizeof end)) return io_error("write", errno);
    return Status::Ok();
  }

 private:
  Status pack_entry(int dir_fd, const std::string& name, const std::string& path, uint32_t depth) {
    struct stat st {};
    if (::fstatat(dir_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) return io_error("stat " + path, errno);
    if (path.size() > kMaxPath) return ServiceError("/tmp holds a path longer than 4096 bytes");
    Record r;
    r.mode = st.st_mode & 07777;
    r.path_len = static_cast<uint32_t>(path.size());
    r.mtime_s = st.st_mtim.tv_sec;
    r.mtime_ns = st.st_mtim.tv_nsec;
    if (S_ISDIR(st.st_mode)) {
      UniqueFd sub(::openat(dir_fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (!sub.valid()) return io_error("open " + path, errno);
      r.type = kDir;
      if (Status s = emit(r, path); !s.ok()) return s;
      return pack_dir(sub.get(), path, depth + 1);
    }
    if (S_ISLNK(st.st_mode)) {
      char target[kMaxPath];
      ssize_t n = ::readlinkat(dir_fd, name.c_str(), target, sizeof target);
      if (n < 0) return io_error("readlink " + path, errno);
      r.type = kLink;
      r.size = static_cast<uint64_t>(n);
      if (Status s = account(r.size); !s.ok()) return s;
      if (Status s = emit(r, path); !s.ok()) return s;
      if (!write_all(out_, target, static_cast<size_t>(n))) return io_error("write", errno);
      return Status::Ok();
    }
    if (!S_ISREG(st.st_mode)) return Status::Ok();  // sockets, fifos, devices: not kept
    UniqueFd f(::openat(dir_fd, name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK));
    if (!f.valid()) return io_error("open " + path, errno);
    struct stat fst {};
    if (::fstat(f.get(), &fst) != 0 || !S_ISREG(fst.st_mode)) return io_error("stat " + path, EINVAL);
    r.type = kFile;
    r.size = static_cast<uint64_t>(fst.st_size);
    if (Status s = account(r.size); !s.ok()) return s;
    if (Status s = emit(r, path); !s.ok()) return s;
    if (!copy_bytes(f.get(), out_, r.size)) return io_error("copy " + path, errno);
    return Status::Ok();
  }

  Status account(uint64_t n) {
    bytes_ += n;
    if (bytes_ > limits_.max_bytes) return ServiceError("/tmp holds more than its limit of bytes");
    return Status::Ok();
  }

  Status emit(const Record& r, const std::string& path) {
    if (!write_all(out_, &r, sizeof r) || !write_all(out_, path.data(), path.size())) return io_error("write", errno);
    return Status::Ok();
  }

  int out_;
  TmpArchiveLimits limits_;
  uint32_t entries_ = 0;
  uint64_t bytes_ = 0;
};

// Splits a relative path into components; false for anything but plain names.
bool split_path(std::string_view path, std::vector<std::string>& parts) {
  if (path.empty() || path.size() > kMaxPath || path.front() == '/') return false;
  size_t start = 0;
  while (start <= path.size()) {
    size_t slash = path.find('/', start);
    if (slash == std::string_view::npos) slash = path.size();
    std::string_view part = path.substr(start, slash - start);
    if (part.empty() || part == "." || part == ".." || part.find('\0') != std::string_view::npos) return false;
    parts.emplace_back(part);
    start = slash + 1;
  }
  return !parts.empty();
}

// Opens the directory holding the last component, walking from root without following
// any link; every directory on the way must be one unpacked before.
UniqueFd open_parent(int root, const std::vector<std::string>& parts) {
  UniqueFd cur(::fcntl(root, F_DUPFD_CLOEXEC, 0));
  for (size_t i = 0; i + 1 < parts.size() && cur.valid(); ++i) {
    cur = UniqueFd(::openat(cur.get(), parts[i].c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  }
  return cur;
}

}  // namespace

Status pack_tmp_tree(int dir_fd, int out_fd, const TmpArchiveLimits& limits) {
  if (!write_all(out_fd, kMagic, sizeof kMagic)) return io_error("write", errno);
  Packer p(out_fd, limits);
  if (Status s = p.pack_dir(dir_fd, "", 0); !s.ok()) return s;
  return p.finish();
}

Status unpack_tmp_archive(int archive_fd, int dir_fd, uid_t uid, gid_t gid, uint64_t max_bytes) {
  char magic[sizeof kMagic];
  if (!read_all(archive_fd, magic, sizeof magic) || std::memcmp(magic, kMagic, sizeof kMagic) != 0) {
    return ServiceError("/tmp archive: not an archive");
  }
  uint64_t total = 0;
  std::string path;
  for (;;) {
    Record r;
    if (!read_all(archive_fd, &r, sizeof r)) return io_error("read", errno);
    if (r.type == kEnd) return Status::Ok();
    if (r.type > kLink || r.path_len == 0 || r.path_len > kMaxPath) return ServiceError("/tmp archive: bad record");
    path.resize(r.path_len);
    if (!read_all(archive_fd, path.data(), path.size())) return io_error("read", errno);
    std::vector<std::string> parts;
    if (!split_path(path, parts)) return ServiceError("/tmp archive: bad path");
    if (r.type != kDir) {
      total += r.size;
      if (total > max_bytes || r.size > max_bytes) return ServiceError("/tmp archive: larger than /tmp");
    }
    UniqueFd parent = open_parent(dir_fd, parts);
    if (!parent.valid()) return io_error("parent of " + path, errno);
    const char* name = parts.back().c_str();
    const mode_t mode = r.mode & 01777;  // no set-id bits
    if (r.type == kDir) {
      if (::mkdirat(parent.get(), name, 0700) != 0) return io_error("mkdir " + path, errno);
      UniqueFd d(::openat(parent.get(), name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (!d.valid() || ::fchown(d.get(), uid, gid) != 0 || ::fchmod(d.get(), mode) != 0) {
        return io_error("dir " + path, errno);
      }
    } else if (r.type == kLink) {
      if (r.size == 0 || r.size >= kMaxPath) return ServiceError("/tmp archive: bad link");
      std::string target(r.size, '\0');
      if (!read_all(archive_fd, target.data(), target.size())) return io_error("read", errno);
      if (target.find('\0') != std::string::npos) return ServiceError("/tmp archive: bad link");
      if (::symlinkat(target.c_str(), parent.get(), name) != 0 ||
          ::fchownat(parent.get(), name, uid, gid, AT_SYMLINK_NOFOLLOW) != 0) {
        return io_error("symlink " + path, errno);
      }
    } else {
      UniqueFd f(::openat(parent.get(), name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
      if (!f.valid()) return io_error("create " + path, errno);
      if (!copy_bytes(archive_fd, f.get(), r.size)) return io_error("write " + path, errno);
      const timespec times[2] = {{r.mtime_s, r.mtime_ns}, {r.mtime_s, r.mtime_ns}};
      if (::fchown(f.get(), uid, gid) != 0 || ::fchmod(f.get(), mode) != 0) return io_error("file " + path, errno);
      (void)::futimens(f.get(), times);
    }
  }
}

}  // namespace kiln::sandbox
