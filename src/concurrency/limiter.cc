#include "concurrency/limiter.h"

#include <algorithm>
#include <mutex>

namespace kiln::concurrency {

namespace {

// Takes one of `limit` slots of `count`; false when all are taken.
bool take(std::atomic<int64_t>& count, int64_t limit) {
  int64_t c = count.load(std::memory_order_relaxed);
  while (c < limit) {
    if (count.compare_exchange_weak(c, c + 1, std::memory_order_acq_rel, std::memory_order_relaxed)) return true;
  }
  return false;
}

}  // namespace

const char* reason_name(Refusal r) {
  switch (r) {
    case Refusal::kReservedLimit:
      return "ReservedFunctionConcurrentInvocationLimitExceeded";
    case Refusal::kAccountLimit:
      return "ConcurrentInvocationLimitExceeded";
    case Refusal::kNone:
      break;
  }
  return "";
}

void Permit::release() {
  if (!counter_) return;
  counter_->fetch_sub(1, std::memory_order_acq_rel);
  counter_ = nullptr;
  owner_.reset();
}

Limiter::Limiter(uint64_t account_limit) : account_limit_(account_limit) {}

Limiter::Account* Limiter::find_account(const std::string& account) const {
  auto it = accounts_.find(account);
  return it == accounts_.end() ? nullptr : it->second.get();
}

Limiter::Account& Limiter::account_locked(const std::string& account) {
  auto& slot = accounts_[account];
  if (!slot) {
    slot = std::make_unique<Account>();
    slot->unreserved_limit.store(static_cast<int64_t>(account_limit_));
  }
  return *slot;
}

Refusal Limiter::try_acquire(const std::string& account, const std::string& function, Permit* permit) {
  Account* a = nullptr;
  {
    std::shared_lock lock(mu_);
    a = find_account(account);
    if (a && !a->reservations.empty()) {
      auto it = a->reservations.find(function);
      if (it != a->reservations.end()) {
        Reservation& r = *it->second;
        if (!take(r.in_flight, r.limit.load(std::memory_order_relaxed))) return Refusal::kReservedLimit;
        permit->counter_ = &r.in_flight;
        permit->owner_ = it->second;
        return Refusal::kNone;
      }
    }
  }
  if (!a) {
    std::unique_lock lock(mu_);
    a = &account_locked(account);
    // A reservation made meanwhile applies from the next invoke on.
  }
  // `a` stays valid: accounts are never removed while the limiter lives.
  if (!take(a->unreserved_in_flight, a->unreserved_limit.load(std::memory_order_relaxed))) {
    return Refusal::kAccountLimit;
  }
  permit->counter_ = &a->unreserved_in_flight;
  permit->owner_.reset();
  return Refusal::kNone;
}

Status Limiter::set_reserved(const std::string& account, const std::string& function, uint64_t n) {
  std::unique_lock lock(mu_);
  Account& a = account_locked(account);
  auto it = a.reservations.find(function);
  uint64_t previous = it == a.reservations.end() ? 0 : static_cast<uint64_t>(it->second->limit.load());
  uint64_t sum = a.reserved_sum - previous + n;
  uint64_t min_unreserved = std::min(kMinUnreserved, account_limit_);
  if (n > account_limit_ || sum > account_limit_ || account_limit_ - sum < min_unreserved) {
    return InvalidParameterValue(
        "Specified ReservedConcurrentExecutions for function decreases account's UnreservedConcurrentExecution "
        "below its minimum value of [" + std::to_string(min_unreserved) + "].");
  }
  if (it == a.reservations.end()) it = a.reservations.emplace(function, std::make_shared<Reservation>()).first;
  it->second->limit.store(static_cast<int64_t>(n));
  a.reserved_sum = sum;
  a.unreserved_limit.store(static_cast<int64_t>(account_limit_ - sum));
  return Status::Ok();
}

void Limiter::clear_reserved(const std::string& account, const std::string& function) {
  std::unique_lock lock(mu_);
  Account* a = find_account(account);
  if (!a) return;
  auto it = a->reservations.find(function);
  if (it == a->reservations.end()) return;
  a->reserved_sum -= static_cast<uint64_t>(it->second->limit.load());
  a->reservations.erase(it);  // running invocations keep the counter alive through their permits
  a->unreserved_limit.store(static_cast<int64_t>(account_limit_ - a->reserved_sum));
}

std::optional<uint64_t> Limiter::reserved(const std::string& account, const std::string& function) const {
  std::shared_lock lock(mu_);
  Account* a = find_account(account);
  if (!a) return std::nullopt;
  auto it = a->reservations.find(function);
  if (it == a->reservations.end()) return std::nullopt;
  return static_cast<uint64_t>(it->second->limit.load());
}

uint64_t Limiter::unreserved_limit(const std::string& account) const {
  std::shared_lock lock(mu_);
  Account* a = find_account(account);
  return a ? account_limit_ - a->reserved_sum : account_limit_;
}

int64_t Limiter::reserved_in_flight(const std::string& account, const std::string& function) const {
  std::shared_lock lock(mu_);
  Account* a = find_account(account);
  if (!a) return 0;
  auto it = a->reservations.find(function);
  return it == a->reservations.end() ? 0 : it->second->in_flight.load();
}

int64_t Limiter::unreserved_in_flight(const std::string& account) const {
  std::shared_lock lock(mu_);
  Account* a = find_account(account);
  return a ? a->unreserved_in_flight.load() : 0;
}

}  // namespace kiln::concurrency
