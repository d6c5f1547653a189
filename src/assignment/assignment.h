// The assignment service: tracks every execution environment (sandbox) per function
// version and hands an idle warm one to an invoke. A sandbox is either busy (leased to
// exactly one invoke) or idle (on its version's idle list). Single-node mode keeps this
// state in memory: sandboxes do not survive a restart, so neither does their state.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

namespace kiln::assignment {

// What the assignment service needs of a sandbox; implemented by the worker.
class Assignable {
 public:
  virtual ~Assignable() = default;
  // Sandboxes with equal keys run the same code and configuration.
  virtual const std::string& key() const = 0;
  // False once it has failed (crashed, timed out, init error): never reuse it.
  virtual bool reusable() const = 0;
  // Tears it down without blocking the caller. Idempotent.
  virtual void retire() = 0;

  // Kept initialized for provisioned concurrency: reap_idle never retires it. Any thread.
  void set_provisioned(bool provisioned) { provisioned_.store(provisioned); }
  bool provisioned() const { return provisioned_.load(); }

 private:
  std::atomic<bool> provisioned_{false};
};
using AssignablePtr = std::shared_ptr<Assignable>;

struct AssignmentStats {
  uint64_t idle = 0;
  uint64_t busy = 0;
};

// Thread-safe. Time is injected so tests control idleness.
class AssignmentService {
 public:
  using Clock = std::function<std::chrono::steady_clock::time_point()>;
  explicit AssignmentService(Clock clock = [] { return std::chrono::steady_clock::now(); });

  // Leases the most recently used idle sandbox for `key` (LIFO keeps caches warm), else
  // one still initializing ahead of demand (add_warming), or returns nullptr: then the
  // caller creates one and registers it with add_busy().
  AssignablePtr acquire(const std::string& key);
  // Registers a sandbox that is initializing ahead of demand; an invoke may lease it
  // before it is ready (the event waits for the runtime).
  void add_warming(const AssignablePtr& sandbox);
  // Its initialization ended: if no invoke leased it meanwhile, it becomes idle (ok) or
  // is retired (failed). Returns false when an invoke had leased it.
  bool finish_warming(const AssignablePtr& sandbox, bool ok);
  // Registers a newly created sandbox as busy (leased by the caller).
  void add_busy(const AssignablePtr& sandbox);
  // Ends a lease: the sandbox goes back to idle, or is retired if it is not reusable or
  // its key has been retired meanwhile.
  void release(const AssignablePtr& sandbox);
  // Forgets a sandbox that died; retires it.
  void remove(const AssignablePtr& sandbox);
  // A key's code or configuration was replaced: idle sandboxes are retired now, busy
  // ones when released.
  void retire_key(const std::string& key);
  // Retires `sandbox` if it is idle (or still warming) and returns true; a leased one is
  // left to its invoke (false).
  bool retire_if_idle(const AssignablePtr& sandbox);
  // Retires sandboxes idle for longer than max_idle, except provisioned ones. Returns how
  // many.
  size_t reap_idle(std::chrono::steady_clock::duration max_idle);
  // Host memory is short: retires the idle sandbox that has been idle longest among all
  // keys except `spare_key` (the key that needs room), and returns it; nullptr when there
  // is none. Busy, warming and provisioned sandboxes are never taken.
  AssignablePtr reclaim_oldest_idle(const std::string& spare_key);
  // Retires everything (shutdown).
  void retire_all();
  AssignmentStats stats() const;

 private:
  struct Idle {
    AssignablePtr sandbox;
    std::chrono::steady_clock::time_point since;
  };
  struct PerKey {
    std::vector<Idle> idle;  // most recently released last
    std::vector<AssignablePtr> warming;
    uint64_t busy = 0;
    bool retired = false;  // the key's configuration was replaced: a tombstone, kept
  };

  Clock clock_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, PerKey> keys_;  // guarded by mu_
};

}  // namespace kiln::assignment
