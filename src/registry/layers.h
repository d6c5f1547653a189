// Lambda layers: versioned, immutable zip archives a function mounts at /opt. Versions
// are numbered 1, 2, … per (account, layer name) and never reused. Their records are
// durable in SQLite (own connection and table `layer_versions` in the registry's
// database file, WAL + busy_timeout), their content lives in the shared CodeStore, so a
// zip used both as a layer and as function code is stored once.
//
// Deleting a version leaves a tombstone: the version disappears from Get and List, and
// no new function may refer to it, but its record and content stay, so functions that
// already use it keep running (as in Lambda). Content is never removed from the
// CodeStore by this class; a code garbage collector must treat referenced_code() as live.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "common/status.h"
#include "registry/code_store.h"
#include "registry/registry.h"  // LayerContent, what a function needs of a layer

struct sqlite3;

namespace kiln::registry {

struct LayerVersion {
  std::string account_id;
  std::string region;
  std::string name;
  int64_t version = 0;
  std::string description;
  std::string license_info;
  std::vector<std::string> compatible_runtimes;
  std::vector<std::string> compatible_architectures;
  std::string created_date;  // "2026-11-28T04:30:00.000+0000"
  std::string code_hex;      // CodeStore identity
  std::string code_sha256;   // base64, Lambda's CodeSha256
  uint64_t code_size = 0;    // zip bytes
  uint64_t unzipped_size = 0;
  bool deleted = false;      // tombstone: hidden, content kept for existing users

  // arn:aws:lambda:REGION:ACCOUNT:layer:NAME and …:NAME:VERSION
  std::string layer_arn() const;
  std::string version_arn() const;
};

// PublishLayerVersion's body, validated (see parse_publish_request).
struct LayerPublish {
  std::string description;
  std::string license_info;
  std::vector<std::string> compatible_runtimes;
  std::vector<std::string> compatible_architectures;
  std::string zip;  // decoded Content.ZipFile
};

// Filters and paging of ListLayers / ListLayerVersions (query strings as received).
struct LayerListQuery {
  std::string compatible_runtime;       // empty: any
  std::string compatible_architecture;  // empty: any
  std::string marker;                   // a NextMarker from a previous page, or empty
  std::string max_items;                // "1".."50", empty: 50
};

struct LayerPage {
  std::vector<LayerVersion> items;
  std::string next_marker;  // empty on the last page
};

// Validates a PublishLayerVersion request body against the model's constraints
// (ValidationException for lengths, enums, types; InvalidParameterValueException for a
// missing or non-ZipFile content; InvalidRequestContentException for bad base64).
StatusOr<LayerPublish> parse_publish_request(const nlohmann::json& request);

// A LayerName path parameter (a name, or a layer ARN) → the name, for `account` in
// `region`. ValidationException for a malformed one; ResourceNotFoundException when
// the ARN names another account or region.
StatusOr<std::string> parse_layer_name(const std::string& param, const std::string& region,
                                       const std::string& account);

// A VersionNumber path parameter → a version ≥ 1 (ValidationException otherwise).
StatusOr<int64_t> parse_layer_version_number(const std::string& param);

// Checks a list query's filters (enums) and MaxItems (1..50; 50 when absent).
Status validate_list_query(const LayerListQuery& query, int64_t* max_items);

// Thread-safe: every method may be called from any thread. Records are cached in
// memory (loaded at open) and written through to SQLite before a call returns.
class LayerStore {
 public:
  using Clock = std::function<std::chrono::system_clock::time_point()>;

  // Opens (creating if needed) the table in `db_file`. `code` must outlive the store.
  static StatusOr<std::unique_ptr<LayerStore>> open(const std::filesystem::path& db_file, CodeStore& code,
                                                    std::string region, Clock clock = nullptr);
  ~LayerStore();
  LayerStore(const LayerStore&) = delete;
  LayerStore& operator=(const LayerStore&) = delete;

  // PublishLayerVersion: stores the zip in the CodeStore (InvalidParameterValueException
  // for a bad zip or one over the limits) and records version max+1 of the layer.
  StatusOr<LayerVersion> publish(const std::string& account, const std::string& layer_name,
                                 const LayerPublish& request);
  // GetLayerVersion: ResourceNotFoundException when missing or deleted.
  StatusOr<LayerVersion> get(const std::string& account, const std::string& layer_name, int64_t version) const;
  // GetLayerVersionByArn: ValidationException for a malformed ARN; otherwise as get().
  StatusOr<LayerVersion> get_by_arn(const std::string& account, const std::string& layer_version_arn) const;
  // ListLayers: per layer (by name), its newest live version matching the filters.
  StatusOr<LayerPage> list_layers(const std::string& account, const LayerListQuery& query) const;
  // ListLayerVersions: live versions matching the filters, newest first. An unknown
  // layer has no versions (an empty page).
  StatusOr<LayerPage> list_versions(const std::string& account, const std::string& layer_name,
                                    const LayerListQuery& query) const;
  // DeleteLayerVersion: tombstones the version. OK when it is missing or already deleted.
  Status remove(const std::string& account, const std::string& layer_name, int64_t version);

  // For a function's Layers (fits Registry's LayerResolver): the content of a layer
  // version ARN of `account`, with `dir` its extracted tree.
  // ValidationException for a malformed ARN; InvalidParameterValueException ("Layer
  // version ARN does not exist.") when missing, another account's or region's, or
  // deleted — unless `include_deleted` (use it for layers a function already had).
  StatusOr<LayerContent> resolve(const std::string& account, const std::string& layer_version_arn,
                                 bool include_deleted = false) const;

  // Every code_hex a layer version (live or tombstoned) refers to.
  std::vector<std::string> referenced_code() const;

 private:
  using Key = std::tuple<std::string, std::string, int64_t>;  // (account, name, version)
  LayerStore(sqlite3* db, CodeStore& code, std::string region, Clock clock);
  Status load();
  Status persist(const LayerVersion& v);  // requires mu_
  const LayerVersion* find(const std::string& account, const std::string& name, int64_t version) const;
  std::string now() const;

  CodeStore& code_;
  std::string region_;
  Clock clock_;
  mutable std::mutex mu_;
  sqlite3* db_;                        // guarded by mu_
  std::map<Key, LayerVersion> versions_;  // guarded by mu_; tombstones included
};

}  // namespace kiln::registry
