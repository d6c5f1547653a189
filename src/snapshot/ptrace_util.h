// ptrace helpers shared by the checkpoint and the restore: seize/interrupt/wait, register
// access and syscall injection through a `syscall` instruction of the [vdso].
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"
#include "snapshot/image_format.h"

namespace kiln::snapshot {

Status snap_error(const std::string& what);      // ServiceError("snapshot: ...")
Status snap_errno(const std::string& what);      // ... with strerror(errno)

// Seizes `tid` with `options` and interrupts it; waits for the interrupt stop.
Status seize_and_stop(pid_t tid, long options);
// Waits for the next stop of a traced thread; returns the wait status.
StatusOr<int> wait_stop(pid_t tid);

Status get_regs(pid_t tid, image::Regs* regs);
Status set_regs(pid_t tid, const image::Regs& regs);

// What a thread's saved registers become so that resuming it from ANY stop re-executes
// an interrupted syscall the way the kernel would (-ERESTART*: rax = nr, rip -= 2), or
// returns -EINTR for -ERESTART_RESTARTBLOCK (its restart_block cannot be saved).
image::Regs restartable(const image::Regs& saved);

// Runs one syscall in a stopped thread: rip -> syscall_insn, args in registers; stops at
// its exit and returns rax. The thread's registers are NOT put back (the caller does).
StatusOr<long> inject_syscall(pid_t tid, const image::Regs& base, uint64_t syscall_insn, long nr,
                              std::initializer_list<long> args);

// Address of a `syscall` instruction (0f 05) in the [vdso] at [start, end) of `pid`.
StatusOr<uint64_t> find_syscall_insn(pid_t pid, uint64_t start, uint64_t end);

// After SIGKILL of traced threads: collects each one's exit as tracer (polling, so that
// a pid-1 thread waiting in zap_pid_ns_processes for its traced siblings cannot deadlock
// us). Bounded by `limit`.
void reap_traced(std::vector<pid_t> tids, std::chrono::milliseconds limit = std::chrono::seconds(10));

// Threads of `pid` (host tids), sorted.
std::vector<pid_t> list_threads(pid_t pid);
// The innermost pid-namespace id of host thread `tid` of `pid` (NSpid), or -1.
pid_t ns_tid(pid_t pid, pid_t tid);

}  // namespace kiln::snapshot
