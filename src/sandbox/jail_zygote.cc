#include "sandbox/jail_zygote.h"

#include <fcntl.h>
#include <linux/close_range.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

namespace kiln::sandbox {
namespace {

constexpr int kMaxRequestFds = ShellFds::kMaxCgroupFiles;

// A request: which kind of cgroup fds follow. A reply: the shell's pid (or -errno),
// with its pidfd and the parent end of its control socket.
struct ZygoteRequest {
  int32_t v2 = 0;    // 1: the one fd is a cgroup directory for CLONE_INTO_CGROUP
  int32_t nice = 0;  // the requesting thread's: the shell prepares itself at it
};
struct ZygoteReply {
  int32_t pid_or_error = 0;
};

// Sends header and fds over a SOCK_SEQPACKET socket; no allocation.
bool send_with_fds(int sock, const void* data, size_t size, const int* fds, int count) {
  iovec iov{const_cast<void*>(data), size};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxRequestFds)] = {};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  if (count > 0) {
    msg.msg_control = control;
    msg.msg_controllen = CMSG_SPACE(sizeof(int) * count);
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * count);
    std::memcpy(CMSG_DATA(c), fds, sizeof(int) * count);
  }
  return ::sendmsg(sock, &msg, MSG_NOSIGNAL) == static_cast<ssize_t>(size);
}

// Receives one message and up to kMaxRequestFds fds; bytes received, 0 at EOF, -1.
ssize_t receive_with_fds(int sock, void* data, size_t size, int* fds, int* count) {
  iovec iov{data, size};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxRequestFds)] = {};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  ssize_t n;
  while ((n = ::recvmsg(sock, &msg, MSG_CMSG_CLOEXEC)) < 0 && errno == EINTR) {
  }
  *count = 0;
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); n > 0 && c; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
      *count = static_cast<int>((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
      std::memcpy(fds, CMSG_DATA(c), sizeof(int) * *count);
    }
  }
  return n;
}

// SAFETY: the zygote's loop; system calls only, on memory prepared before its fork.
[[noreturn]] void run_zygote(const ShellPlan& plan, int sock, int parent_end) {
  ::close(parent_end);
  if (sock != 3 && ::dup3(sock, 3, O_CLOEXEC) != 3) ::_exit(127);
  ::close_range(4, ~0U, 0);  // nothing of Kiln's: shells inherit only what they are sent
  struct sigaction dfl {};  // none of Kiln's signal handlers may run here
  dfl.sa_handler = SIG_DFL;
  for (int sig = 1; sig < NSIG; ++sig) ::sigaction(sig, &dfl, nullptr);
  for (;;) {
    ZygoteRequest req;
    int fds[kMaxRequestFds];
    int count = 0;
    ssize_t n = receive_with_fds(3, &req, sizeof req, fds, &count);
    if (n <= 0) ::_exit(0);  // Kiln closed the socket (or is gone)
    ZygoteReply reply;
    int out[2] = {-1, -1};
    int pidfd = -1, pair[2] = {-1, -1};
    long pid = -EINVAL;
    if (n == sizeof req && ::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) == 0) {
      (void)::setpriority(PRIO_PROCESS, 0, req.nice);  // inherited by the shell
      ShellFds shell;
      shell.control = pair[1];
      shell.parent_control = pair[0];
      for (int i = 0; !req.v2 && i < count; ++i) shell.cgroup_procs[i] = fds[i];
      clone_args args{};
      args.flags = CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_PIDFD |
                   CLONE_PARENT | (plan.own_network ? CLONE_NEWNET : 0);
      args.pidfd = reinterpret_cast<uint64_t>(&pidfd);
      if (req.v2 && count == 1) {
        args.flags |= CLONE_INTO_CGROUP;
        args.cgroup = static_cast<uint64_t>(fds[0]);
      }
      pid = ::syscall(SYS_clone3, &args, sizeof args);
      if (pid == 0) run_jail_shell(plan, shell);
      if (pid < 0) pid = -errno;
    } else {
      pid = -errno;
    }
    reply.pid_or_error = static_cast<int32_t>(pid);
    out[0] = pidfd;
    out[1] = pair[0];
    (void)send_with_fds(3, &reply, sizeof reply, out, pid > 0 ? 2 : 0);
    for (int fd : {pidfd, pair[0], pair[1]}) {
      if (fd >= 0) ::close(fd);
    }
    for (int i = 0; i < count; ++i) ::close(fds[i]);
  }
}

}  // namespace

