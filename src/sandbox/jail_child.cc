#include "sandbox/jail_child.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/mount.h>
#include <linux/close_range.h>
#include <linux/securebits.h>
#include <linux/seccomp.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "sandbox/landlock.h"
#include "sandbox/sandbox.h"

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
    case kStageActivation: return "activation";
    case kStageAttach: return "attach mount";
    case kStageTmp: return "mount /tmp";
  }
  return "unknown";
}

namespace {

// This process's copy of the control socket (moved to fd 3 once stdio is set).
int g_control_fd = -1;

[[noreturn]] void fail(int32_t stage, int32_t detail, int err) {
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

void build_root(const ShellPlan& p) {
  for (size_t i = 0; i < p.mount_count; ++i) {
    const MountOp& m = p.mounts[i];
    int rc;
    if (m.kind == MountOp::kOpenPath) {
      int fd = ::open(m.source, O_PATH | O_DIRECTORY | O_CLOEXEC);
      rc = fd < 0 ? -1 : fd == m.fd ? 0 : ::dup3(fd, m.fd, O_CLOEXEC) == m.fd ? 0 : -1;
      if (fd >= 0 && fd != m.fd) ::close(fd);
    } else if (m.kind == MountOp::kReadOnlyTree) {
      mount_attr attr{};
      attr.attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV;
      rc = static_cast<int>(::syscall(SYS_mount_setattr, AT_FDCWD, m.target, AT_RECURSIVE, &attr,
                                      sizeof attr));
    } else {
      rc = ::mount(m.source, m.target, m.fstype, m.flags, m.data);
    }
    if (rc != 0) fail(kStageMount, static_cast<int32_t>(i), errno);
  }
  ::close_range(kFirstPlanFd, ~0U, 0);  // the overlays hold their layers themselves
  // SAFETY: new_root is a mount point (bound onto itself above) in a private namespace;
  // stacking the old root under the new one and detaching it leaves only the new tree.
  if (::chdir(p.new_root) != 0 || ::syscall(SYS_pivot_root, ".", ".") != 0 ||
      ::umount2(".", MNT_DETACH) != 0 || ::chdir("/") != 0) {
    fail(kStagePivotRoot, 0, errno);
  }
}

// Brings up lo in the fresh network namespace.
void bring_up_loopback() {
  int s = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
  ifr.ifr_flags = IFF_UP | IFF_RUNNING;
  if (s < 0 || ::ioctl(s, SIOCSIFFLAGS, &ifr) != 0) fail(kStageLoopback, 0, errno);
  ::close(s);
}

// Listens on 127.0.0.1:port of the sandbox's own loopback.
int open_runtime_api(uint16_t port) {
  int l = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (l < 0 || ::bind(l, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(l, 128) != 0) {
    fail(kStageListen, 0, errno);
  }
  return l;
}

void set_limits(const ActivationHeader& p) {
  rlimit files{p.max_open_files, p.max_open_files};
  rlimit fsize{p.max_file_bytes, p.max_file_bytes};
  rlimit core{0, 0};
  if (::setrlimit(RLIMIT_NOFILE, &files) != 0 || ::setrlimit(RLIMIT_FSIZE, &fsize) != 0 ||
      ::setrlimit(RLIMIT_CORE, &core) != 0) {
    fail(kStageLimits, 0, errno);
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

// The sandbox dies with Kiln: SIGKILL when the Kiln thread that is its parent exits
// (the thread that started the zygote, or the one that cloned the shell). Set after the
// uid change, which clears it; no later credential change does (the uid stays the same
// kernel uid, capabilities only shrink), and exec keeps it. A Kiln that died before
// this line is caught by hand_off(), whose send to Kiln's end of the control socket
// fails once that end is closed.
void tie_to_kiln() {
  if (::prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0) fail(kStageIdentity, 7, errno);
}

// Sends the Runtime API socket (or none) to the parent; does not wait for an answer.
void hand_off(int api_fd) {
  ChildReport r{ChildReport::kReady, 0, 0, 0};
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
  if (::sendmsg(g_control_fd, &msg, MSG_NOSIGNAL) < 0) fail(kStageHandOff, 0, errno);
  if (api_fd >= 0) ::close(api_fd);
}

// Writes "0 <id> 1\n" (or any text when id is ~0u) to a /proc/self file; errno or 0.
int write_proc_self(const char* file, uint32_t id, const char* text) {
  char line[32];
  size_t n = 0;
  if (text) {
    while (text[n] && n < sizeof line) line[n] = text[n], ++n;
  } else {
    char digits[12];
    size_t d = 0;
    do digits[d++] = static_cast<char>('0' + id % 10); while ((id /= 10) != 0);
    line[n++] = '0';
    line[n++] = ' ';
    while (d > 0) line[n++] = digits[--d];
    line[n++] = ' ';
    line[n++] = '1';
    line[n++] = '\n';
  }
  int fd = ::open(file, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return errno;
  int err = ::write(fd, line, n) == static_cast<ssize_t>(n) ? 0 : errno;
  ::close(fd);
  return err;
}

// Becomes the tenant's host uid/gid, then root of a fresh user namespace mapped to them.
// Capabilities are kept across the uid change so that hosts which refuse unprivileged
// user namespaces (Debian's sysctl, Ubuntu's AppArmor) still allow this one; they are
// capabilities over the host's namespaces only until the unshare, which replaces them.
void enter_user_namespace(const ActivationHeader& h) {
  if (::syscall(SYS_setgroups, 0, nullptr) != 0) fail(kStageIdentity, 1, errno);
  if (::prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) != 0) fail(kStageIdentity, 2, errno);
  // Raw system calls: glibc's set*id wrappers would try to signal the parent's threads.
  if (::syscall(SYS_setresgid, h.host_gid, h.host_gid, h.host_gid) != 0 ||
      ::syscall(SYS_setresuid, h.host_uid, h.host_uid, h.host_uid) != 0) {
    fail(kStageIdentity, 3, errno);
  }
  // The uid change made us non-dumpable, which hands /proc/self to the host's root; we
  // must write our own maps there. execve sets dumpability afresh for the runtime.
  if (::prctl(PR_SET_DUMPABLE, 1, 0, 0, 0) != 0) fail(kStageIdentity, 6, errno);
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2] = {};
  if (::syscall(SYS_capget, &header, data) != 0) fail(kStageIdentity, 4, errno);
  data[0].effective = data[0].permitted;
  data[1].effective = data[1].permitted;
  if (::syscall(SYS_capset, &header, data) != 0) fail(kStageIdentity, 5, errno);
  if (::unshare(CLONE_NEWUSER) != 0) fail(kStageUserNs, 0, errno);
  int err = write_proc_self("/proc/self/setgroups", 0, "deny");
  if (!err) err = write_proc_self("/proc/self/uid_map", h.host_uid, nullptr);
  if (!err) err = write_proc_self("/proc/self/gid_map", h.host_gid, nullptr);
  if (err) fail(kStageUserNs, 1, err);
}

void drop_privileges(const ShellPlan& p) {
  // Raw system calls: glibc's set*id wrappers would try to signal the parent's threads.
  if (::syscall(SYS_setresgid, 0, 0, 0) != 0 || ::syscall(SYS_setresuid, 0, 0, 0) != 0) {
    fail(kStageIdentity, 0, errno);
  }
  const unsigned long bits = SECBIT_NOROOT | SECBIT_NOROOT_LOCKED | SECBIT_NO_SETUID_FIXUP |
                             SECBIT_NO_SETUID_FIXUP_LOCKED | SECBIT_KEEP_CAPS_LOCKED |
                             SECBIT_NO_CAP_AMBIENT_RAISE | SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED;
  if (::prctl(PR_SET_SECUREBITS, bits, 0, 0, 0) != 0) fail(kStageCapabilities, 1, errno);
  for (int cap = 0; cap <= p.cap_last_cap; ++cap) {
    if (::prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 && errno != EINVAL) {
      fail(kStageCapabilities, 2, errno);
    }
  }
  if (::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0) {
    fail(kStageCapabilities, 3, errno);
  }
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2] = {};
  if (::syscall(SYS_capset, &header, data) != 0) fail(kStageCapabilities, 4, errno);
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) fail(kStageNoNewPrivs, 0, errno);
}

// stdin is /dev/null, stdout and stderr go to out (or /dev/null when out < 0), the
// passed fds sit at kPassedFdBase.. (kept open at exec); every other fd but the control
// socket (fd 3, closed at exec) is closed.
void set_stdio(int out, const int* passed, int pass_count) {
  int null_fd = ::open("/dev/null", O_RDWR | O_CLOEXEC);
  if (out < 0) out = null_fd;
  if (null_fd < 0 || ::dup2(null_fd, 0) < 0 || ::dup2(out, 1) < 0 || ::dup2(out, 2) < 0) {
    fail(kStageStdio, 0, errno);
  }
  // Through fds above every target first, so that no move overwrites a fd still to move;
  // the control socket (fd 3) moves up too when passed fds take its place. It stays
  // close-on-exec: its hang-up still tells the parent that exec happened.
  constexpr int kHigh = 64;
  static_assert(kPassedFdBase + kMaxPassedFds < kHigh);
  int high[kMaxPassedFds];
  for (int i = 0; i < pass_count; ++i) {
    if ((high[i] = ::fcntl(passed[i], F_DUPFD_CLOEXEC, kHigh)) < 0) fail(kStageStdio, 2, errno);
  }
  if (pass_count > 0) {
    int moved = ::fcntl(g_control_fd, F_DUPFD_CLOEXEC, kHigh);
    if (moved < 0) fail(kStageStdio, 4, errno);
    g_control_fd = moved;
  }
  for (int i = 0; i < pass_count; ++i) {
    if (::dup2(high[i], kPassedFdBase + i) < 0) fail(kStageStdio, 3, errno);  // dup2: no CLOEXEC
  }
  // Everything else goes: between the passed fds and the control socket, and above it.
  const unsigned first = static_cast<unsigned>(pass_count > 0 ? kPassedFdBase + pass_count : 4);
  const unsigned control = static_cast<unsigned>(g_control_fd);
  if (control > first) ::close_range(first, control - 1, 0);
  ::close_range(control + 1 > first ? control + 1 : first, ~0U, 0);
}

// The activation as received: pointers into the message buffer.
struct Activation {
  const ActivationHeader* header = nullptr;
  const char* tmp_options = nullptr;
  const char* targets[kMaxActivationMounts] = {};
  int mount_fds[kMaxActivationMounts] = {};
  int output_fd = -1;
  int passed[kMaxPassedFds] = {};
  const char* const* argv = nullptr;
  const char* const* envp = nullptr;
};

// Points out[0..count) at the next count NUL-terminated strings of [*at, end) and
// terminates the array with nullptr; false if the buffer ends first.
bool take_strings(const char** at, const char* end, size_t count, const char** out) {
  for (size_t i = 0; i < count; ++i) {
    const char* nul = static_cast<const char*>(std::memchr(*at, 0, end - *at));
    if (nul == nullptr) return false;
    out[i] = *at;
    *at = nul + 1;
  }
  out[count] = nullptr;
  return true;
}

// Waits for the activation message. EOF (the pool was dropped) ends the shell quietly.
Activation receive_activation() {
  // One mapping: the message, then room for every pointer it could hold.
  constexpr size_t kPointers = kMaxActivationBytes / 2 + 4;
  const size_t bytes = kMaxActivationBytes + kPointers * sizeof(char*);
  // SAFETY: a private anonymous mapping, only ever read and written within its size.
  void* mem = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) fail(kStageActivation, 0, errno);
  char* buf = static_cast<char*>(mem);
  const char** ptrs = reinterpret_cast<const char**>(buf + kMaxActivationBytes);
  iovec iov{buf, kMaxActivationBytes};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxActivationFds)] = {};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  ssize_t n;
  while ((n = ::recvmsg(g_control_fd, &msg, MSG_CMSG_CLOEXEC)) < 0 && errno == EINTR) {
  }
  if (n == 0) ::_exit(0);
  if (n < 0) fail(kStageActivation, 1, errno);
  Activation a;
  int fds[kMaxActivationFds];
  int fd_count = 0;
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
      fd_count = static_cast<int>((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
      std::memcpy(fds, CMSG_DATA(c), sizeof(int) * fd_count);
    }
  }
  const auto* h = reinterpret_cast<const ActivationHeader*>(buf);
  if ((msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) || static_cast<size_t>(n) < sizeof *h ||
      h->size != n || h->mount_count > kMaxActivationMounts || h->pass_count > kMaxPassedFds ||
      fd_count != static_cast<int>(h->mount_count) + (h->has_output ? 1 : 0) + h->pass_count ||
      h->argc == 0 ||
      h->argc + h->envc + 2 > kPointers) {
    fail(kStageActivation, 2, EINVAL);
  }
  a.header = h;
  const char* at = buf + sizeof *h;
  const char* end = buf + n;
  const char* one[2];
  bool ok = take_strings(&at, end, 1, one);
  a.tmp_options = one[0];
  const char* targets[kMaxActivationMounts + 1];
  ok = ok && take_strings(&at, end, h->mount_count, targets);
  a.argv = ptrs;
  ok = ok && take_strings(&at, end, h->argc, ptrs);
  a.envp = ptrs + h->argc + 1;
  ok = ok && take_strings(&at, end, h->envc, ptrs + h->argc + 1);
  if (!ok) fail(kStageActivation, 3, EINVAL);
  int next = 0;
  if (h->has_output) a.output_fd = fds[next++];
  for (uint32_t i = 0; i < h->mount_count; ++i) {
    a.targets[i] = targets[i];
    a.mount_fds[i] = fds[next++];
  }
  for (uint32_t i = 0; i < h->pass_count; ++i) a.passed[i] = fds[next++];
  return a;
}

