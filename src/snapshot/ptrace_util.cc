#include "snapshot/ptrace_util.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/ptrace.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <thread>
#include <sstream>

#include "common/unique_fd.h"

namespace kiln::snapshot {

static_assert(sizeof(image::Regs) == sizeof(user_regs_struct));

Status snap_error(const std::string& what) { return ServiceError("snapshot: " + what); }
Status snap_errno(const std::string& what) { return snap_error(what + ": " + std::strerror(errno)); }

StatusOr<int> wait_stop(pid_t tid) {
  int st = 0;
  for (;;) {
    pid_t r = ::waitpid(tid, &st, __WALL);
    if (r == tid) break;
    if (r < 0 && errno == EINTR) continue;
    return snap_errno("waitpid " + std::to_string(tid));
  }
  if (!WIFSTOPPED(st)) return snap_error("thread " + std::to_string(tid) + " exited while traced");
  return st;
}

Status seize_and_stop(pid_t tid, long options) {
  if (::ptrace(PTRACE_SEIZE, tid, 0, options) != 0) return snap_errno("PTRACE_SEIZE " + std::to_string(tid));
  if (::ptrace(PTRACE_INTERRUPT, tid, 0, 0) != 0) return snap_errno("PTRACE_INTERRUPT");
  auto st = wait_stop(tid);
  if (!st.ok()) return st.status();
  if ((*st >> 16) != PTRACE_EVENT_STOP) {
    return snap_error("thread " + std::to_string(tid) + " stopped by signal " + std::to_string(WSTOPSIG(*st)) +
                      " instead of the interrupt (a signal was pending)");
  }
  return Status::Ok();
}

Status get_regs(pid_t tid, image::Regs* regs) {
  if (::ptrace(PTRACE_GETREGS, tid, 0, regs) != 0) return snap_errno("PTRACE_GETREGS");
  return Status::Ok();
}

Status set_regs(pid_t tid, const image::Regs& regs) {
  if (::ptrace(PTRACE_SETREGS, tid, 0, &regs) != 0) return snap_errno("PTRACE_SETREGS");
  return Status::Ok();
}

image::Regs restartable(const image::Regs& saved) {
  constexpr long kErestartsys = 512, kErestartnointr = 513, kErestartnohand = 514, kErestartRestartblock = 516;
  image::Regs r = saved;
  const long rax = static_cast<long>(saved.rax);
  if (static_cast<long>(saved.orig_rax) >= 0) {
    if (rax == -kErestartsys || rax == -kErestartnointr || rax == -kErestartnohand) {
      r.rax = saved.orig_rax;
      r.rip -= 2;
    } else if (rax == -kErestartRestartblock) {
      r.rax = static_cast<uint64_t>(-EINTR);
    }
  }
  r.orig_rax = static_cast<uint64_t>(-1);
  return r;
}

StatusOr<long> inject_syscall(pid_t tid, const image::Regs& base, uint64_t syscall_insn, long nr,
                              std::initializer_list<long> args) {
  image::Regs r = base;
  r.rip = syscall_insn;
  r.rax = static_cast<uint64_t>(nr);
  r.orig_rax = static_cast<uint64_t>(-1);
  image::u64* slots[] = {&r.rdi, &r.rsi, &r.rdx, &r.r10, &r.r8, &r.r9};
  size_t i = 0;
  for (long a : args) *slots[i++] = static_cast<uint64_t>(a);
  if (Status s = set_regs(tid, r); !s.ok()) return s;
  for (int phase = 0; phase < 2; ++phase) {  // syscall entry, then exit
    if (::ptrace(PTRACE_SYSCALL, tid, 0, 0) != 0) return snap_errno("PTRACE_SYSCALL");
    auto st = wait_stop(tid);
    if (!st.ok()) return st.status();
    if (WSTOPSIG(*st) != (SIGTRAP | 0x80)) {
      return snap_error("a signal (" + std::to_string(WSTOPSIG(*st)) + ") arrived during an injected syscall");
    }
  }
  image::Regs out;
  if (Status s = get_regs(tid, &out); !s.ok()) return s;
  return static_cast<long>(out.rax);
}

StatusOr<uint64_t> find_syscall_insn(pid_t pid, uint64_t start, uint64_t end) {
  UniqueFd mem(::open(("/proc/" + std::to_string(pid) + "/mem").c_str(), O_RDONLY | O_CLOEXEC));
  if (!mem.valid()) return snap_errno("open /proc/PID/mem");
  std::vector<unsigned char> buf(end - start);
  if (::pread(mem.get(), buf.data(), buf.size(), static_cast<off_t>(start)) != static_cast<ssize_t>(buf.size())) {
    return snap_errno("read the vdso");
  }
  for (size_t i = 0; i + 1 < buf.size(); ++i) {
    if (buf[i] == 0x0f && buf[i + 1] == 0x05) return start + i;
  }
  return snap_error("no syscall instruction in the vdso");
}

void reap_traced(std::vector<pid_t> tids, std::chrono::milliseconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!tids.empty() && std::chrono::steady_clock::now() < deadline) {
    for (size_t i = 0; i < tids.size();) {
      int st = 0;
      pid_t r = ::waitpid(tids[i], &st, __WALL | WNOHANG);
      if ((r == tids[i] && (WIFEXITED(st) || WIFSIGNALED(st))) || (r < 0 && errno == ECHILD)) {
        tids.erase(tids.begin() + static_cast<long>(i));
      } else {
        ++i;
      }
    }
    if (!tids.empty()) ::usleep(500);
  }
}

std::vector<pid_t> list_threads(pid_t pid) {
  std::vector<pid_t> out;
  DIR* d = ::opendir(("/proc/" + std::to_string(pid) + "/task").c_str());
  if (!d) return out;
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] >= '0' && e->d_name[0] <= '9') out.push_back(std::atoi(e->d_name));
  }
  ::closedir(d);
  std::sort(out.begin(), out.end());
  return out;
}

pid_t ns_tid(pid_t pid, pid_t tid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/task/" + std::to_string(tid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("NSpid:", 0) == 0) {
      std::istringstream ss(line.substr(6));
      pid_t v = -1, last = -1;
      while (ss >> v) last = v;
      return last;
    }
  }
  return -1;
}

}  // namespace kiln::snapshot
