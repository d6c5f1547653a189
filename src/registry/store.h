// Kiln's embedded durable store: SQLite in WAL mode under the data directory. Holds
// the server's identity (account, secrets), access keys and function records. Every
// write is a committed, synced transaction before it returns.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"

struct sqlite3;

namespace kiln::registry {

struct AccessKey {
  std::string access_key_id;
  std::string secret_access_key;
  std::string account_id;
};

// Thread-safe (one connection, serialized by a mutex).
class Store {
 public:
  static StatusOr<std::unique_ptr<Store>> open(const std::filesystem::path& file);
  ~Store();

  std::optional<std::string> get_meta(const std::string& key);
  Status put_meta(const std::string& key, const std::string& value);

  std::vector<AccessKey> access_keys();
  Status put_access_key(const AccessKey& key);
  // Removes a key; false when there was none.
  StatusOr<bool> delete_access_key(const std::string& access_key_id);

  // Function records, as JSON text, keyed by (account, name, version).
  struct FunctionRow {
    std::string account, name, version, record;
  };
  std::vector<FunctionRow> function_rows();
  std::vector<std::string> function_records();
  // Replaces every record of (account, name) with `rows` ((version, record) pairs) in
  // one transaction; no rows deletes the function.
  Status replace_function(const std::string& account, const std::string& name,
                          const std::vector<std::pair<std::string, std::string>>& rows);
  Status put_function(const std::string& account, const std::string& name,
                      const std::string& version, const std::string& record);
  Status delete_function(const std::string& account, const std::string& name);

  // Reserved concurrency of a function (account, name), as PutFunctionConcurrency set it.
  struct ReservationRow {
    std::string account, name;
    uint64_t reserved = 0;
  };
  std::vector<ReservationRow> reservations();
  Status put_reservation(const std::string& account, const std::string& name, uint64_t reserved);
  Status delete_reservation(const std::string& account, const std::string& name);

  // Provisioned concurrency of a version or alias (account, name, qualifier).
  struct ProvisionedRow {
    std::string account, name, qualifier;
    uint64_t requested = 0;
    std::string last_modified;  // ISO 8601, as Lambda shows LastModified
  };
  std::vector<ProvisionedRow> provisioned_configs();
  Status put_provisioned(const ProvisionedRow& row);
  // An empty qualifier deletes every configuration of the function.
  Status delete_provisioned(const std::string& account, const std::string& name, const std::string& qualifier);

 private:
  explicit Store(sqlite3* db) : db_(db) {}
  Status exec(const char* sql);

  std::mutex mu_;
  sqlite3* db_;  // guarded by mu_
};

}  // namespace kiln::registry
