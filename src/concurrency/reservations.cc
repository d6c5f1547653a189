#include "concurrency/reservations.h"

#include "common/log.h"

namespace kiln::concurrency {

Status Reservations::load() {
  std::lock_guard lock(mu_);
  for (const auto& row : store_.reservations()) {
    Status s = limiter_.set_reserved(row.account, row.name, row.reserved);
    if (!s.ok()) {
      log::warn("reserved concurrency of " + row.name + " (" + std::to_string(row.reserved) +
                ") does not fit the account limit; not enforced: " + s.message());
    }
  }
  return Status::Ok();
}

Status Reservations::put(const std::string& account, const std::string& function, uint64_t reserved) {
  std::lock_guard lock(mu_);
  std::optional<uint64_t> previous = limiter_.reserved(account, function);
  if (Status s = limiter_.set_reserved(account, function, reserved); !s.ok()) return s;
  if (Status s = store_.put_reservation(account, function, reserved); !s.ok()) {
    if (previous) {
      limiter_.set_reserved(account, function, *previous);
    } else {
      limiter_.clear_reserved(account, function);
    }
    return s;
  }
  return Status::Ok();
}

Status Reservations::remove(const std::string& account, const std::string& function) {
  std::lock_guard lock(mu_);
  if (Status s = store_.delete_reservation(account, function); !s.ok()) return s;
  limiter_.clear_reserved(account, function);
  return Status::Ok();
}

}  // namespace kiln::concurrency
