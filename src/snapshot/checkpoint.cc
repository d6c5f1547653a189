// checkpoint_process(): freeze, collect threads and process state, dump memory and fds,
// write the image, kill the process (see snapshot.h for the contract).
#include <elf.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <iterator>
#include <sstream>

#include "snapshot/checkpoint_parts.h"
#include "snapshot/ptrace_util.h"

namespace kiln::snapshot {
namespace {

struct Frozen {
  pid_t tid;
  image::Regs regs;
};

// Seizes every thread, re-scanning /proc/PID/task until no new thread appears.
Status freeze(pid_t pid, std::vector<Frozen>& frozen) {
  for (int round = 0; round < 100; ++round) {
    bool added = false;
    for (pid_t tid : list_threads(pid)) {
      if (std::any_of(frozen.begin(), frozen.end(), [&](const Frozen& f) { return f.tid == tid; })) continue;
      if (Status s = seize_and_stop(tid, PTRACE_O_TRACESYSGOOD); !s.ok()) return s;
      frozen.push_back({tid, {}});
      if (Status s = get_regs(tid, &frozen.back().regs); !s.ok()) return s;
      added = true;
    }
    if (!added) return Status::Ok();
  }
  return snap_error("threads keep appearing; cannot freeze the process");
}

void thaw(const std::vector<Frozen>& frozen) {
  for (const Frozen& f : frozen) {
    set_regs(f.tid, restartable(f.regs));
    ::ptrace(PTRACE_DETACH, f.tid, 0, 0);
  }
}

uint64_t status_hex(const std::string& status, const char* name) {
  size_t p = status.find(name);
  if (p == std::string::npos) return 0;
  return std::stoull(status.substr(p + std::strlen(name)), nullptr, 16);
}

Status check_tree(pid_t pid, const std::vector<Frozen>& frozen) {
  if (ns_tid(pid, pid) != 1) return snap_error("the process is not pid 1 of its own pid namespace");
  for (const Frozen& f : frozen) {
    std::string children = read_text("/proc/" + std::to_string(pid) + "/task/" + std::to_string(f.tid) + "/children");
    if (children.find_first_not_of(" \n") != std::string::npos) {
      return snap_error("the sandbox has more than one process (children: " + children + ")");
    }
    std::string st = read_text("/proc/" + std::to_string(pid) + "/task/" + std::to_string(f.tid) + "/status");
    if (status_hex(st, "SigPnd:") || status_hex(st, "ShdPnd:")) return snap_error("a signal is pending");
  }
  if (read_text("/proc/" + std::to_string(pid) + "/timers").size() > 0) return snap_error("POSIX timers are not supported");
  return Status::Ok();
}

struct Injector {
  pid_t tid;
  image::Regs base;
  uint64_t insn;
  uint64_t scratch;  // below the red zone of the thread's stack

