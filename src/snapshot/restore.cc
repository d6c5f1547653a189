// The host side of a restore: open_image() and complete_restore() (contract in snapshot.h).
#include <elf.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <map>

#include "snapshot/image_writer.h"
#include "snapshot/ptrace_util.h"
#include "snapshot/snapshot.h"

namespace kiln::snapshot {

StatusOr<RestoreFds> open_image(const std::filesystem::path& dir) {
  RestoreFds fds;
  fds.plan.reset(::open((dir / "plan").c_str(), O_RDONLY | O_CLOEXEC));
  fds.pages.reset(::open((dir / "pages").c_str(), O_RDONLY | O_CLOEXEC));
  if (!fds.plan.valid() || !fds.pages.valid()) return snap_errno("open the image in " + dir.string());
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) return snap_errno("pipe2");
  fds.ready_read.reset(p[0]);
  fds.ready_write.reset(p[1]);
  return fds;
}

namespace {

// Waits for the stub's report: 'R' or 'E' + message.
Status wait_ready(int ready_read, std::chrono::milliseconds timeout) {
  pollfd pfd{ready_read, POLLIN, 0};
  int r;
  do {
    r = ::poll(&pfd, 1, static_cast<int>(timeout.count()));
  } while (r < 0 && errno == EINTR);
  if (r == 0) return snap_error("the restore stub did not report in time");
  char buf[600];
  ssize_t n = ::read(ready_read, buf, sizeof(buf));
  if (n <= 0) return snap_error("the restore stub exited without reporting");
  if (buf[0] == 'R') return Status::Ok();
  if (buf[0] == 'E') return snap_error("restore failed: " + std::string(buf + 1, static_cast<size_t>(n - 1)));
  return snap_error("unexpected report from the restore stub");
}

struct Tracee {
  pid_t host;
  const image::ThreadRec* rec;
};

Status trace_and_set(pid_t stub_pid, const std::vector<unsigned char>& plan, std::string_view replay,
                     std::vector<pid_t>& seized) {
  const auto& h = *reinterpret_cast<const image::PlanHeader*>(plan.data());
  const auto* threads = reinterpret_cast<const image::ThreadRec*>(plan.data() + h.off_threads);
  std::map<pid_t, pid_t> host_of;  // ns tid -> host tid
  for (pid_t tid : list_threads(stub_pid)) host_of[ns_tid(stub_pid, tid)] = tid;
  if (host_of.size() != h.n_threads) return snap_error("the stub has a different number of threads than the image");
  std::vector<Tracee> tracees;
  for (uint32_t i = 0; i < h.n_threads; ++i) {
    auto it = host_of.find(threads[i].tid);
    if (it == host_of.end()) return snap_error("a restored thread has the wrong tid");
    tracees.push_back({it->second, &threads[i]});
  }
  for (const Tracee& t : tracees) {
    if (Status s = seize_and_stop(t.host, PTRACE_O_TRACESYSGOOD | PTRACE_O_EXITKILL); !s.ok()) return s;
    seized.push_back(t.host);
  }
  const auto* vmas = reinterpret_cast<const image::VmaRec*>(plan.data() + h.off_vmas);
  uint64_t insn = 0;
  for (uint32_t i = 0; i < h.n_vmas && !insn; ++i) {
    if (vmas[i].kind != image::kVmaVdso) continue;
    auto a = find_syscall_insn(stub_pid, vmas[i].start, vmas[i].end);
    if (!a.ok()) return a.status();
    insn = *a;
  }
  if (!insn) return snap_error("the image has no vdso to run the final munmap from");
  const Tracee& main = tracees[0];
  image::Regs base;
  if (Status s = get_regs(main.host, &base); !s.ok()) return s;
  auto r = inject_syscall(main.host, base, insn, SYS_munmap, {static_cast<long>(image::kStubBase), static_cast<long>(image::kStubSize)});
  if (!r.ok()) return r.status();
  if (*r != 0) return snap_error("unmapping the stub failed");
  for (const Tracee& t : tracees) {
    iovec iov{const_cast<unsigned char*>(plan.data() + t.rec->xstate_off), t.rec->xstate_len};
    if (::ptrace(PTRACE_SETREGSET, t.host, NT_X86_XSTATE, &iov) != 0) return snap_errno("SETREGSET xstate");
    uint64_t mask = t.rec->sigmask;
    if (::ptrace(PTRACE_SETSIGMASK, t.host, sizeof(mask), &mask) != 0) return snap_errno("SETSIGMASK");
    if (Status s = set_regs(t.host, restartable(t.rec->regs)); !s.ok()) return s;
  }
  if (!replay.empty()) {
    const auto* fds = reinterpret_cast<const image::FdRec*>(plan.data() + h.off_fds);
    int target = -1;
    for (uint32_t i = 0; i < h.n_fds; ++i) {
      if (fds[i].kind == image::kFdApiSocket && fds[i].dup_of < 0 && fds[i].d) target = fds[i].fd;
    }
    if (target < 0) return snap_error("a replay was given but the image has no outstanding Runtime API connection");
    int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, stub_pid, 0));
    int sock = pidfd >= 0 ? static_cast<int>(::syscall(SYS_pidfd_getfd, pidfd, target, 0)) : -1;
    if (pidfd >= 0) ::close(pidfd);
    if (sock < 0) return snap_errno("get the Runtime API connection");
    size_t done = 0;
    while (done < replay.size()) {
      ssize_t w = ::write(sock, replay.data() + done, replay.size() - done);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) break;
      done += static_cast<size_t>(w);
    }
    ::close(sock);
    if (done != replay.size()) return snap_errno("write the replay");
  }
  return Status::Ok();
}

}  // namespace

Status complete_restore(pid_t stub_pid, const std::filesystem::path& dir, std::string_view replay, int ready_read,
                        std::chrono::milliseconds timeout) {
  Status s = wait_ready(ready_read, timeout);
  std::vector<unsigned char> plan;
  if (s.ok()) {
    auto p = read_plan(dir / "plan");
    if (p.ok()) plan = std::move(*p);
    else s = p.status();
  }
  std::vector<pid_t> seized;
  if (s.ok()) s = trace_and_set(stub_pid, plan, replay, seized);
  if (!s.ok()) {
    ::kill(stub_pid, SIGKILL);  // the caller reaps it; EXITKILL covers us dying too
    std::vector<pid_t> others;
    for (pid_t t : seized) {
      if (t != stub_pid) others.push_back(t);
    }
    reap_traced(others);
    return s;
  }
  for (pid_t t : seized) ::ptrace(PTRACE_DETACH, t, 0, 0);
  return Status::Ok();
}

}  // namespace kiln::snapshot
