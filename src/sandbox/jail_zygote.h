// The zygote: a small process forked from Kiln once, when a jail backend starts (Kiln is
// small then), that clones every shell of the backend as a child of Kiln (CLONE_PARENT).
// Shells then copy the zygote's address space rather than Kiln's, whatever Kiln's size
// later (a waiting shell holds no copy-on-write snapshot of Kiln's heap, and the
// runtime's exec has little to unmap), and they never inherit Kiln's later fds.
// The zygote only makes system calls (it is the child of a multithreaded process).
#pragma once

#include <sys/types.h>

#include <memory>
#include <mutex>
#include <vector>

#include "common/status.h"
#include "sandbox/jail_child.h"
#include "sandbox/unique_fd.h"

namespace kiln::sandbox {

// A shell process just cloned, by the zygote or directly.
struct ClonedShell {
  pid_t pid = -1;
  UniqueFd pidfd;    // Kiln is the parent: waitid on it reaps the shell
  UniqueFd control;  // parent end of the shell's control socket
};

// Clones a shell running plan from the calling process: into cgroup_dir_fd (v2,
// CLONE_INTO_CGROUP) when >= 0, else it joins through procs (v1 cgroup.procs files).
// sibling: CLONE_PARENT (the caller's parent becomes the shell's). Thread-safe.
StatusOr<ClonedShell> clone_shell(const ShellPlan& plan, int cgroup_dir_fd,
                                  const std::vector<int>& procs, bool sibling);

class ShellZygote {
 public:
  // Forks the zygote. plan must outlive it (the zygote and its shells read it).
  static StatusOr<std::unique_ptr<ShellZygote>> start(const ShellPlan& plan);
  ~ShellZygote();  // closes the request socket (the zygote exits) and reaps it
  ShellZygote(const ShellZygote&) = delete;
  ShellZygote& operator=(const ShellZygote&) = delete;

  // Has the zygote clone a shell (see clone_shell) at the calling thread's priority (the
  // pool's filler runs in the background). Thread-safe: one request at a time.
  StatusOr<ClonedShell> clone(int cgroup_dir_fd, const std::vector<int>& procs);

 private:
  ShellZygote() = default;
  std::mutex mu_;
  UniqueFd socket_;  // GUARDED_BY(mu_)
  UniqueFd pidfd_;
};

}  // namespace kiln::sandbox
