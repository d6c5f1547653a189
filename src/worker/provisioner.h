// Provisioned concurrency: keeps N sandboxes of a published version (or of an alias's
// version) initialized ahead of demand. They join the assignment service's idle pool
// only once their runtime has initialized, are marked provisioned (the idle reaper
// leaves them alone), report no Init Duration, and are replaced when they die.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "assignment/assignment.h"
#include "common/status.h"
#include "placement/placement.h"
#include "registry/function.h"

namespace kiln::worker {

// A configuration's state, in the terms of Get/ListProvisionedConcurrencyConfig(s).
struct ProvisionedStatus {
  uint64_t requested = 0;
  uint64_t allocated = 0;  // initialized and alive
  uint64_t available = 0;  // allocated (Kiln does not subtract busy ones, nor does Lambda)
  std::string status;      // "IN_PROGRESS", "READY" or "FAILED"
  std::string reason;      // set when FAILED
};

// Create with std::make_shared: callbacks of sandboxes still being created hold a weak
// reference and do nothing once the provisioner is gone.
class Provisioner : public std::enable_shared_from_this<Provisioner> {
 public:
  // Creates one sandbox of `f`; calls `ready` once, with the sandbox after its runtime
  // has initialized, or with the error. `on_dead` is called (any thread, at most once)
  // if the sandbox later dies. The sandbox must not be registered with the assignment
  // service: the provisioner does that.
  using SandboxFactory = std::function<void(const registry::FunctionVersionPtr& f,
                                            std::function<void(const assignment::AssignablePtr&)> on_dead,
                                            std::function<void(StatusOr<assignment::AssignablePtr>)> ready)>;
  // The version (account, function, qualifier) names now: a version, or an alias's
  // primary version.
  using Resolver = std::function<StatusOr<registry::FunctionVersionPtr>(
      const std::string& account, const std::string& function, const std::string& qualifier)>;

  // `assignment` must outlive the provisioner; so must whatever the factory borrows.
  Provisioner(assignment::AssignmentService& assignment, SandboxFactory factory, Resolver resolver);
  ~Provisioner();

  // Sets the number of sandboxes kept for (account, function, qualifier) and starts
  // creating the missing ones (or releases the extra ones). A new put clears FAILED.
  // Fails when the qualifier does not resolve. Thread-safe.
  Status put(const std::string& account, const std::string& function, const std::string& qualifier,
             uint64_t requested);
  // Forgets a configuration; its idle sandboxes are retired now, leased ones become
  // ordinary sandboxes (the reaper takes them). False when there was none.
  bool remove(const std::string& account, const std::string& function, const std::string& qualifier);
  std::optional<ProvisionedStatus> status(const std::string& account, const std::string& function,
                                          const std::string& qualifier) const;
  // Every configuration of a function, by qualifier.
  std::vector<std::pair<std::string, ProvisionedStatus>> list(const std::string& account,
                                                             const std::string& function) const;
  // Drops dead sandboxes, follows aliases to their current version, and creates what
  // is missing. Call periodically (and it runs when a provisioned sandbox dies).
  void reconcile();
  // No more creations; sandboxes that finish initializing afterwards are retired.
  void stop();

 private:
  using Id = std::tuple<std::string, std::string, std::string>;  // account, function, qualifier
  struct Target {
    uint64_t requested = 0;
    registry::FunctionVersionPtr version;
    std::vector<assignment::AssignablePtr> sandboxes;  // initialized, provisioned
    uint64_t pending = 0;                              // being created
    std::string failure;                               // non-empty: FAILED
  };
  using TargetPtr = std::shared_ptr<Target>;
  struct Launch {
    TargetPtr target;
    registry::FunctionVersionPtr version;
  };

  // All *_locked functions require mu_ held; they return work to do after unlocking.
  void top_up_locked(const TargetPtr& t, std::vector<Launch>* launches);
  static void prune_locked(Target& t);
  void launch(std::vector<Launch> launches);
  void release(std::vector<assignment::AssignablePtr> sandboxes);
  void on_ready(const TargetPtr& t, const registry::FunctionVersionPtr& version,
                StatusOr<assignment::AssignablePtr> sandbox);
  void on_dead(const assignment::AssignablePtr& sandbox);
  static ProvisionedStatus status_of(const Target& t);

  assignment::AssignmentService& assignment_;
  SandboxFactory factory_;
  Resolver resolver_;
  mutable std::mutex mu_;
  std::map<Id, TargetPtr> targets_;  // guarded by mu_
  bool stopped_ = false;             // guarded by mu_
};

// The factory for a real worker fleet: Worker::create through placement, then
// Environment::await_init; the environment reports no Init Duration.
// `placement` must outlive the provisioner.
Provisioner::SandboxFactory make_sandbox_factory(placement::PlacementService& placement);

}  // namespace kiln::worker