StatusOr<ClonedShell> clone_shell(const ShellPlan& plan, int cgroup_dir_fd,
                                  const std::vector<int>& procs, bool sibling) {
  if (procs.size() > ShellFds::kMaxCgroupFiles) return ServiceError("jail: too many cgroup hierarchies");
  int pair[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) != 0) {
    return ServiceError(std::string("jail: socketpair: ") + std::strerror(errno));
  }
  ClonedShell shell;
  shell.control.reset(pair[0]);
  UniqueFd child_end(pair[1]);
  ShellFds fds;
  fds.control = child_end.get();
  fds.parent_control = shell.control.get();
  for (size_t i = 0; cgroup_dir_fd < 0 && i < procs.size(); ++i) fds.cgroup_procs[i] = procs[i];
  int pidfd = -1;
  clone_args args{};
  args.flags = CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_PIDFD |
               (sibling ? CLONE_PARENT : 0) | (plan.own_network ? CLONE_NEWNET : 0);
  args.pidfd = reinterpret_cast<uint64_t>(&pidfd);
  args.exit_signal = 0;  // no SIGCHLD: nobody else's waitpid(-1) can reap a sandbox
  if (cgroup_dir_fd >= 0) {
    args.flags |= CLONE_INTO_CGROUP;
    args.cgroup = static_cast<uint64_t>(cgroup_dir_fd);
  }
  // SAFETY: fork-like clone (no CLONE_VM); the child only runs run_jail_shell, which
  // makes system calls on memory prepared before the clone and never returns.
  long pid = ::syscall(SYS_clone3, &args, sizeof args);
  if (pid == 0) run_jail_shell(plan, fds);
  if (pid < 0) return ServiceError(std::string("jail: clone3: ") + std::strerror(errno));
  shell.pid = static_cast<pid_t>(pid);
  shell.pidfd.reset(pidfd);
  return shell;
}

StatusOr<std::unique_ptr<ShellZygote>> ShellZygote::start(const ShellPlan& plan) {
  int pair[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) != 0) {
    return ServiceError(std::string("jail: socketpair: ") + std::strerror(errno));
  }
  std::unique_ptr<ShellZygote> z(new ShellZygote());
  z->socket_.reset(pair[0]);
  UniqueFd child_end(pair[1]);
  int pidfd = -1;
  clone_args args{};
  args.flags = CLONE_PIDFD;
  args.pidfd = reinterpret_cast<uint64_t>(&pidfd);
  args.exit_signal = 0;
  // SAFETY: fork-like clone; the zygote only runs run_zygote (system calls only).
  long pid = ::syscall(SYS_clone3, &args, sizeof args);
  if (pid == 0) run_zygote(plan, child_end.get(), z->socket_.get());
  if (pid < 0) return ServiceError(std::string("jail: clone3 zygote: ") + std::strerror(errno));
  z->pidfd_.reset(pidfd);
  return z;
}

ShellZygote::~ShellZygote() {
  socket_.reset();  // EOF: the zygote exits
  if (pidfd_.valid()) {
    siginfo_t info{};
    while (::waitid(static_cast<idtype_t>(P_PIDFD), pidfd_.get(), &info, WEXITED | __WALL) != 0 &&
           errno == EINTR) {
    }
  }
}

StatusOr<ClonedShell> ShellZygote::clone(int cgroup_dir_fd, const std::vector<int>& procs) {
  ZygoteRequest req;
  req.v2 = cgroup_dir_fd >= 0;
  errno = 0;
  int nice = ::getpriority(PRIO_PROCESS, 0);  // this thread's (Linux)
  req.nice = errno == 0 ? nice : 0;
  std::vector<int> fds = req.v2 ? std::vector<int>{cgroup_dir_fd} : procs;
  if (fds.size() > static_cast<size_t>(kMaxRequestFds)) return ServiceError("jail: too many cgroup hierarchies");
  std::lock_guard<std::mutex> lock(mu_);
  ZygoteReply reply;
  int got[kMaxRequestFds];
  int count = 0;
  if (!send_with_fds(socket_.get(), &req, sizeof req, fds.data(), static_cast<int>(fds.size())) ||
      receive_with_fds(socket_.get(), &reply, sizeof reply, got, &count) != sizeof reply) {
    for (int i = 0; i < count; ++i) ::close(got[i]);
    return ServiceError("jail: the shell zygote is gone");
  }
  if (reply.pid_or_error <= 0 || count != 2) {
    for (int i = 0; i < count; ++i) ::close(got[i]);
    return ServiceError(std::string("jail: zygote clone3: ") + std::strerror(-reply.pid_or_error));
  }
  ClonedShell shell;
  shell.pid = reply.pid_or_error;
  shell.pidfd.reset(got[0]);
  shell.control.reset(got[1]);
  return shell;
}

}  // namespace kiln::sandbox
