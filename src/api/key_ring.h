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
  std::optional<Credential> find(std::string_view access_key_id) const override;

 private:
  mutable std::shared_mutex mu_;
  std::map<std::string, Credential, std::less<>> keys_;  // guarded by mu_
};

}  // namespace kiln::api
