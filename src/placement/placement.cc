#include "placement/placement.h"

namespace kiln::placement {

PlacementService::PlacementService(std::vector<WorkerSlot*> workers, uint64_t seed)
    : workers_(std::move(workers)), rng_(seed) {}

WorkerSlot* PlacementService::pick() {
  std::vector<WorkerSlot*> open;
  for (auto* w : workers_) {
    if (w->accepting()) open.push_back(w);
  }
  if (open.empty()) return nullptr;
  if (open.size() == 1) return open[0];
  size_t a, b;
  {
    std::lock_guard lock(mu_);
    std::uniform_int_distribution<size_t> d(0, open.size() - 1);
    a = d(rng_);
    b = d(rng_);
  }
  return open[a]->load() <= open[b]->load() ? open[a] : open[b];
}

}  // namespace kiln::placement
