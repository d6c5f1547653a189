// Placement: picks the worker that creates a new sandbox. Spreads load by choosing the
// less loaded of two randomly sampled workers (power of two choices), which decorrelates
// one function's burst from any single host. Single-node mode has one worker.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <random>
#include <vector>

namespace kiln::placement {

// What placement needs to know of a worker.
class WorkerSlot {
 public:
  virtual ~WorkerSlot() = default;
  // Sandboxes currently hosted (or being created).
  virtual uint64_t load() const = 0;
  // False when the worker cannot take more sandboxes.
  virtual bool accepting() const = 0;
};

// Thread-safe. Workers must outlive the placement service.
class PlacementService {
 public:
  explicit PlacementService(std::vector<WorkerSlot*> workers, uint64_t seed = std::random_device{}());
  // The worker for a new sandbox, or nullptr when none accepts.
  WorkerSlot* pick();

 private:
  std::vector<WorkerSlot*> workers_;
  std::mutex mu_;
  std::mt19937_64 rng_;  // guarded by mu_
};

}  // namespace kiln::placement
