#include "sandbox/seccomp_policy.h"

#include <sched.h>
#include <seccomp.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>

namespace kiln::sandbox {
namespace {

constexpr const char* kRefused[] = {
    // mounts and the root
    "mount", "umount", "umount2", "pivot_root", "chroot", "open_tree", "move_mount", "fsopen",
    "fsconfig", "fsmount", "fspick", "mount_setattr",
    // the kernel and the machine
    "kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module",
    "create_module", "get_kernel_syms", "query_module", "swapon", "swapoff", "reboot", "acct",
    "quotactl", "quotactl_fd", "settimeofday", "clock_settime", "clock_adjtime", "adjtimex",
    "sethostname", "setdomainname", "syslog", "vhangup", "iopl", "ioperm", "lookup_dcookie",
    "nfsservctl", "uselib", "sysfs", "_sysctl", "vm86", "vm86old",
    // attack surface
    "bpf", "perf_event_open", "userfaultfd", "keyctl", "add_key", "request_key",
    "io_uring_setup", "io_uring_enter", "io_uring_register", "fanotify_init",
    "open_by_handle_at", "name_to_handle_at", "kcmp",
    // other processes and namespaces
    "ptrace", "process_vm_readv", "process_vm_writev", "pidfd_getfd", "unshare", "setns",
};

constexpr uint64_t kNamespaceFlags = CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER |
                                     CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWCGROUP | CLONE_NEWTIME;

struct CtxFree {
  void operator()(scmp_filter_ctx c) const { seccomp_release(c); }
};

Status fail(const std::string& what, int rc) {
  return ServiceError("seccomp: " + what + ": " + std::strerror(-rc));
}

// Address families are an allow list: a runtime needs AF_UNIX, AF_INET and AF_INET6.
// Everything else fails with EAFNOSUPPORT, as on a kernel built without it: AF_VSOCK
// (VM-wide ports, not namespaced), AF_PACKET, AF_ALG, AF_NETLINK (glibc's getaddrinfo
// and getifaddrs fall back without it; python3.11 and node 20 start and connect
// without it), and any family added to the kernel later. The domain is an int, but the
// filter compares all 64 bits: a value with high bits set is >= 17 and refused too.
// socketpair: AF_UNIX only (the only family that implements it for runtimes).
Status refuse_address_families(scmp_filter_ctx c) {
  const uint32_t refuse = SCMP_ACT_ERRNO(EAFNOSUPPORT);
  constexpr uint64_t kFirstAbove = AF_INET6 + 1;  // refused from here up (>= 11)
  static_assert(AF_UNIX == 1 && AF_INET == 2 && AF_INET6 == 10);
  int rc;
  for (uint64_t family = 0; family < kFirstAbove; ++family) {
    if (family == AF_UNIX || family == AF_INET || family == AF_INET6) continue;
    if ((rc = seccomp_rule_add(c, refuse, SCMP_SYS(socket), 1, SCMP_A0(SCMP_CMP_EQ, family))) < 0) {
      return fail("socket family rule", rc);
    }
  }
  if ((rc = seccomp_rule_add(c, refuse, SCMP_SYS(socket), 1, SCMP_A0(SCMP_CMP_GE, kFirstAbove))) < 0 ||
      (rc = seccomp_rule_add(c, refuse, SCMP_SYS(socketpair), 1, SCMP_A0(SCMP_CMP_NE, AF_UNIX))) < 0) {
    return fail("socket family rule", rc);
  }
  return Status::Ok();
}

}  // namespace

StatusOr<std::vector<sock_filter>> build_seccomp_filter() {
  std::unique_ptr<void, CtxFree> ctx(seccomp_init(SCMP_ACT_ALLOW));
  if (!ctx) return ServiceError("seccomp: seccomp_init failed");
  scmp_filter_ctx c = ctx.get();
  const uint32_t eperm = SCMP_ACT_ERRNO(EPERM);
  int rc;
  for (const char* name : kRefused) {
    int nr = seccomp_syscall_resolve_name(name);
    if (nr == __NR_SCMP_ERROR) continue;  // not a syscall on this architecture
    if ((rc = seccomp_rule_add(c, eperm, nr, 0)) < 0) return fail(name, rc);
  }
  struct ArgRule {
    int nr;
    scmp_arg_cmp cmp;
    uint32_t action;
  };
  const ArgRule rules[] = {
      {SCMP_SYS(socket), SCMP_A1(SCMP_CMP_MASKED_EQ, 0xf, SOCK_RAW), eperm},
      {SCMP_SYS(socket), SCMP_A1(SCMP_CMP_MASKED_EQ, 0xf, SOCK_PACKET), eperm},
      {SCMP_SYS(ioctl), SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffff, TIOCSTI), eperm},
      {SCMP_SYS(ioctl), SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffff, TIOCLINUX), eperm},
  };
  for (const ArgRule& r : rules) {
    if ((rc = seccomp_rule_add(c, r.action, r.nr, 1, r.cmp)) < 0) return fail("argument rule", rc);
  }
  if (Status s = refuse_address_families(c); !s.ok()) return s;
  // clone with any namespace flag: one rule per flag (a masked test per bit).
  for (uint64_t bit = 1; bit != 0; bit <<= 1) {
    if (!(kNamespaceFlags & bit)) continue;
    rc = seccomp_rule_add(c, eperm, SCMP_SYS(clone), 1, SCMP_A0(SCMP_CMP_MASKED_EQ, bit, bit));
    if (rc < 0) return fail("clone rule", rc);
  }
  if ((rc = seccomp_rule_add(c, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0)) < 0) {
    return fail("clone3", rc);
  }

  // Export the program through a memfd; the child installs it with one prctl.
  int fd = ::memfd_create("kiln-seccomp", MFD_CLOEXEC);
  if (fd < 0) return ServiceError("seccomp: memfd_create failed");
  if ((rc = seccomp_export_bpf(c, fd)) < 0) {
    ::close(fd);
    return fail("export", rc);
  }
  off_t size = ::lseek(fd, 0, SEEK_END);
  std::vector<sock_filter> prog(size / sizeof(sock_filter));
  ssize_t got = ::pread(fd, prog.data(), prog.size() * sizeof(sock_filter), 0);
  ::close(fd);
  if (size <= 0 || got != static_cast<ssize_t>(size)) return ServiceError("seccomp: short export");
  return prog;
}

}  // namespace kiln::sandbox
