// Shells: the first processes of future jails, started ahead of demand so that create()
// does not wait for clone, the v1 cgroup migration and the root's pivot. A shell holds
// nothing of any tenant until it is activated (jail_child.h), and is used for one sandbox
// only. The pool keeps `target` shells waiting and refills in the background.
#pragma once

#include <sys/types.h>

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/status.h"
#include "sandbox/cgroup.h"
#include "sandbox/jail_child.h"
#include "sandbox/jail_zygote.h"
#include "sandbox/unique_fd.h"

namespace kiln::sandbox {

// One shell. Kills and reaps its process when destroyed, unless release()d.
class Shell {
 public:
  Shell() = default;
  Shell(Shell&&) = default;
  Shell& operator=(Shell&&) = default;
  ~Shell() { discard(); }

  pid_t pid() const { return pid_; }
  // The shell's mount namespace, held so that its exit does not tear the namespace down
  // (an RCU grace period); a NamespaceReaper releases it later.
  UniqueFd release_mount_ns() { return std::move(mount_ns_); }
  int control() const { return control_.get(); }  // parent end of the control socket
  SandboxCgroup& cgroup() { return cgroup_; }
  // Hands the process (pidfd) and cgroup over to a sandbox; the shell is empty after.
  UniqueFd release_process() { return std::move(pidfd_); }
  // Kills the process (and everything in its pid namespace) and removes the cgroup.
  void discard();

 private:
  friend StatusOr<Shell> start_shell(const ShellPlan&, const CgroupLayout&, const std::string&,
                                     ShellZygote*);
  pid_t pid_ = -1;
  UniqueFd pidfd_;
  UniqueFd control_;
  UniqueFd mount_ns_;
  SandboxCgroup cgroup_;
};

// Releases sandboxes' mount namespaces off the caller's thread: the last reference to a
// mount namespace unmounts its tree and waits for an RCU grace period (milliseconds), so
// a few threads (at background priority) release them concurrently and share grace
// periods. Thread-safe; the destructor releases everything queued before returning.
class NamespaceReaper {
 public:
  explicit NamespaceReaper(int threads = 4);
  ~NamespaceReaper();
  NamespaceReaper(const NamespaceReaper&) = delete;
  NamespaceReaper& operator=(const NamespaceReaper&) = delete;

  void release(UniqueFd ns);

 private:
  void run();
  std::mutex mu_;
  std::condition_variable queued_;
  std::deque<UniqueFd> queue_;  // GUARDED_BY(mu_)
  bool stopping_ = false;       // GUARDED_BY(mu_)
  std::vector<std::thread> threads_;
};

// Creates the cgroup <prefix>/<cgroup_name> (no limits yet) and clones a shell running
// plan into it, through zygote when given (falling back to a clone from Kiln if the
// zygote is gone). plan must outlive the shell's activation. Thread-safe.
StatusOr<Shell> start_shell(const ShellPlan& plan, const CgroupLayout& layout,
                            const std::string& cgroup_name, ShellZygote* zygote);

// SAFETY: pidfd refers to our unreaped child; waitid on it cannot reap anything else.
void kill_and_reap(int pidfd);

// Keeps up to `target` shells started by `start`, refilled by one background thread at
// background priority (nice kBackgroundNice, inherited by the shells it starts until
// their activation), so that refilling yields the CPU to create() on a busy host.
// take() is thread-safe; the destructor stops the thread and discards waiting shells.
constexpr int kBackgroundNice = 10;

class ShellPool {
 public:
  ShellPool(size_t target, std::function<StatusOr<Shell>()> start);
  ~ShellPool();
  ShellPool(const ShellPool&) = delete;
  ShellPool& operator=(const ShellPool&) = delete;

  // A started shell, oldest first; nullopt when the pool is empty (start one inline).
  std::optional<Shell> take();
  // Blocks until the pool holds `target` shells (or the filler is failing). For tests
  // and benchmarks that need a steady state.
  void wait_full();

 private:
  void fill();

  const size_t target_;
  const std::function<StatusOr<Shell>()> start_;
  std::mutex mu_;
  std::condition_variable changed_;
  std::deque<Shell> shells_;  // GUARDED_BY(mu_)
  bool stopping_ = false;     // GUARDED_BY(mu_)
  bool failing_ = false;      // GUARDED_BY(mu_): the last start failed
  std::thread filler_;
};

}  // namespace kiln::sandbox
