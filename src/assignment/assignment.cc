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
  PerKey& k = keys_[sandbox->key()];
  k.retired = false;
  k.busy++;
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
        if (k.retired && k.busy == 0 && k.idle.empty()) keys_.erase(it);
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

void AssignmentService::retire_key(const std::string& key) {
  std::vector<Idle> doomed;
  {
    std::lock_guard lock(mu_);
    auto it = keys_.find(key);
    if (it == keys_.end()) return;
    doomed.swap(it->second.idle);
    for (auto& w : it->second.warming) doomed.push_back({w, {}});
    it->second.warming.clear();
    if (it->second.busy == 0) {
      keys_.erase(it);
    } else {
      it->second.retired = true;
    }
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
      for (size_t i = 0; i < n; ++i) doomed.push_back(std::move(idle[i].sandbox));
      idle.erase(idle.begin(), idle.begin() + static_cast<std::ptrdiff_t>(n));
      if (idle.empty() && it->second.busy == 0 && it->second.warming.empty()) {
        it = keys_.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (auto& s : doomed) s->retire();
  return doomed.size();
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
