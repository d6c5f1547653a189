// The registry: function configuration, durable in the Store, served from an in-memory
// cache so that the invoke path never touches disk. Control operations (create, update,
// delete) are serialized; lookups are concurrent and lock-light.
#pragma once

#include <functional>
#include <map>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "common/status.h"
#include "registry/code_store.h"
#include "registry/function.h"
#include "registry/store.h"

namespace kiln::registry {

// A FunctionName parameter (name, partial ARN or ARN, optionally :QUALIFIER), split.
struct FunctionRef {
  std::string name;
  std::string qualifier;  // empty when none was given
};
// Checks the forms Lambda accepts; the ARN's region and account must be ours.
StatusOr<FunctionRef> parse_function_ref(const std::string& param, const std::string& region,
                                         const std::string& account);

struct AccountUsage {
  uint64_t total_code_size = 0;
  uint64_t function_count = 0;
};

class Registry {
 public:
  // `store` and `code` must outlive the registry.
  Registry(Store& store, CodeStore& code, std::string region);

  // Loads every function from the store. Call once, before serving.
  Status load();

  // Control plane: the request JSON as the Lambda API receives it. Thread-safe.
  StatusOr<FunctionVersionPtr> create_function(const std::string& account, const nlohmann::json& request);
  StatusOr<FunctionVersionPtr> update_code(const std::string& account, const std::string& function_name,
                                           const nlohmann::json& request);
  StatusOr<FunctionVersionPtr> update_configuration(const std::string& account,
                                                    const std::string& function_name,
                                                    const nlohmann::json& request);
  Status delete_function(const std::string& account, const std::string& function_name,
                         const std::string& qualifier);

  // Invoke path: the configuration to run for FunctionName (+ Qualifier). Thread-safe.
  StatusOr<FunctionVersionPtr> resolve(const std::string& account, const std::string& function_name,
                                       const std::string& qualifier) const;
  // Functions of an account, ordered by name.
  std::vector<FunctionVersionPtr> list(const std::string& account) const;
  AccountUsage usage(const std::string& account) const;
  const std::string& region() const { return region_; }

  // Called (outside locks) with the snapshot a change replaced or deleted, so that its
  // sandboxes can be retired. Set before serving.
  void on_retired(std::function<void(const FunctionVersionPtr&)> callback) { on_retired_ = std::move(callback); }

 private:
  using Key = std::pair<std::string, std::string>;  // (account, name)
  StatusOr<FunctionVersionPtr> find_latest(const std::string& account, const std::string& name) const;
  Status commit(const FunctionVersionPtr& f);  // store, then cache
  StatusOr<FunctionVersionPtr> replace(const std::string& account, const std::string& function_name,
                                       const nlohmann::json& request, bool code);

  Store& store_;
  CodeStore& code_;
  std::string region_;
  std::mutex write_mu_;  // serializes control operations
  mutable std::shared_mutex mu_;
  std::map<Key, FunctionVersionPtr> functions_;  // guarded by mu_
  std::function<void(const FunctionVersionPtr&)> on_retired_;
};

// Validation of CreateFunction / UpdateFunctionConfiguration fields into `f`.
// `create` = all required fields must be present.
Status apply_configuration(const nlohmann::json& request, bool create, FunctionVersion* f);
// Now, as Lambda's LastModified ("2026-11-28T04:30:00.000+0000").
std::string lambda_timestamp_now();
std::string new_uuid();

}  // namespace kiln::registry
