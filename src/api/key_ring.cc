#include "api/key_ring.h"

#include <mutex>

namespace kiln::api {

void KeyRing::add(const Credential& c) {
  std::unique_lock lock(mu_);
  keys_[c.access_key_id] = c;
}

bool KeyRing::remove(std::string_view access_key_id) {
  std::unique_lock lock(mu_);
  auto it = keys_.find(access_key_id);
  if (it == keys_.end()) return false;
  keys_.erase(it);
  return true;
}

std::optional<Credential> KeyRing::find(std::string_view access_key_id) const {
  std::shared_lock lock(mu_);
  auto it = keys_.find(access_key_id);
  if (it == keys_.end()) return std::nullopt;
  return it->second;
}

}  // namespace kiln::api
