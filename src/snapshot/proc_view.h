// Reading /proc/PID the way the sandbox sees its paths: a helper thread unshares its
// fs_struct and chroot()s into /proc/PID/root, so that readlink of fd links, the paths in
// smaps and stat() of those paths resolve against the sandbox's root, not Kiln's.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "common/status.h"

namespace kiln::snapshot {

struct Vma {
  uint64_t start = 0, end = 0;
  std::string perms;  // "rw-p"
  uint64_t offset = 0;
  uint64_t dev_major = 0, dev_minor = 0, inode = 0;
  std::string path;   // as the sandbox sees it ("" anonymous, "[heap]" ...)
  std::string vmflags;  // "rd wr mr mw me ac gd ..."
  bool has_flag(const char* f) const;
};

struct FileId {
  bool ok = false;
  uint64_t dev = 0, ino = 0, size = 0;
  int64_t mtime_sec = 0, mtime_nsec = 0;
  unsigned mode = 0;
};

struct ProcView {
  std::vector<Vma> vmas;
  std::string cwd;
  std::vector<std::pair<int, std::string>> fd_links;  // fd -> readlink text
  // stat() results of every path above, by path.
  std::vector<std::pair<std::string, FileId>> stats;
  const FileId* stat_of(const std::string& path) const;
};

// Reads smaps, cwd and fd links of `pid` from inside its root.
StatusOr<ProcView> read_proc_view(pid_t pid);

std::string read_text(const std::string& path);

}  // namespace kiln::snapshot
