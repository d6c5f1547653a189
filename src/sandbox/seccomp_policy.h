// The seccomp-bpf filter of every jailed process, compiled once with libseccomp and
// installed in the sandbox's first process right before exec (raw prctl, no allocation).
#pragma once

#include <linux/filter.h>

#include <vector>

#include "common/status.h"

namespace kiln::sandbox {

// The policy: everything runtimes use is allowed; these fail with EPERM:
//  - kernel and system administration: mount/umount2/pivot_root, the new mount API,
//    kexec_*, *_module, swapon/swapoff, reboot, acct, quotactl*, settimeofday,
//    clock_settime/adjtimex/clock_adjtime, sethostname/setdomainname, chroot, syslog,
//    vhangup, iopl/ioperm, lookup_dcookie, nfsservctl, uselib, sysfs;
//  - attack surface: bpf, perf_event_open, userfaultfd, keyctl/add_key/request_key,
//    io_uring_*, fanotify_init, open_by_handle_at/name_to_handle_at, kcmp;
//  - escaping or inspecting other processes: ptrace, process_vm_readv/writev,
//    pidfd_getfd, unshare, setns, clone with any CLONE_NEW* flag;
//  - raw sockets: socket(*, SOCK_RAW or SOCK_PACKET);
//  - every address family but AF_UNIX, AF_INET and AF_INET6 (an allow list): socket()
//    fails with EAFNOSUPPORT (AF_VSOCK, AF_PACKET, AF_ALG, AF_NETLINK...); socketpair()
//    with anything but AF_UNIX too;
//  - terminal injection: ioctl TIOCSTI, TIOCLINUX.
// clone3 fails with ENOSYS (its flags cannot be inspected), so libc falls back to
// clone. System calls of other ABIs (i386 int 0x80, x32) kill the process.
StatusOr<std::vector<sock_filter>> build_seccomp_filter();

}  // namespace kiln::sandbox
