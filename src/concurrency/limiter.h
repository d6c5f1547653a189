// Concurrency limits as Lambda meters them: each account may run at most `account_limit`
// invocations at once; a function with reserved concurrency runs at most its reservation
// and draws only from it; every other function shares what is left (the unreserved pool).
//
// The limiter only counts. Durability of reservations is the caller's (see
// reservations.h); the invoke path calls try_acquire() and Permit::release().
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <shared_mutex>
#include <string>
#include <unordered_map>

#include "common/status.h"

namespace kiln::concurrency {

// Why an invoke was refused; the names are Lambda's ThrottleReason values.
enum class Refusal {
  kNone,
  kReservedLimit,  // ReservedFunctionConcurrentInvocationLimitExceeded
  kAccountLimit,   // ConcurrentInvocationLimitExceeded
};
const char* reason_name(Refusal r);

// One admitted invocation. Copyable so that it rides in a std::function; release() must
// be called exactly once, by one of the copies, when the invocation ends. A default
// Permit holds nothing and release() is a no-op.
class Permit {
 public:
  Permit() = default;
  void release();

 private:
  friend class Limiter;
  std::atomic<int64_t>* counter_ = nullptr;  // owned by `owner_` or by the limiter
  std::shared_ptr<void> owner_;              // keeps a reservation's counter alive
};

// Thread-safe. try_acquire() is the warm path: a shared lock, two hash lookups and an
// atomic compare-and-swap; reservation changes take the lock exclusively.
class Limiter {
 public:
  // The least unreserved concurrency Lambda leaves every account (capped at the limit).
  static constexpr uint64_t kMinUnreserved = 100;

  explicit Limiter(uint64_t account_limit);

  // Admits one invocation of (account, function) or says why not. On kNone, *permit
  // holds the slot until released.
  Refusal try_acquire(const std::string& account, const std::string& function, Permit* permit);

  // Reserves `n` executions for a function (0 disables it). Fails with Lambda's
  // InvalidParameterValueException when the account's unreserved concurrency would
  // fall below min(kMinUnreserved, account_limit). Invocations already running keep
  // counting against the pool they came from.
  Status set_reserved(const std::string& account, const std::string& function, uint64_t n);
  // Removes a reservation; the function draws from the unreserved pool again.
  void clear_reserved(const std::string& account, const std::string& function);
  std::optional<uint64_t> reserved(const std::string& account, const std::string& function) const;

  uint64_t account_limit() const { return account_limit_; }
  // account_limit minus the account's reservations.
  uint64_t unreserved_limit(const std::string& account) const;
  // Invocations of a function with a reservation running now out of it (0 when none).
  int64_t reserved_in_flight(const std::string& account, const std::string& function) const;
  // Invocations running now out of the account's unreserved pool.
  int64_t unreserved_in_flight(const std::string& account) const;

 private:
  struct Reservation {
    std::atomic<int64_t> limit{0};
    std::atomic<int64_t> in_flight{0};
  };
  struct Account {
    std::atomic<int64_t> unreserved_in_flight{0};
    std::atomic<int64_t> unreserved_limit{0};
    uint64_t reserved_sum = 0;  // guarded by Limiter::mu_ (exclusive)
    std::unordered_map<std::string, std::shared_ptr<Reservation>> reservations;  // guarded by mu_
  };

  Account* find_account(const std::string& account) const;  // requires mu_ (any mode)
  Account& account_locked(const std::string& account);       // requires mu_ exclusive

  const uint64_t account_limit_;
  mutable std::shared_mutex mu_;
  // Accounts are added, never removed: an Account* stays valid while the limiter lives.
  std::unordered_map<std::string, std::unique_ptr<Account>> accounts_;  // guarded by mu_
};

}  // namespace kiln::concurrency
