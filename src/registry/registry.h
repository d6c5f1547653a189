// The registry: function configuration, durable in the Store, served from an in-memory
// cache so that the invoke path never touches disk. Control operations (create, update,
// delete) are serialized; lookups are concurrent and lock-light.
#pragma once

#include <atomic>
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

// An alias: a name for a version, optionally sending a share of invokes to a second one.
struct Alias {
  std::string name;
  std::string function_version;
  std::string description;
  std::string revision_id;
  std::string additional_version;   // "" when no routing
  double additional_weight = 0.0;   // share of invokes that go to additional_version
};

// Resolves a layer version ARN of an account to its content (set by the layer store).
struct LayerContent {
  std::string arn;
  std::string code_hex;
  uint64_t code_size = 0;
  uint64_t unzipped_size = 0;
  std::filesystem::path dir;
};
using LayerResolver = std::function<StatusOr<LayerContent>(const std::string& account, const std::string& arn)>;

// Initializes a sandbox for a new configuration and reports whether its runtime came
// up (Ok) or failed to initialize (the error). `done` runs once, on any thread.
using Preparer = std::function<void(const FunctionVersionPtr& f, std::function<void(Status)> done)>;

// Takes the snapshot of a newly published version of a SnapStart function (which is in
// State Pending meanwhile) and reports Ok when it is stored, or why it failed (the
// Status type is one of Lambda's StateReasonCode values, e.g. FunctionError.
// RuntimeInitError, else the version fails with InternalError). `done` runs once, on
// any thread; after a restart of Kiln it is called again for a version still Pending.
using Snapshotter = std::function<void(const FunctionVersionPtr& version, std::function<void(Status)> done)>;

// Invoke path: a published version that is not Active cannot run (Pending: its snapshot
// is being taken; Failed: it never will be): ResourceConflictException, as Lambda.
// $LATEST always runs (its serving configuration is chosen by resolve()).
Status check_invocable(const FunctionVersion& f);

class Registry {
 public:
  // `store` and `code` must outlive the registry.
  Registry(Store& store, CodeStore& code, std::string region);

  // Loads every function from the store. Call once, before serving; then
  // resume_preparations() once the preparer and the snapshotter can run (it prepares
  // $LATEST configurations and snapshots versions left Pending by a stop of Kiln).
  Status load();
  void resume_preparations();

  // Control plane: the request JSON as the Lambda API receives it. Thread-safe.
  StatusOr<FunctionVersionPtr> create_function(const std::string& account, const nlohmann::json& request);
  StatusOr<FunctionVersionPtr> update_code(const std::string& account, const std::string& function_name,
                                           const nlohmann::json& request);
  StatusOr<FunctionVersionPtr> update_configuration(const std::string& account,
                                                    const std::string& function_name,
                                                    const nlohmann::json& request);
  Status delete_function(const std::string& account, const std::string& function_name,
                         const std::string& qualifier);
  StatusOr<FunctionVersionPtr> publish_version(const std::string& account, const std::string& function_name,
                                               const nlohmann::json& request);
  // $LATEST and the published versions, in order.
  StatusOr<std::vector<FunctionVersionPtr>> versions(const std::string& account,
                                                     const std::string& function_name) const;

  StatusOr<Alias> create_alias(const std::string& account, const std::string& function_name,
                               const nlohmann::json& request);
  StatusOr<Alias> update_alias(const std::string& account, const std::string& function_name,
                               const std::string& alias, const nlohmann::json& request);
  StatusOr<Alias> get_alias(const std::string& account, const std::string& function_name,
                            const std::string& alias) const;
  Status delete_alias(const std::string& account, const std::string& function_name, const std::string& alias);
  StatusOr<std::vector<Alias>> aliases(const std::string& account, const std::string& function_name) const;
  std::string alias_arn(const std::string& account, const std::string& function, const std::string& alias) const;

  // Tags of the function a full function ARN names.
  StatusOr<std::map<std::string, std::string>> tags(const std::string& account, const std::string& arn) const;
  Status tag(const std::string& account, const std::string& arn, const std::map<std::string, std::string>& add);
  Status untag(const std::string& account, const std::string& arn, const std::vector<std::string>& keys);

