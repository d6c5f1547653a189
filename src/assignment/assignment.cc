#include "assignment/assignment.h"

#include <algorithm>

namespace kiln::assignment {

AssignmentService::AssignmentService(Clock clock) : clock_(std::move(clock)) {}

AssignablePtr AssignmentService::acquire(const std::string& key) {
  std::lock_guard lock(mu_);
  auto it = keys_.find(key);
  if (it == keys_.end()) return nullptr;
  PerKey& k = it->second;
  while (!k.idle.empty()) {
    AssignablePtr s = std::move(k.idle.back().sandbox);
    k.idle.pop_back();
    if (s->reusable()) {
      k.busy++;
      return s;
    }
    s->retire();
  }
  if (!k.warming.empty()) {
    AssignablePtr s = std::move(k.warming.front());  // the oldest is closest to ready
    k.warming.erase(k.warming.begin());
    k.busy++;
    return s;
  }
  return nullptr;
}

void AssignmentService::add_warming(const AssignablePtr& sandbox) {
  std::lock_guard lock(mu_);
  keys_[sandbox->key()].warming.push_back(sandbox);
}

bool AssignmentService::finish_warming(const AssignablePtr& sandbox, bool ok) {
  bool retire = false;
  {
    std::lock_guard lock(mu_);
    auto it = keys_.find(sandbox->key());
    if (it == keys_.end()) return false;
    auto& w = it->second.warming;
    auto pos = std::find(w.begin(), w.end(), sandbox);
    if (pos == w.end()) return false;
    w.erase(pos);
    if (ok && !it->second.retired && sandbox->reusable()) {
      it->second.idle.push_back({sandbox, clock_()});
    } else {
      retire = true;
    }
  }
  if (retire) sandbox->retire();
  return true;
}

void AssignmentService::add_busy(const AssignablePtr& sandbox) {
  std::lock_guard lock(mu_);
  // A sandbox of a retired key (created as its configuration was replaced) stays
  // marked: release() retires it rather than keeping old code warm.
  keys_[sandbox->key()].busy++;
}

void AssignmentService::release(const AssignablePtr& sandbox) {
  bool retire = false;
  {
    std::lock_guard lock(mu_);
    auto it = keys_.find(sandbox->key());
    if (it == keys_.end()) {
      retire = true;
    } else {
      PerKey& k = it->second;
      if (k.busy > 0) k.busy--;
      if (k.retired || !sandbox->reusable()) {
        retire = true;
      } else {
        k.idle.push_back({sandbox, clock_()});
      }
    }
  }
  if (retire) sandbox->retire();
}

void AssignmentService::remove(const AssignablePtr& sandbox) {
  {
    std::lock_guard lock(mu_);
    auto it = keys_.find(sandbox->key());
    if (it != keys_.end()) {
      auto& idle = it->second.idle;
      for (auto i = idle.begin(); i != idle.end(); ++i) {
        if (i->sandbox == sandbox) {
          idle.erase(i);
          break;
        }
      }
      auto& warming = it->second.warming;
      warming.erase(std::remove(warming.begin(), warming.end(), sandbox), warming.end());
    }
  }
  sandbox->retire();
}

bool AssignmentService::retire_if_idle(const AssignablePtr& sandbox) {
  bool found = false;
  {
    std::lock_guard lock(mu_);
    auto it = keys_.find(sandbox->key());
    if (it == keys_.end()) return false;
    auto& idle = it->second.idle;
    for (auto i = idle.begin(); i != idle.end(); ++i) {
      if (i->sandbox == sandbox) {
        idle.erase(i);
        found = true;
        break;
      }
    }
    auto& warming = it->second.warming;
    auto w = std::find(warming.begin(), warming.end(), sandbox);
    if (!found && w != warming.end()) {
      warming.erase(w);
      found = true;
    }
  }
  if (found) sandbox->retire();
  return found;
}

void AssignmentService::retire_key(const std::string& key) {
  std::vector<Idle> doomed;
  {
    std::lock_guard lock(mu_);
    auto it = keys_.try_emplace(key).first;  // a tombstone even if nothing runs it yet
    doomed.swap(it->second.idle);
    for (auto& w : it->second.warming) doomed.push_back({w, {}});
    it->second.warming.clear();
    it->second.retired = true;  // kept as a tombstone: keys are never reused
  }
  for (auto& d : doomed) d.sandbox->retire();
}

size_t AssignmentService::reap_idle(std::chrono::steady_clock::duration max_idle) {
  std::vector<AssignablePtr> doomed;
  {
    std::lock_guard lock(mu_);
    auto now = clock_();
    for (auto it = keys_.begin(); it != keys_.end();) {
      auto& idle = it->second.idle;
      // Oldest first: the list is ordered by release time.
      size_t n = 0;
      while (n < idle.size() && now - idle[n].since >= max_idle) n++;
      std::vector<Idle> kept;  // provisioned sandboxes stay, in their order
      for (size_t i = 0; i < n; ++i) {
        if (idle[i].sandbox->provisioned()) {
          kept.push_back(std::move(idle[i]));
        } else {
          doomed.push_back(std::move(idle[i].sandbox));
        }
      }
      idle.erase(idle.begin(), idle.begin() + static_cast<std::ptrdiff_t>(n));
      idle.insert(idle.begin(), std::make_move_iterator(kept.begin()), std::make_move_iterator(kept.end()));
      if (idle.empty() && it->second.busy == 0 && it->second.warming.empty() && !it->second.retired) {
        it = keys_.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (auto& s : doomed) s->retire();
  return doomed.size();
}

AssignablePtr AssignmentService::reclaim_oldest_idle(const std::string& spare_key) {
  AssignablePtr victim;
  {
    std::lock_guard lock(mu_);
    auto oldest = keys_.end();
    size_t oldest_pos = 0;
    for (auto it = keys_.begin(); it != keys_.end(); ++it) {
      if (it->first == spare_key) continue;
      // Each idle list is ordered by release time: its first unprovisioned is its oldest.
      const auto& idle = it->second.idle;
      size_t pos = 0;
      while (pos < idle.size() && idle[pos].sandbox->provisioned()) pos++;
      if (pos == idle.size()) continue;
      if (oldest == keys_.end() || idle[pos].since < oldest->second.idle[oldest_pos].since) {
        oldest = it;
        oldest_pos = pos;
      }
    }
    if (oldest == keys_.end()) return nullptr;
    auto& idle = oldest->second.idle;
    victim = std::move(idle[oldest_pos].sandbox);
    idle.erase(idle.begin() + static_cast<std::ptrdiff_t>(oldest_pos));
    if (idle.empty() && oldest->second.busy == 0 && oldest->second.warming.empty()) keys_.erase(oldest);
  }
  victim->retire();
  return victim;
}

void AssignmentService::retire_all() {
  std::vector<AssignablePtr> doomed;
  {
    std::lock_guard lock(mu_);
    for (auto& [key, k] : keys_) {
      for (auto& i : k.idle) doomed.push_back(std::move(i.sandbox));
      k.idle.clear();
      for (auto& w : k.warming) doomed.push_back(std::move(w));
      k.warming.clear();
      k.retired = true;
    }
  }
  for (auto& s : doomed) s->retire();
}

AssignmentStats AssignmentService::stats() const {
  std::lock_guard lock(mu_);
  AssignmentStats s;
  for (const auto& [key, k] : keys_) {
    s.idle += k.idle.size();
    s.busy += k.busy;
  }
  return s;
}

}  // namespace kiln::assignment
