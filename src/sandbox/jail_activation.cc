#include "sandbox/jail_activation.h"

#include <fcntl.h>
#include <linux/mount.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "sandbox/jail_child.h"
#include "sandbox/tmp_archive.h"

namespace kiln::sandbox {
namespace fs = std::filesystem;
namespace {

Status errno_status(const std::string& what, int err) {
  return ServiceError("jail: " + what + ": " + std::strerror(err));
}

constexpr unsigned kReadOnlyAttrs = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV;

// A detached read-only overlay of dirs (later ones win, as Lambda's layers do; overlayfs
// lists the topmost lower layer first) above the empty directory. The layers are named
// by this process's fds, so the mount shows "/proc/self/fd/<n>", not a host path.
StatusOr<UniqueFd> detached_overlay(const std::vector<fs::path>& dirs, int empty_dir_fd) {
  std::vector<UniqueFd> fds;
  std::string lower;
  for (auto it = dirs.rbegin(); it != dirs.rend(); ++it) {
    UniqueFd fd(::open(it->c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!fd.valid()) return errno_status("open " + it->string(), errno);
    lower += "/proc/self/fd/" + std::to_string(fd.get()) + ":";
    fds.push_back(std::move(fd));
  }
  lower += "/proc/self/fd/" + std::to_string(empty_dir_fd);
  // SAFETY: the fs context and the mount are new objects owned by the fds below.
  UniqueFd ctx(static_cast<int>(::syscall(SYS_fsopen, "overlay", FSOPEN_CLOEXEC)));
  if (!ctx.valid() ||
      ::syscall(SYS_fsconfig, ctx.get(), FSCONFIG_SET_STRING, "source", "kiln", 0) != 0 ||
      ::syscall(SYS_fsconfig, ctx.get(), FSCONFIG_SET_STRING, "lowerdir", lower.c_str(), 0) != 0 ||
      ::syscall(SYS_fsconfig, ctx.get(), FSCONFIG_CMD_CREATE, nullptr, nullptr, 0) != 0) {
    return errno_status("overlay of " + dirs.front().string(), errno);
  }
  UniqueFd fd(static_cast<int>(::syscall(SYS_fsmount, ctx.get(), FSMOUNT_CLOEXEC, kReadOnlyAttrs)));
  if (!fd.valid()) return errno_status("fsmount overlay of " + dirs.front().string(), errno);
  return fd;
}

// A detached tmpfs for /tmp, as the shell would mount it, with the archive unpacked
// into it. Kiln writes it before any process of the sandbox exists, so nothing races
// the unpacking; tmp_archive.cc still refuses every path that would leave the tree.
StatusOr<UniqueFd> seeded_tmp(const SandboxSpec& spec, uint32_t host_id) {
  const std::string size = std::to_string(spec.ephemeral_mb) + "m";
  UniqueFd ctx(static_cast<int>(::syscall(SYS_fsopen, "tmpfs", FSOPEN_CLOEXEC)));
  if (!ctx.valid() || ::syscall(SYS_fsconfig, ctx.get(), FSCONFIG_SET_STRING, "size", size.c_str(), 0) != 0 ||
      ::syscall(SYS_fsconfig, ctx.get(), FSCONFIG_SET_STRING, "mode", "1777", 0) != 0 ||
      ::syscall(SYS_fsconfig, ctx.get(), FSCONFIG_CMD_CREATE, nullptr, nullptr, 0) != 0) {
    return errno_status("tmpfs for /tmp", errno);
  }
  UniqueFd mnt(static_cast<int>(::syscall(SYS_fsmount, ctx.get(), FSMOUNT_CLOEXEC,
                                          MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV)));
  if (!mnt.valid()) return errno_status("fsmount /tmp", errno);
  if (Status s = unpack_tmp_archive(spec.tmp_archive_fd, mnt.get(), host_id, host_id,
                                    uint64_t{spec.ephemeral_mb} << 20);
      !s.ok()) {
    return s;
  }
  return mnt;
}

}  // namespace

StatusOr<ActivationMessage> build_activation(const SandboxSpec& spec, const std::string& api_env,
                                             uint32_t host_id, uint64_t max_open_files,
                                             int empty_dir_fd) {
  ActivationMessage m;
  std::vector<std::string> targets;
  for (const auto& [dir, inside] : {std::pair{spec.code_dir, "/var/task"},
                                    std::pair{spec.runtime_dir, "/var/runtime"}}) {
    auto fd = detached_overlay({dir}, empty_dir_fd);
    if (!fd.ok()) return fd.status();
    m.mounts.push_back(std::move(*fd));
    targets.push_back(inside);
  }
  if (!spec.layer_dirs.empty()) {
    auto fd = detached_overlay(spec.layer_dirs, empty_dir_fd);
    if (!fd.ok()) return fd.status();
    m.mounts.push_back(std::move(*fd));
    targets.push_back("/opt");
  }
  ActivationHeader h;
  if (spec.tmp_archive_fd >= 0) {
    auto fd = seeded_tmp(spec, host_id);
    if (!fd.ok()) return fd.status();
    m.mounts.push_back(std::move(*fd));
    targets.push_back("/tmp");
    h.tmp_given = 1;
  }
  if (spec.pass_fds.size() > static_cast<size_t>(kMaxPassedFds)) {
    return InvalidParameterValue("at most " + std::to_string(kMaxPassedFds) + " fds pass to a sandbox");
  }
  m.passed = spec.pass_fds;
  h.pass_count = static_cast<uint16_t>(spec.pass_fds.size());
  h.api_port = spec.runtime_api_port;
  h.has_output = spec.output_fd >= 0;
  h.mount_count = static_cast<uint32_t>(targets.size());
  h.argc = static_cast<uint32_t>(spec.argv.size());
  h.host_uid = host_id;
  h.host_gid = host_id;
  h.max_open_files = max_open_files;
  h.max_file_bytes = uint64_t{spec.ephemeral_mb} << 20;
  std::string strings = "size=" + std::to_string(spec.ephemeral_mb) + "m,mode=1777";
  strings.push_back('\0');
  auto add = [&](const std::string& s) {
    strings.append(s.c_str());  // up to an embedded NUL, as execve would see it
    strings.push_back('\0');
  };
  for (const std::string& t : targets) add(t);
  for (const std::string& a : spec.argv) add(a);
  for (const std::string& e : spec.env) {
    bool is_api = e.rfind("AWS_LAMBDA_RUNTIME_API=", 0) == 0;
    if (!(is_api && !api_env.empty())) {
      add(e);
      ++h.envc;
    }
  }
  if (!api_env.empty()) {
    add(api_env);
    ++h.envc;
  }
  if (sizeof h + strings.size() > kMaxActivationBytes) {
    return InvalidParameterValue("sandbox argv and environment exceed 128 KiB");
  }
  h.size = static_cast<uint32_t>(sizeof h + strings.size());
  m.bytes.assign(reinterpret_cast<const char*>(&h), sizeof h);
  m.bytes += strings;
  return m;
}

bool send_activation(int fd, int output_fd, const ActivationMessage& m) {
  std::vector<int> fds;
  if (output_fd >= 0) fds.push_back(output_fd);
  for (const UniqueFd& f : m.mounts) fds.push_back(f.get());
  for (int f : m.passed) fds.push_back(f);
  if (fds.size() > static_cast<size_t>(kMaxActivationFds)) {
    errno = EINVAL;
    return false;
  }
  iovec iov{const_cast<char*>(m.bytes.data()), m.bytes.size()};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxActivationFds)] = {};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  if (!fds.empty()) {
    msg.msg_control = control;
    msg.msg_controllen = CMSG_SPACE(sizeof(int) * fds.size());
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
    std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
  }
  return ::sendmsg(fd, &msg, MSG_NOSIGNAL) == static_cast<ssize_t>(m.bytes.size());
}

}  // namespace kiln::sandbox
