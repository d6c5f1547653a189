// The access keys Kiln accepts, loaded from the store and kept in memory.
#pragma once

#include <map>
#include <shared_mutex>

#include "api/sigv4.h"
#include "registry/store.h"

namespace kiln::api {

class KeyRing : public CredentialLookup {
 public:
  void add(const Credential& c);
  // Forgets a key: requests signed with it fail from now on. False if it was unknown.
  bool remove(std::string_view access_key_id);
  std::optional<Credential> find(std::string_view access_key_id) const override;

 private:
  mutable std::shared_mutex mu_;
  std::map<std::string, Credential, std::less<>> keys_;  // guarded by mu_
};

}  // namespace kiln::api
