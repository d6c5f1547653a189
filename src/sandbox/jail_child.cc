#include "sandbox/jail_child.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/close_range.h>
#include <linux/securebits.h>
#include <linux/seccomp.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "sandbox/landlock.h"

namespace kiln::sandbox {

const char* jail_stage_name(int32_t stage) {
  switch (stage) {
    case kStageCgroup: return "join cgroup";
    case kStageNamespaces: return "cgroup namespace";
    case kStageMount: return "mount";
    case kStagePivotRoot: return "pivot_root";
    case kStageLoopback: return "loopback up";
    case kStageListen: return "runtime api listen";
    case kStageLimits: return "rlimits";
    case kStageUserNs: return "user namespace";
    case kStageHandOff: return "hand-off to parent";
    case kStageIdentity: return "set uid/gid";
    case kStageCapabilities: return "drop capabilities";
    case kStageNoNewPrivs: return "no_new_privs";
    case kStageStdio: return "stdio";
    case kStageChdir: return "chdir";
    case kStageLandlock: return "landlock";
    case kStageSeccomp: return "seccomp";
    case kStageExec: return "exec";
  }
  return "unknown";
}

namespace {

// This process's copy of the control socket (moved to fd 3 once stdio is set).
int g_control_fd = -1;

[[noreturn]] void fail(const JailChildPlan&, int32_t stage, int32_t detail, int err) {
  ChildReport r{ChildReport::kFailed, stage, detail, err};
  (void)!::send(g_control_fd, &r, sizeof r, MSG_NOSIGNAL);
  ::_exit(127);
}

// The runtime starts with default dispositions and nothing blocked, whatever Kiln's
// thread had (an ignored SIGPIPE would otherwise survive exec).
void reset_signals() {
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  for (int sig = 1; sig < NSIG; ++sig) ::sigaction(sig, &dfl, nullptr);  // EINVAL for KILL/STOP
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
}

void build_root(const JailChildPlan& p) {
  for (size_t i = 0; i < p.mount_count; ++i) {
    const MountOp& m = p.mounts[i];
    int rc;
    if (m.kind == MountOp::kReadOnlyTree) {
      mount_attr attr{};
      attr.attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV;
      rc = static_cast<int>(::syscall(SYS_mount_setattr, AT_FDCWD, m.target, AT_RECURSIVE, &attr,
                                      sizeof attr));
    } else {
      rc = ::mount(m.source, m.target, m.fstype, m.flags, m.data);
    }
    if (rc != 0) fail(p, kStageMount, static_cast<int32_t>(i), errno);
  }
  // SAFETY: new_root is a mount point (bound onto itself above) in a private namespace;
  // stacking the old root under the new one and detaching it leaves only the new tree.
  if (::chdir(p.new_root) != 0 || ::syscall(SYS_pivot_root, ".", ".") != 0 ||
      ::umount2(".", MNT_DETACH) != 0 || ::chdir("/") != 0) {
    fail(p, kStagePivotRoot, 0, errno);
  }
}

// Brings up lo in the fresh network namespace and listens on 127.0.0.1:port there.
int open_runtime_api(const JailChildPlan& p) {
  int s = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
  ifr.ifr_flags = IFF_UP | IFF_RUNNING;
  if (s < 0 || ::ioctl(s, SIOCSIFFLAGS, &ifr) != 0) fail(p, kStageLoopback, 0, errno);
  ::close(s);
  int l = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(p.api_port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (l < 0 || ::bind(l, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(l, 128) != 0) {
    fail(p, kStageListen, 0, errno);
  }
  return l;
}

void set_limits(const JailChildPlan& p) {
  rlimit files{p.max_open_files, p.max_open_files};
  rlimit fsize{p.max_file_bytes, p.max_file_bytes};
  rlimit core{0, 0};
  if (::setrlimit(RLIMIT_NOFILE, &files) != 0 || ::setrlimit(RLIMIT_FSIZE, &fsize) != 0 ||
      ::setrlimit(RLIMIT_CORE, &core) != 0) {
    fail(p, kStageLimits, 0, errno);
  }
}

// Under memory pressure on the host, sandboxes die before Kiln does (best effort).
void prefer_oom_kill() {
  int fd = ::open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
  if (fd >= 0) {
    (void)!::write(fd, "1000", 4);
    ::close(fd);
  }
}

// Hands the Runtime API socket to the parent and waits until it has written the
// user namespace's uid/gid maps.
void hand_off(const JailChildPlan& p, int api_fd) {
  ChildReport r{ChildReport::kUserNsReady, 0, 0, 0};
  iovec iov{&r, sizeof r};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  if (api_fd >= 0) {
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(c), &api_fd, sizeof(int));
  }
  if (::sendmsg(g_control_fd, &msg, MSG_NOSIGNAL) < 0) fail(p, kStageHandOff, 0, errno);
  if (api_fd >= 0) ::close(api_fd);
  char go = 0;
  if (::recv(g_control_fd, &go, 1, 0) != 1) ::_exit(127);  // the parent gave up
}

void drop_privileges(const JailChildPlan& p) {
  // Raw system calls: glibc's set*id wrappers would try to signal the parent's threads.
  if (::syscall(SYS_setresgid, 0, 0, 0) != 0 || ::syscall(SYS_setresuid, 0, 0, 0) != 0) {
    fail(p, kStageIdentity, 0, errno);
  }
  const unsigned long bits = SECBIT_NOROOT | SECBIT_NOROOT_LOCKED | SECBIT_NO_SETUID_FIXUP |
                             SECBIT_NO_SETUID_FIXUP_LOCKED | SECBIT_KEEP_CAPS_LOCKED |
                             SECBIT_NO_CAP_AMBIENT_RAISE | SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED;
  if (::prctl(PR_SET_SECUREBITS, bits, 0, 0, 0) != 0) fail(p, kStageCapabilities, 1, errno);
  for (int cap = 0; cap <= p.cap_last_cap; ++cap) {
    if (::prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 && errno != EINVAL) {
      fail(p, kStageCapabilities, 2, errno);
    }
  }
  if (::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0) {
    fail(p, kStageCapabilities, 3, errno);
  }
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2] = {};
  if (::syscall(SYS_capset, &header, data) != 0) fail(p, kStageCapabilities, 4, errno);
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) fail(p, kStageNoNewPrivs, 0, errno);
}

void set_stdio(const JailChildPlan& p) {
  int null_fd = ::open("/dev/null", O_RDWR | O_CLOEXEC);
  int out = p.output_fd >= 0 ? ::fcntl(p.output_fd, F_DUPFD_CLOEXEC, 3) : null_fd;
  if (null_fd < 0 || out < 0 || ::dup2(null_fd, 0) < 0 || ::dup2(out, 1) < 0 ||
      ::dup2(out, 2) < 0) {
    fail(p, kStageStdio, 0, errno);
  }
  // Close everything else Kiln had open; the control socket moves to fd 3 and closes at
  // exec, which tells the parent that exec succeeded.
  if (g_control_fd != 3 && ::dup3(g_control_fd, 3, O_CLOEXEC) != 3) fail(p, kStageStdio, 1, errno);
  g_control_fd = 3;
  ::close_range(4, ~0U, 0);
}

}  // namespace

