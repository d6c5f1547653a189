// The read-only root skeleton shared by every jail: a host directory holding only the
// mount points (usr, var/task, var/runtime, opt, tmp, proc, dev/*), the usrmerge
// symlinks, and copies of the few /etc files runtimes read. Each jail mounts a read-only
// overlay of it (and of each host tree) in its own mount namespace and pivots into it,
// so no per-sandbox directory or copy exists on the host. The overlays give each
// sandbox its own inodes: a lock (flock, POSIX or OFD) taken inside locks the overlay's
// inode, never the host's file that other tenants and the host share; and their
// mountinfo shows "/" and /proc/self/fd paths, never a host path.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "common/status.h"

namespace kiln::sandbox {

struct RootSkeleton {
  std::filesystem::path dir;
  // <state_dir>/empty: always empty; the bottom layer of every single-layer overlay
  // (overlayfs wants two lower layers when it has no upper one).
  std::filesystem::path empty;
  // Host system directories to mount read-only (overlays): {host path, path inside} (e.g. /usr,
  // and /lib, /bin... when they are real directories rather than usrmerge symlinks).
  std::vector<std::pair<std::string, std::string>> system_binds;
  // Host device nodes bound at the same path inside: /dev/null, zero, full, random, urandom.
  std::vector<std::string> devices;
};

// Creates or refreshes <state_dir>/rootfs from the host root host_root ("/" except in
// tests). Idempotent; never removes a mount point, so live sandboxes are unaffected.
// /etc/passwd, /etc/group and /etc/hosts are Kiln's own (root, nobody, localhost), not
// the host's; ld.so.cache, nsswitch.conf, resolv.conf, localtime, os-release, services,
// protocols and /etc/ssl are copied from the host when present.
StatusOr<RootSkeleton> prepare_root_skeleton(const std::filesystem::path& state_dir,
                                             const std::filesystem::path& host_root = "/");

}  // namespace kiln::sandbox