// Attaches the detached mounts the parent made of the tenant's directories, then mounts
// a fresh /tmp (unless the parent made it, seeded from a snapshot).
void attach_mounts(const Activation& a) {
  for (uint32_t i = 0; i < a.header->mount_count; ++i) {
    // SAFETY: the fd is a detached mount from the parent; moving it only adds it to our tree.
    if (::syscall(SYS_move_mount, a.mount_fds[i], "", AT_FDCWD, a.targets[i],
                  MOVE_MOUNT_F_EMPTY_PATH) != 0) {
      fail(kStageAttach, static_cast<int32_t>(i), errno);
    }
    ::close(a.mount_fds[i]);
  }
  if (!a.header->tmp_given && ::mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, a.tmp_options) != 0) {
    fail(kStageTmp, 0, errno);
  }
}

}  // namespace

void run_jail_shell(const ShellPlan& p, const ShellFds& fds) {
  g_control_fd = fds.control;
  ::close(fds.parent_control);
  for (int fd : fds.cgroup_procs) {
    if (fd >= 0 && ::write(fd, "0", 1) != 1) fail(kStageCgroup, 0, errno);
  }
  // Nothing of Kiln's stays open: the control socket moves to fd 3 (closed at exec,
  // which tells the parent that exec succeeded); other sandboxes' fds are dropped now.
  if (fds.control != 3 && ::dup3(fds.control, 3, O_CLOEXEC) != 3) fail(kStageStdio, 1, errno);
  g_control_fd = 3;
  ::close_range(4, ~0U, 0);
  reset_signals();
  (void)::sethostname("localhost", 9);
  prefer_oom_kill();
  build_root(p);
  if (p.own_network) bring_up_loopback();

  const Activation a = receive_activation();
  // The pool prepares shells at background priority; the sandbox runs at Kiln's.
  (void)::setpriority(PRIO_PROCESS, 0, p.nice);
  attach_mounts(a);
  int api_fd = p.own_network ? open_runtime_api(a.header->api_port) : -1;
  enter_user_namespace(*a.header);
  tie_to_kiln();
  hand_off(api_fd);
  if (::unshare(CLONE_NEWCGROUP) != 0) fail(kStageNamespaces, 0, errno);
  drop_privileges(p);
  set_stdio(a.output_fd, a.passed, a.header->pass_count);
  set_limits(*a.header);
  if (::chdir("/var/task") != 0) fail(kStageChdir, 0, errno);
  if (int err = apply_landlock(p.landlock_abi); err != 0) fail(kStageLandlock, 0, err);
  if (p.seccomp && ::prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, p.seccomp, 0, 0) != 0) {
    fail(kStageSeccomp, 0, errno);
  }
  ::execve(a.argv[0], const_cast<char* const*>(a.argv), const_cast<char* const*>(a.envp));
  fail(kStageExec, 0, errno);
}

}  // namespace kiln::sandbox