void run_jail_child(const JailChildPlan& p) {
  g_control_fd = p.control_fd;
  ::close(p.parent_control_fd);
  reset_signals();
  (void)::sethostname("localhost", 9);
  prefer_oom_kill();
  build_root(p);
  int api_fd = p.own_network ? open_runtime_api(p) : -1;
  if (::syscall(SYS_setgroups, 0, nullptr) != 0) fail(p, kStageIdentity, 1, errno);
  if (::unshare(CLONE_NEWUSER) != 0) fail(p, kStageUserNs, 0, errno);
  hand_off(p, api_fd);
  // The parent has moved us into the sandbox's cgroups by now.
  if (::unshare(CLONE_NEWCGROUP) != 0) fail(p, kStageNamespaces, 0, errno);
  drop_privileges(p);
  set_stdio(p);
  set_limits(p);
  if (::chdir(p.cwd) != 0) fail(p, kStageChdir, 0, errno);
  if (int err = apply_landlock(p.landlock_abi); err != 0) fail(p, kStageLandlock, 0, err);
  if (p.seccomp && ::prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, p.seccomp, 0, 0) != 0) {
    fail(p, kStageSeccomp, 0, errno);
  }
  ::execve(p.argv[0], const_cast<char* const*>(p.argv), const_cast<char* const*>(p.envp));
  fail(p, kStageExec, 0, errno);
}

}  // namespace kiln::sandbox
