// Reserved concurrency, durable: PutFunctionConcurrency's settings kept in the Store and
// applied to the Limiter, so that they survive a restart.
#pragma once

#include <cstdint>
#include <mutex>
#include <optional>
#include <string>

#include "common/status.h"
#include "concurrency/limiter.h"
#include "registry/store.h"

namespace kiln::concurrency {

// Thread-safe; changes are serialized so that the store and the limiter agree. `store`
// and `limiter` must outlive it.
class Reservations {
 public:
  Reservations(registry::Store& store, Limiter& limiter) : store_(store), limiter_(limiter) {}

  // Applies every stored reservation to the limiter. Call once, before serving. A
  // stored reservation that no longer fits the account limit (the limit was lowered)
  // is kept in the store, logged and not enforced.
  Status load();

  // Sets a function's reservation: checked by the limiter, then made durable, then
  // applied. On failure nothing changes.
  Status put(const std::string& account, const std::string& function, uint64_t reserved);
  // Removes a function's reservation (no-op when there is none).
  Status remove(const std::string& account, const std::string& function);
  std::optional<uint64_t> get(const std::string& account, const std::string& function) const {
    return limiter_.reserved(account, function);
  }
  const Limiter& limiter() const { return limiter_; }

 private:
  registry::Store& store_;
  Limiter& limiter_;
  std::mutex mu_;  // serializes put/remove
};

}  // namespace kiln::concurrency