  StatusOr<long> call(long nr, std::initializer_list<long> args) { return inject_syscall(tid, base, insn, nr, args); }
  Status read(uint64_t addr, void* out, size_t n) {
    iovec local{out, n}, remote{reinterpret_cast<void*>(addr), n};
    if (::process_vm_readv(tid, &local, 1, &remote, 1, 0) != static_cast<ssize_t>(n)) return snap_errno("read scratch");
    return Status::Ok();
  }
};

Status dump_thread(pid_t pid, const Frozen& f, uint64_t insn, image::ThreadRec& t, std::vector<unsigned char>& xstate) {
  t.tid = ns_tid(pid, f.tid);
  t.regs = f.regs;
  std::vector<unsigned char> xs(16384);
  iovec iov{xs.data(), xs.size()};
  if (::ptrace(PTRACE_GETREGSET, f.tid, NT_X86_XSTATE, &iov) != 0) return snap_errno("GETREGSET xstate");
  xs.resize(iov.iov_len);
  xstate = std::move(xs);
  if (::ptrace(PTRACE_GETSIGMASK, f.tid, sizeof(uint64_t), &t.sigmask) != 0) return snap_errno("GETSIGMASK");
  struct {
    uint64_t rseq_abi_pointer;
    uint32_t rseq_abi_size, signature, flags, pad;
  } rc{};
  constexpr int kGetRseqConfiguration = 0x420f;  // PTRACE_GET_RSEQ_CONFIGURATION
  if (::ptrace(static_cast<__ptrace_request>(kGetRseqConfiguration), f.tid, sizeof(rc), &rc) > 0) {
    t.rseq_ptr = rc.rseq_abi_pointer;
    t.rseq_size = rc.rseq_abi_size;
    t.rseq_sig = rc.signature;
    t.rseq_flags = rc.flags;
  }
  long head = 0;
  size_t len = 0;
  if (::syscall(SYS_get_robust_list, f.tid, &head, &len) == 0) {
    t.robust_head = static_cast<uint64_t>(head);
    t.robust_len = len;
  }
  std::string comm = read_text("/proc/" + std::to_string(pid) + "/task/" + std::to_string(f.tid) + "/comm");
  if (!comm.empty() && comm.back() == '\n') comm.pop_back();
  std::strncpy(t.comm, comm.c_str(), sizeof(t.comm) - 1);
  Injector in{f.tid, f.regs, insn, ((f.regs.rsp - 128 - 256) & ~15ULL)};
  auto r = in.call(SYS_prctl, {long{PR_GET_TID_ADDRESS}, static_cast<long>(in.scratch), 0L, 0L, 0L});
  if (!r.ok()) return r.status();
  if (*r == 0) {
    if (Status s = in.read(in.scratch, &t.tid_address, 8); !s.ok()) return s;
  }
  r = in.call(SYS_sigaltstack, {0L, static_cast<long>(in.scratch)});
  if (!r.ok()) return r.status();
  if (*r == 0) {
    stack_t ss{};
    if (Status s = in.read(in.scratch, &ss, sizeof(ss)); !s.ok()) return s;
    if (!(ss.ss_flags & SS_DISABLE)) {
      t.ss_sp = reinterpret_cast<uint64_t>(ss.ss_sp);
      t.ss_size = ss.ss_size;
      t.ss_flags = ss.ss_flags;
    }
  }
  return Status::Ok();
}

Status dump_process(pid_t pid, const Frozen& main, uint64_t insn, PlanBuilder& plan) {
  Injector in{main.tid, main.regs, insn, ((main.regs.rsp - 128 - 256) & ~15ULL)};
  const std::string status = read_text("/proc/" + std::to_string(pid) + "/status");
  const uint64_t handled = status_hex(status, "SigCgt:") | status_hex(status, "SigIgn:");
  for (int sig = 1; sig <= 64; ++sig) {
    if (!(handled & (1ULL << (sig - 1))) || sig == SIGKILL || sig == SIGSTOP) continue;
    auto r = in.call(SYS_rt_sigaction, {long{sig}, 0L, static_cast<long>(in.scratch), 8L});
    if (!r.ok()) return r.status();
    if (*r != 0) return snap_error("rt_sigaction in the process failed");
    uint64_t ksa[4];
    if (Status s = in.read(in.scratch, ksa, sizeof(ksa)); !s.ok()) return s;
    plan.sigactions.push_back({static_cast<image::u32>(sig), 0, ksa[0], ksa[1], ksa[2], ksa[3]});
  }
  auto brk = in.call(SYS_brk, {0L});
  if (!brk.ok()) return brk.status();
  image::PlanHeader& h = plan.header;
  h.brk = static_cast<uint64_t>(*brk);
  std::istringstream stat(read_text("/proc/" + std::to_string(pid) + "/stat"));
  std::string s = stat.str();
  std::istringstream rest(s.substr(s.rfind(')') + 2));
  std::vector<std::string> f((std::istream_iterator<std::string>(rest)), std::istream_iterator<std::string>());
  // fields from 3 (state) on: index = field number - 3
  auto fld = [&](int n) { return std::stoull(f.at(static_cast<size_t>(n - 3))); };
  h.start_code = fld(26);
  h.end_code = fld(27);
  h.start_stack = fld(28);
  h.start_data = fld(45);
  h.end_data = fld(46);
  h.start_brk = fld(47);
  h.arg_start = fld(48);
  h.arg_end = fld(49);
  h.env_start = fld(50);
  h.env_end = fld(51);
  std::string auxv = read_text("/proc/" + std::to_string(pid) + "/auxv");
  size_t words = std::min<size_t>(auxv.size() / 8, image::kMaxAuxvWords) & ~size_t{1};
  std::memcpy(h.auxv, auxv.data(), words * 8);
  h.auxv_words = static_cast<image::u32>(words);
  size_t um = status.find("Umask:");
  h.umask = um == std::string::npos ? 022 : static_cast<image::u32>(std::stoul(status.substr(um + 6), nullptr, 8));
  h.personality = static_cast<image::u32>(std::stoul(read_text("/proc/" + std::to_string(pid) + "/personality"), nullptr, 16));
  return Status::Ok();
}

Status dump(pid_t pid, const CheckpointOptions& options, const std::filesystem::path& dir, std::vector<Frozen>& frozen) {
  if (Status s = check_tree(pid, frozen); !s.ok()) return s;
  auto view = read_proc_view(pid);
  if (!view.ok()) return view.status();
  PlanBuilder plan;
  if (view->cwd.empty()) return snap_error("cannot read the process's cwd");
  plan.header.cwd = plan.add_string(view->cwd);
  plan.header.api_port = options.runtime_api_port;
  uint64_t insn = 0;
  for (const Vma& v : view->vmas) {
    if (v.path == "[vdso]") {
      auto a = find_syscall_insn(pid, v.start, v.end);
      if (!a.ok()) return a.status();
      insn = *a;
    }
  }
  if (!insn) return snap_error("the process has no [vdso]");
  std::sort(frozen.begin(), frozen.end(), [&](const Frozen& a, const Frozen& b) { return a.tid < b.tid; });
  auto main_it = std::find_if(frozen.begin(), frozen.end(), [&](const Frozen& f) { return f.tid == pid; });
  if (main_it == frozen.end()) return snap_error("the main thread is gone");
  for (const Frozen& f : frozen) {
    image::ThreadRec t{};
    std::vector<unsigned char> xs;
    if (Status s = dump_thread(pid, f, insn, t, xs); !s.ok()) return s;
    plan.threads.push_back(t);
    plan.xstates.push_back(std::move(xs));
  }
  // Threads in ascending namespace tid order (the restore creates them in that order).
  std::vector<size_t> order(plan.threads.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return plan.threads[a].tid < plan.threads[b].tid; });
  PlanBuilder sorted_threads;
  for (size_t i : order) {
    sorted_threads.threads.push_back(plan.threads[i]);
    sorted_threads.xstates.push_back(plan.xstates[i]);
  }
  plan.threads = std::move(sorted_threads.threads);
  plan.xstates = std::move(sorted_threads.xstates);
  if (Status s = dump_process(pid, *main_it, insn, plan); !s.ok()) return s;
  if (Status s = dump_fds(pid, *view, options, plan); !s.ok()) return s;
  if (Status s = dump_memory(pid, *view, plan, dir / "pages"); !s.ok()) return s;
  return write_file_0600(dir / "plan", plan.serialize());
}

}  // namespace

Status checkpoint_process(pid_t pid, const CheckpointOptions& options, const std::filesystem::path& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec || ::chmod(dir.c_str(), 0700) != 0) return snap_error("cannot create " + dir.string());
  std::vector<Frozen> frozen;
  Status s = freeze(pid, frozen);
  if (s.ok()) s = dump(pid, options, dir, frozen);
  if (!s.ok()) {
    thaw(frozen);
    std::filesystem::remove(dir / "plan", ec);
    std::filesystem::remove(dir / "pages", ec);
    return s;
  }
  // Killed while traced: collect the traced threads' exits so none stays attached to us.
  ::kill(pid, SIGKILL);
  std::vector<pid_t> tids;
  for (const Frozen& f : frozen) tids.push_back(f.tid);
  reap_traced(tids);
  return Status::Ok();
}

}  // namespace kiln::snapshot
