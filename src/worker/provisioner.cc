#include "worker/provisioner.h"

#include <algorithm>

#include "worker/worker.h"

namespace kiln::worker {

Provisioner::Provisioner(assignment::AssignmentService& assignment, SandboxFactory factory, Resolver resolver)
    : assignment_(assignment), factory_(std::move(factory)), resolver_(std::move(resolver)) {}

Provisioner::~Provisioner() = default;

Status Provisioner::put(const std::string& account, const std::string& function, const std::string& qualifier,
                        uint64_t requested) {
  auto version = resolver_(account, function, qualifier);
  if (!version.ok()) return version.status();
  std::vector<Launch> launches;
  std::vector<assignment::AssignablePtr> extra;
  {
    std::lock_guard lock(mu_);
    TargetPtr& t = targets_[{account, function, qualifier}];
    if (!t) t = std::make_shared<Target>();
    if (t->version && t->version->sandbox_key() != (*version)->sandbox_key()) {
      extra.swap(t->sandboxes);
    }
    t->version = *version;
    t->requested = requested;
    t->failure.clear();
    prune_locked(*t);
    while (t->sandboxes.size() > requested) {
      extra.push_back(std::move(t->sandboxes.back()));
      t->sandboxes.pop_back();
    }
    top_up_locked(t, &launches);
  }
  release(std::move(extra));
  launch(std::move(launches));
  return Status::Ok();
}

bool Provisioner::remove(const std::string& account, const std::string& function, const std::string& qualifier) {
  std::vector<assignment::AssignablePtr> doomed;
  {
    std::lock_guard lock(mu_);
    auto it = targets_.find({account, function, qualifier});
    if (it == targets_.end()) return false;
    doomed.swap(it->second->sandboxes);
    it->second->requested = 0;  // sandboxes still being created are retired when ready
    targets_.erase(it);
  }
  release(std::move(doomed));
  return true;
}

std::optional<ProvisionedStatus> Provisioner::status(const std::string& account, const std::string& function,
                                                     const std::string& qualifier) const {
  std::lock_guard lock(mu_);
  auto it = targets_.find({account, function, qualifier});
  if (it == targets_.end()) return std::nullopt;
  return status_of(*it->second);
}

std::vector<std::pair<std::string, ProvisionedStatus>> Provisioner::list(const std::string& account,
                                                                        const std::string& function) const {
  std::lock_guard lock(mu_);
  std::vector<std::pair<std::string, ProvisionedStatus>> out;
  for (auto it = targets_.lower_bound({account, function, ""});
       it != targets_.end() && std::get<0>(it->first) == account && std::get<1>(it->first) == function; ++it) {
    out.emplace_back(std::get<2>(it->first), status_of(*it->second));
  }
  return out;
}

void Provisioner::reconcile() {
  std::vector<std::pair<Id, TargetPtr>> targets;
  {
    std::lock_guard lock(mu_);
    if (stopped_) return;
    targets.assign(targets_.begin(), targets_.end());
  }
  std::vector<Launch> launches;
  std::vector<assignment::AssignablePtr> stale;
  for (auto& [id, t] : targets) {
    // Resolved outside the lock: an alias may point elsewhere now, a version may be gone.
    auto version = resolver_(std::get<0>(id), std::get<1>(id), std::get<2>(id));
    std::lock_guard lock(mu_);
    auto it = targets_.find(id);
    if (it == targets_.end() || it->second != t) continue;  // removed or replaced meanwhile
    if (!version.ok()) {
      stale.insert(stale.end(), t->sandboxes.begin(), t->sandboxes.end());
      t->sandboxes.clear();
      t->failure = "FUNCTION_NOT_FOUND: " + version.status().message();
      continue;
    }
    if ((*version)->sandbox_key() != t->version->sandbox_key()) {
      stale.insert(stale.end(), t->sandboxes.begin(), t->sandboxes.end());
      t->sandboxes.clear();
      t->version = *version;
      t->failure.clear();
    }
    prune_locked(*t);
    top_up_locked(t, &launches);
  }
  release(std::move(stale));
  launch(std::move(launches));
}

void Provisioner::stop() {
  std::lock_guard lock(mu_);
  stopped_ = true;
}

void Provisioner::prune_locked(Target& t) {
  std::erase_if(t.sandboxes, [](const assignment::AssignablePtr& s) { return !s->reusable(); });
}

void Provisioner::top_up_locked(const TargetPtr& t, std::vector<Launch>* launches) {
  if (stopped_ || !t->failure.empty()) return;
  while (t->sandboxes.size() + t->pending < t->requested) {
    t->pending++;
    launches->push_back({t, t->version});
  }
}

void Provisioner::launch(std::vector<Launch> launches) {
  std::weak_ptr<Provisioner> self = weak_from_this();
  for (auto& l : launches) {
    factory_(
        l.version,
        [self](const assignment::AssignablePtr& s) {
          if (auto p = self.lock()) p->on_dead(s);
        },
        [self, t = l.target, v = l.version](StatusOr<assignment::AssignablePtr> s) {
          auto p = self.lock();
          if (p) return p->on_ready(t, v, std::move(s));
          if (s.ok()) (*s)->retire();
        });
  }
}

void Provisioner::on_ready(const TargetPtr& t, const registry::FunctionVersionPtr& version,
                           StatusOr<assignment::AssignablePtr> sandbox) {
  bool keep = false;
  {
    std::lock_guard lock(mu_);
    if (t->pending > 0) t->pending--;
    bool current = !stopped_ && t->version == version && t->sandboxes.size() < t->requested;
    if (!sandbox.ok()) {
      if (current) t->failure = "FUNCTION_ERROR_INIT_FAILURE: " + sandbox.status().type() + ": " +
                                sandbox.status().message();
      return;
    }
    if (current && (*sandbox)->reusable()) {
      (*sandbox)->set_provisioned(true);
      t->sandboxes.push_back(*sandbox);
      keep = true;
    }
  }
  if (!keep) return (*sandbox)->retire();
  // Leasable only now that it has initialized: READY never counts a cold sandbox.
  assignment_.add_warming(*sandbox);
  assignment_.finish_warming(*sandbox, true);
}

void Provisioner::on_dead(const assignment::AssignablePtr& sandbox) {
  assignment_.remove(sandbox);
  if (sandbox->provisioned()) reconcile();
}

void Provisioner::release(std::vector<assignment::AssignablePtr> sandboxes) {
  for (auto& s : sandboxes) {
    s->set_provisioned(false);
    assignment_.retire_if_idle(s);
  }
}

ProvisionedStatus Provisioner::status_of(const Target& t) {
  ProvisionedStatus s;
  s.requested = t.requested;
  for (const auto& sb : t.sandboxes) s.allocated += sb->reusable() ? 1 : 0;
  s.available = s.allocated;
  if (!t.failure.empty()) {
    s.status = "FAILED";
    s.reason = t.failure;
  } else {
    s.status = s.allocated >= t.requested ? "READY" : "IN_PROGRESS";
  }
  return s;
}

Provisioner::SandboxFactory make_sandbox_factory(placement::PlacementService& placement) {
  return [&placement](const registry::FunctionVersionPtr& f,
                      std::function<void(const assignment::AssignablePtr&)> on_dead,
                      std::function<void(StatusOr<assignment::AssignablePtr>)> ready) {
    auto* w = dynamic_cast<Worker*>(placement.pick());
    if (!w) return ready(Status{400, "InsufficientCapacity", "No worker has room for a new execution environment."});
    w->create(
        f, [on_dead](const std::shared_ptr<Environment>& e) { on_dead(e); },
        [ready](StatusOr<std::shared_ptr<Environment>> env) {
          if (!env.ok()) return ready(env.status());
          auto e = *env;
          e->set_init_not_reported();
          e->await_init([e, ready](Status s) {
            if (!s.ok()) {
              e->retire();
              return ready(s);
            }
            ready(assignment::AssignablePtr(e));
          });
        });
  };
}

}  // namespace kiln::worker