  // Configuration lookups (GetFunction*): $LATEST as last updated, a version, or an
  // alias's primary version.
  StatusOr<FunctionVersionPtr> configuration(const std::string& account, const std::string& function_name,
                                             const std::string& qualifier) const;
  // Invoke path: the configuration that runs for FunctionName (+ Qualifier) now —
  // $LATEST is the last configuration that initialized successfully; an alias picks
  // between its versions by weight. Thread-safe, no I/O.
  StatusOr<FunctionVersionPtr> resolve(const std::string& account, const std::string& function_name,
                                       const std::string& qualifier) const;
  // Functions of an account ($LATEST as last updated), ordered by name.
  std::vector<FunctionVersionPtr> list(const std::string& account) const;
  // One page of list(): at most `limit` functions whose names sort after `after` ("" =
  // from the first), and whether more follow. Costs O(log n + limit), so that paging
  // through n functions is O(n log n); a function created or deleted between pages
  // never makes a paginator see another function twice or miss it.
  struct Page {
    std::vector<FunctionVersionPtr> functions;
    bool more = false;
  };
  Page list_page(const std::string& account, const std::string& after, size_t limit) const;
  // Registry entries visited by list() and list_page() so far (tests prove a page's cost).
  uint64_t entries_listed() const { return entries_listed_.load(std::memory_order_relaxed); }
  AccountUsage usage(const std::string& account) const;
  const std::string& region() const { return region_; }

  // Set before serving.
  void on_retired(std::function<void(const FunctionVersionPtr&)> callback) { on_retired_ = std::move(callback); }
  void set_preparer(Preparer preparer) { preparer_ = std::move(preparer); }
  // Without a snapshotter, a SnapStart version is Active as soon as it is published.
  void set_snapshotter(Snapshotter snapshotter) { snapshotter_ = std::move(snapshotter); }
  // Called after the commit for every published version a DeleteFunction removed (one
  // version, or all of them with the function), e.g. to delete its snapshots.
  void on_version_deleted(std::function<void(const FunctionVersionPtr&)> callback) {
    on_version_deleted_ = std::move(callback);
  }
  void set_layer_resolver(LayerResolver resolver) { layer_resolver_ = std::move(resolver); }

 private:
  using Key = std::pair<std::string, std::string>;  // (account, name)
  struct Entry {
    FunctionVersionPtr latest;   // $LATEST as last updated (what Get* shows)
    FunctionVersionPtr serving;  // what $LATEST invokes run; == latest unless an update is pending or failed
    std::map<uint64_t, FunctionVersionPtr> versions;
    std::map<std::string, Alias> aliases;
    uint64_t last_version = 0;
  };

  StatusOr<FunctionVersionPtr> replace(const std::string& account, const std::string& function_name,
                                       const nlohmann::json& request, bool code);
  Status apply_layers(const nlohmann::json& request, FunctionVersion* f) const;
  // Publishes `from` as the entry's next version: Pending when it is to be snapshotted
  // (then call snapshot() once it is committed and write_mu_ released).
  FunctionVersionPtr add_version(Entry& e, const FunctionVersionPtr& from, const std::string& description) const;
  static bool awaits_snapshot(const FunctionVersionPtr& v) { return v && v->version != "$LATEST" && v->state == "Pending"; }
  void snapshot(const FunctionVersionPtr& v);
  void snapshotted(const FunctionVersionPtr& v, const Status& result);
  // Requires write_mu_. Writes the entry's records, then publishes it to readers.
  Status commit(const Key& key, Entry entry);
  void prepare(const FunctionVersionPtr& f);
  void prepared(const FunctionVersionPtr& f, const Status& result);
  StatusOr<FunctionVersionPtr> qualified(const Entry& e, const std::string& account, const std::string& name,
                                         const std::string& qualifier, bool for_invoke) const;
  StatusOr<Entry> find(const std::string& account, const std::string& name) const;
  StatusOr<std::pair<Key, Entry>> find_by_param(const std::string& account, const std::string& function_name) const;
  void retire(const FunctionVersionPtr& f) const;

  Store& store_;
  CodeStore& code_;
  std::string region_;
  std::mutex write_mu_;  // serializes control operations
  mutable std::shared_mutex mu_;
  std::map<Key, Entry> functions_;  // guarded by mu_
  mutable std::atomic<uint64_t> entries_listed_{0};
  std::function<void(const FunctionVersionPtr&)> on_retired_;
  Preparer preparer_;
  Snapshotter snapshotter_;
  std::function<void(const FunctionVersionPtr&)> on_version_deleted_;
  LayerResolver layer_resolver_;
};

// Validation of CreateFunction / UpdateFunctionConfiguration fields into `f`.
// `create` = all required fields must be present.
Status apply_configuration(const nlohmann::json& request, bool create, FunctionVersion* f);
// Lambda's limit of 50 tags per function: InvalidParameterValueException beyond it
// (CreateFunction and TagResource answer the same).
inline constexpr size_t kMaxTagsPerFunction = 50;
Status check_tag_count(size_t count);
// PreconditionFailedException when the request carries a RevisionId other than `current`.
Status check_revision(const nlohmann::json& request, const std::string& current);
// Now, as Lambda's LastModified ("2026-11-28T04:30:00.000+0000").
std::string lambda_timestamp_now();
std::string new_uuid();

}  // namespace kiln::registry
