#include "registry/store.h"

#include <sqlite3.h>

namespace kiln::registry {

namespace {

Status sqlite_error(sqlite3* db, const std::string& what) {
  return ServiceError("store: " + what + ": " + (db ? sqlite3_errmsg(db) : "cannot open"));
}

// Owns a prepared statement for one call.
class Statement {
 public:
  Statement(sqlite3* db, const char* sql) { sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr); }
  ~Statement() { sqlite3_finalize(stmt_); }
  bool ok() const { return stmt_ != nullptr; }
  Statement& bind(int i, const std::string& v) {
    sqlite3_bind_text(stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    return *this;
  }
  int step() { return sqlite3_step(stmt_); }
  std::string text(int col) const {
    auto p = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, col));
    return p ? std::string(p, sqlite3_column_bytes(stmt_, col)) : std::string();
  }

 private:
  sqlite3_stmt* stmt_ = nullptr;
};

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS access_keys (
  access_key_id TEXT PRIMARY KEY, secret TEXT NOT NULL, account_id TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS functions (
  account_id TEXT NOT NULL, name TEXT NOT NULL, version TEXT NOT NULL, record TEXT NOT NULL,
  PRIMARY KEY (account_id, name, version));
CREATE TABLE IF NOT EXISTS reserved_concurrency (
  account_id TEXT NOT NULL, name TEXT NOT NULL, reserved INTEGER NOT NULL, PRIMARY KEY (account_id, name));
CREATE TABLE IF NOT EXISTS provisioned_concurrency (
  account_id TEXT NOT NULL, name TEXT NOT NULL, qualifier TEXT NOT NULL, requested INTEGER NOT NULL,
  last_modified TEXT NOT NULL, PRIMARY KEY (account_id, name, qualifier));
)sql";

}  // namespace

StatusOr<std::unique_ptr<Store>> Store::open(const std::filesystem::path& file) {
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(file.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                      nullptr) != SQLITE_OK) {
    Status s = sqlite_error(db, "open " + file.string());
    sqlite3_close(db);
    return s;
  }
  std::unique_ptr<Store> store(new Store(db));
  sqlite3_busy_timeout(db, 5000);
  for (const char* sql : {"PRAGMA journal_mode=WAL;", "PRAGMA synchronous=FULL;", kSchema}) {
    if (Status s = store->exec(sql); !s.ok()) return s;
  }
  return store;
}

Store::~Store() { sqlite3_close(db_); }

Status Store::exec(const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string m = err ? err : "unknown";
    sqlite3_free(err);
    return ServiceError("store: " + m);
  }
  return Status::Ok();
}

std::optional<std::string> Store::get_meta(const std::string& key) {
  std::lock_guard lock(mu_);
  Statement st(db_, "SELECT value FROM meta WHERE key = ?");
  st.bind(1, key);
  if (st.step() == SQLITE_ROW) return st.text(0);
  return std::nullopt;
}

Status Store::put_meta(const std::string& key, const std::string& value) {
  std::lock_guard lock(mu_);
  Statement st(db_, "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)");
  st.bind(1, key).bind(2, value);
  return st.step() == SQLITE_DONE ? Status::Ok() : sqlite_error(db_, "put_meta");
}

std::vector<AccessKey> Store::access_keys() {
  std::lock_guard lock(mu_);
  std::vector<AccessKey> out;
  Statement st(db_, "SELECT access_key_id, secret, account_id FROM access_keys");
  while (st.step() == SQLITE_ROW) out.push_back({st.text(0), st.text(1), st.text(2)});
  return out;
}

Status Store::put_access_key(const AccessKey& key) {
  std::lock_guard lock(mu_);
  Statement st(db_, "INSERT OR REPLACE INTO access_keys (access_key_id, secret, account_id) VALUES (?, ?, ?)");
  st.bind(1, key.access_key_id).bind(2, key.secret_access_key).bind(3, key.account_id);
  return st.step() == SQLITE_DONE ? Status::Ok() : sqlite_error(db_, "put_access_key");
}

StatusOr<bool> Store::delete_access_key(const std::string& access_key_id) {
  std::lock_guard lock(mu_);
  Statement st(db_, "DELETE FROM access_keys WHERE access_key_id = ?");
  st.bind(1, access_key_id);
  if (st.step() != SQLITE_DONE) return sqlite_error(db_, "delete_access_key");
  return sqlite3_changes(db_) > 0;
}

std::vector<std::string> Store::function_records() {
  std::lock_guard lock(mu_);
  std::vector<std::string> out;
  Statement st(db_, "SELECT record FROM functions ORDER BY account_id, name, version");
  while (st.step() == SQLITE_ROW) out.push_back(st.text(0));
  return out;
}

std::vector<Store::FunctionRow> Store::function_rows() {
  std::lock_guard lock(mu_);
  std::vector<FunctionRow> out;
  Statement st(db_, "SELECT account_id, name, version, record FROM functions ORDER BY account_id, name, version");
  while (st.step() == SQLITE_ROW) out.push_back({st.text(0), st.text(1), st.text(2), st.text(3)});
  return out;
}

