#include "sandbox/jail_shell.h"

#include <fcntl.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

#include "common/log.h"

namespace kiln::sandbox {

void kill_and_reap(int pidfd) {
  ::syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, nullptr, 0);
  siginfo_t info{};
  // SAFETY: the pidfd may be O_NONBLOCK (its open file is shared with an event loop's
  // dup, and Asio sets O_NONBLOCK), so waitid can answer EAGAIN before the killed
  // process is gone: wait for the pidfd to become readable (exited), then reap.
  while (::waitid(static_cast<idtype_t>(P_PIDFD), pidfd, &info, WEXITED | __WALL) != 0) {
    if (errno == EINTR) continue;
    if (errno != EAGAIN) break;
    pollfd p{pidfd, POLLIN, 0};
    ::poll(&p, 1, 1000);
  }
}

void Shell::discard() {
  if (pidfd_.valid()) kill_and_reap(pidfd_.get());
  pidfd_.reset();
  control_.reset();
  if (Status s = cgroup_.remove(); !s.ok()) log::warn("jail shell: " + s.message());
}

StatusOr<Shell> start_shell(const ShellPlan& plan, const CgroupLayout& layout,
                            const std::string& cgroup_name, ShellZygote* zygote) {
  Shell shell;
  auto cgroup = layout.create_unlimited(cgroup_name);
  if (!cgroup.ok()) return cgroup.status();
  shell.cgroup_ = std::move(*cgroup);
  std::vector<int> procs;  // v1: the shell joins its cgroup itself
  for (const UniqueFd& f : shell.cgroup_.procs_files()) procs.push_back(f.get());
  const int dir = shell.cgroup_.clone_into_fd();
  StatusOr<ClonedShell> cloned = ServiceError("jail: no zygote");
  if (zygote) {
    cloned = zygote->clone(dir, procs);
    if (!cloned.ok()) log::warn(cloned.status().message() + "; cloning shells from Kiln");
  }
  if (!cloned.ok()) cloned = clone_shell(plan, dir, procs, /*sibling=*/false);
  if (!cloned.ok()) return cloned.status();
  shell.pid_ = cloned->pid;
  shell.pidfd_ = std::move(cloned->pidfd);
  shell.control_ = std::move(cloned->control);
  // SAFETY: the shell is our unreaped child, so its /proc entry cannot be another's.
  const std::string ns = "/proc/" + std::to_string(shell.pid_) + "/ns/mnt";
  shell.mount_ns_.reset(::open(ns.c_str(), O_RDONLY | O_CLOEXEC));
  if (!shell.mount_ns_.valid()) {
    return ServiceError("jail: open " + ns + ": " + std::strerror(errno));
  }
  return shell;
}

NamespaceReaper::NamespaceReaper(int threads) {
  for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { run(); });
}

NamespaceReaper::~NamespaceReaper() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  queued_.notify_all();
  for (std::thread& t : threads_) t.join();
}

void NamespaceReaper::release(UniqueFd ns) {
  if (!ns.valid()) return;
  {
    std::lock_guard<std::mutex> lock(mu_);
    queue_.push_back(std::move(ns));
  }
  queued_.notify_one();
}

// Lowers the calling thread's priority (Linux: per thread); no privilege needed.
void run_in_background() { (void)::setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), kBackgroundNice); }

void NamespaceReaper::run() {
  run_in_background();
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    queued_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
    if (queue_.empty()) return;  // stopping, and everything released
    UniqueFd ns = std::move(queue_.front());
    queue_.pop_front();
    lock.unlock();
    ns.reset();  // the namespace's last reference: unmounts its tree
    lock.lock();
  }
}

ShellPool::ShellPool(size_t target, std::function<StatusOr<Shell>()> start)
    : target_(target), start_(std::move(start)) {
  if (target_ > 0) filler_ = std::thread([this] { fill(); });
}

ShellPool::~ShellPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  changed_.notify_all();
  if (filler_.joinable()) filler_.join();
  shells_.clear();  // each shell kills its process and removes its cgroup
}

std::optional<Shell> ShellPool::take() {
  std::optional<Shell> shell;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (shells_.empty()) return std::nullopt;
    shell.emplace(std::move(shells_.front()));
    shells_.pop_front();
  }
  changed_.notify_all();
  return shell;
}

void ShellPool::wait_full() {
  std::unique_lock<std::mutex> lock(mu_);
  changed_.wait(lock, [&] { return stopping_ || failing_ || shells_.size() >= target_; });
}

void ShellPool::fill() {
  run_in_background();
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    if (shells_.size() >= target_) {
      changed_.wait(lock);
      continue;
    }
    lock.unlock();
    StatusOr<Shell> shell = start_();
    lock.lock();
    failing_ = !shell.ok();
    if (shell.ok()) {
      shells_.push_back(std::move(*shell));
    } else {
      log::warn("jail shell pool: " + shell.status().message());
    }
    changed_.notify_all();
    // A failing start (e.g. out of pids) is retried a second later, not in a loop.
    if (failing_) changed_.wait_for(lock, std::chrono::seconds(1), [&] { return stopping_; });
  }
}

}  // namespace kiln::sandbox