Status Store::replace_function(const std::string& account, const std::string& name,
                               const std::vector<std::pair<std::string, std::string>>& rows) {
  std::lock_guard lock(mu_);
  if (Status s = exec("BEGIN IMMEDIATE"); !s.ok()) return s;
  bool ok = true;
  {
    Statement del(db_, "DELETE FROM functions WHERE account_id = ? AND name = ?");
    del.bind(1, account).bind(2, name);
    ok = del.step() == SQLITE_DONE;
  }
  for (const auto& [version, record] : rows) {
    if (!ok) break;
    Statement put(db_, "INSERT INTO functions (account_id, name, version, record) VALUES (?, ?, ?, ?)");
    put.bind(1, account).bind(2, name).bind(3, version).bind(4, record);
    ok = put.step() == SQLITE_DONE;
  }
  if (!ok) {
    Status err = sqlite_error(db_, "replace_function");
    exec("ROLLBACK");
    return err;
  }
  return exec("COMMIT");
}

Status Store::put_function(const std::string& account, const std::string& name,
                           const std::string& version, const std::string& record) {
  std::lock_guard lock(mu_);
  Statement st(db_, "INSERT OR REPLACE INTO functions (account_id, name, version, record) VALUES (?, ?, ?, ?)");
  st.bind(1, account).bind(2, name).bind(3, version).bind(4, record);
  return st.step() == SQLITE_DONE ? Status::Ok() : sqlite_error(db_, "put_function");
}

Status Store::delete_function(const std::string& account, const std::string& name) {
  std::lock_guard lock(mu_);
  Statement st(db_, "DELETE FROM functions WHERE account_id = ? AND name = ?");
  st.bind(1, account).bind(2, name);
  return st.step() == SQLITE_DONE ? Status::Ok() : sqlite_error(db_, "delete_function");
}

std::vector<Store::ReservationRow> Store::reservations() {
  std::lock_guard lock(mu_);
  std::vector<ReservationRow> out;
  Statement st(db_, "SELECT account_id, name, reserved FROM reserved_concurrency ORDER BY account_id, name");
  while (st.step() == SQLITE_ROW) out.push_back({st.text(0), st.text(1), std::stoull(st.text(2))});
  return out;
}

Status Store::put_reservation(const std::string& account, const std::string& name, uint64_t reserved) {
  std::lock_guard lock(mu_);
  Statement st(db_, "INSERT OR REPLACE INTO reserved_concurrency (account_id, name, reserved) VALUES (?, ?, ?)");
  st.bind(1, account).bind(2, name).bind(3, std::to_string(reserved));
  return st.step() == SQLITE_DONE ? Status::Ok() : sqlite_error(db_, "put_reservation");
}

Status Store::delete_reservation(const std::string& account, const std::string& name) {
  std::lock_guard lock(mu_);
  Statement st(db_, "DELETE FROM reserved_concurrency WHERE account_id = ? AND name = ?");
  st.bind(1, account).bind(2, name);
  return st.step() == SQLITE_DONE ? Status::Ok() : sqlite_error(db_, "delete_reservation");
}

std::vector<Store::ProvisionedRow> Store::provisioned_configs() {
  std::lock_guard lock(mu_);
  std::vector<ProvisionedRow> out;
  Statement st(db_, "SELECT account_id, name, qualifier, requested, last_modified FROM provisioned_concurrency "
                    "ORDER BY account_id, name, qualifier");
  while (st.step() == SQLITE_ROW) out.push_back({st.text(0), st.text(1), st.text(2), std::stoull(st.text(3)), st.text(4)});
  return out;
}

Status Store::put_provisioned(const ProvisionedRow& row) {
  std::lock_guard lock(mu_);
  Statement st(db_, "INSERT OR REPLACE INTO provisioned_concurrency (account_id, name, qualifier, requested, "
                    "last_modified) VALUES (?, ?, ?, ?, ?)");
  st.bind(1, row.account).bind(2, row.name).bind(3, row.qualifier).bind(4, std::to_string(row.requested))
      .bind(5, row.last_modified);
  return st.step() == SQLITE_DONE ? Status::Ok() : sqlite_error(db_, "put_provisioned");
}

Status Store::delete_provisioned(const std::string& account, const std::string& name, const std::string& qualifier) {
  std::lock_guard lock(mu_);
  Statement st(db_, qualifier.empty()
                        ? "DELETE FROM provisioned_concurrency WHERE account_id = ? AND name = ?"
                        : "DELETE FROM provisioned_concurrency WHERE account_id = ? AND name = ? AND qualifier = ?");
  st.bind(1, account).bind(2, name);
  if (!qualifier.empty()) st.bind(3, qualifier);
  return st.step() == SQLITE_DONE ? Status::Ok() : sqlite_error(db_, "delete_provisioned");
}

}  // namespace kiln::registry
