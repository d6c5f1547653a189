// LayerStore (see layers.h): an in-memory map of every layer version, tombstones
// included, written through to the `layer_versions` table before it changes.
#include "registry/layers.h"

#include <sqlite3.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <optional>
#include <regex>

#include "common/crypto.h"
#include "common/json_text.h"
#include "common/numbers.h"

namespace kiln::registry {

using nlohmann::json;

namespace {

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS layer_versions (
  account_id TEXT NOT NULL, name TEXT NOT NULL, version INTEGER NOT NULL,
  deleted INTEGER NOT NULL DEFAULT 0, record TEXT NOT NULL,
  PRIMARY KEY (account_id, name, version));
)sql";

Status sqlite_error(sqlite3* db, const std::string& what) {
  return ServiceError("layer store: " + what + ": " + (db ? sqlite3_errmsg(db) : "cannot open"));
}

Status not_found() { return ResourceNotFound("The resource you requested does not exist."); }

json record_json(const LayerVersion& v) {
  return {{"account_id", v.account_id},
          {"region", v.region},
          {"name", v.name},
          {"version", v.version},
          {"description", v.description},
          {"license_info", v.license_info},
          {"compatible_runtimes", v.compatible_runtimes},
          {"compatible_architectures", v.compatible_architectures},
          {"created_date", v.created_date},
          {"code_hex", v.code_hex},
          {"code_sha256", v.code_sha256},
          {"code_size", v.code_size},
          {"unzipped_size", v.unzipped_size}};
}

LayerVersion from_record(const json& j, bool deleted) {
  LayerVersion v;
  v.account_id = j.at("account_id");
  v.region = j.at("region");
  v.name = j.at("name");
  v.version = j.at("version");
  v.description = j.value("description", "");
  v.license_info = j.value("license_info", "");
  v.compatible_runtimes = j.value("compatible_runtimes", std::vector<std::string>{});
  v.compatible_architectures = j.value("compatible_architectures", std::vector<std::string>{});
  v.created_date = j.value("created_date", "");
  v.code_hex = j.at("code_hex");
  v.code_sha256 = j.at("code_sha256");
  v.code_size = j.at("code_size");
  v.unzipped_size = j.value("unzipped_size", uint64_t{0});
  v.deleted = deleted;
  return v;
}

bool matches(const LayerVersion& v, const LayerListQuery& q) {
  auto has = [](const std::vector<std::string>& list, const std::string& x) {
    return x.empty() || std::find(list.begin(), list.end(), x) != list.end();
  };
  return !v.deleted && has(v.compatible_runtimes, q.compatible_runtime) &&
         has(v.compatible_architectures, q.compatible_architecture);
}

// The marker is opaque to clients: base64 of the last item's key.
Status bad_marker(const std::string& marker) { return InvalidParameterValue("Invalid marker: " + marker); }

}  // namespace

std::string LayerVersion::layer_arn() const {
  return "arn:aws:lambda:" + region + ":" + account_id + ":layer:" + name;
}

std::string LayerVersion::version_arn() const { return layer_arn() + ":" + std::to_string(version); }

LayerStore::LayerStore(sqlite3* db, CodeStore& code, std::string region, Clock clock)
    : code_(code), region_(std::move(region)), clock_(std::move(clock)), db_(db) {
  if (!clock_) clock_ = [] { return std::chrono::system_clock::now(); };
}

LayerStore::~LayerStore() { sqlite3_close(db_); }

StatusOr<std::unique_ptr<LayerStore>> LayerStore::open(const std::filesystem::path& db_file, CodeStore& code,
                                                       std::string region, Clock clock) {
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(db_file.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                      nullptr) != SQLITE_OK) {
    Status s = sqlite_error(db, "open " + db_file.string());
    sqlite3_close(db);
    return s;
  }
  std::unique_ptr<LayerStore> store(new LayerStore(db, code, std::move(region), std::move(clock)));
  sqlite3_busy_timeout(db, 5000);
  for (const char* sql : {"PRAGMA journal_mode=WAL;", "PRAGMA synchronous=FULL;", kSchema}) {
    char* err = nullptr;
    if (sqlite3_exec(db, sql, nullptr, nullptr, &err) != SQLITE_OK) {
      std::string m = err ? err : "unknown";
      sqlite3_free(err);
      return ServiceError("layer store: " + m);
    }
  }
  if (Status s = store->load(); !s.ok()) return s;
  return store;
}

Status LayerStore::load() {
  std::lock_guard lock(mu_);
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(db_, "SELECT record, deleted FROM layer_versions", -1, &st, nullptr) != SQLITE_OK) {
    return sqlite_error(db_, "load");
  }
  Status result;
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    auto text = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
    json j = json::parse(text ? text : "", nullptr, false);
    if (j.is_discarded() || !j.is_object()) {
      result = ServiceError("layer store holds a corrupt record");
      break;
    }
    LayerVersion v = from_record(j, sqlite3_column_int(st, 1) != 0);
    versions_[{v.account_id, v.name, v.version}] = std::move(v);
  }
  if (result.ok() && rc != SQLITE_ROW && rc != SQLITE_DONE) result = sqlite_error(db_, "load");
  sqlite3_finalize(st);
  return result;
}

Status LayerStore::persist(const LayerVersion& v) {
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(db_,
                         "INSERT OR REPLACE INTO layer_versions (account_id, name, version, deleted, record) "
                         "VALUES (?, ?, ?, ?, ?)",
                         -1, &st, nullptr) != SQLITE_OK) {
    return sqlite_error(db_, "persist");
  }
  const std::string record = json_text::dump(record_json(v));
  sqlite3_bind_text(st, 1, v.account_id.data(), static_cast<int>(v.account_id.size()), SQLITE_TRANSIENT);
  sqlite3_bind_text(st, 2, v.name.data(), static_cast<int>(v.name.size()), SQLITE_TRANSIENT);
  sqlite3_bind_int64(st, 3, v.version);
  sqlite3_bind_int(st, 4, v.deleted ? 1 : 0);
  sqlite3_bind_text(st, 5, record.data(), static_cast<int>(record.size()), SQLITE_TRANSIENT);
  Status s = sqlite3_step(st) == SQLITE_DONE ? Status::Ok() : sqlite_error(db_, "persist");
  sqlite3_finalize(st);
  return s;
}

std::string LayerStore::now() const {
  auto t = clock_();
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count() % 1000;
  std::time_t secs = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[40];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  char out[64];
  std::snprintf(out, sizeof out, "%s.%03d+0000", buf, static_cast<int>(ms));
  return out;
}

const LayerVersion* LayerStore::find(const std::string& account, const std::string& name, int64_t version) const {
  auto it = versions_.find({account, name, version});
  return it == versions_.end() ? nullptr : &it->second;
}

StatusOr<LayerVersion> LayerStore::publish(const std::string& account, const std::string& layer_name,
                                           const LayerPublish& request) {
  // The zip is stored outside the lock: extraction is slow and the CodeStore is
  // thread-safe. Content that ends up unused by a failed write is shared garbage, as
  // with function code.
  StatusOr<CodeInfo> info = code_.put(request.zip);
  if (!info.ok()) return info.status();

  LayerVersion v;
  v.account_id = account;
  v.region = region_;
  v.name = layer_name;
  v.description = request.description;
  v.license_info = request.license_info;
  v.compatible_runtimes = request.compatible_runtimes;
  v.compatible_architectures = request.compatible_architectures;
  v.code_hex = info->sha256_hex;
  v.code_sha256 = info->sha256_base64;
  v.code_size = info->zip_size;
  v.unzipped_size = info->unzipped_size;

  std::lock_guard lock(mu_);
  v.created_date = now();
  // Highest version ever used (tombstones included) + 1: numbers are never reused.
  auto next = versions_.lower_bound({account, layer_name, INT64_MAX});
  v.version = 1;
  if (next != versions_.begin()) {
    const LayerVersion& prev = std::prev(next)->second;
    if (prev.account_id == account && prev.name == layer_name) v.version = prev.version + 1;
  }
  if (Status s = persist(v); !s.ok()) return s;
  versions_[{account, layer_name, v.version}] = v;
  return v;
}

StatusOr<LayerVersion> LayerStore::get(const std::string& account, const std::string& layer_name,
                                       int64_t version) const {
  std::lock_guard lock(mu_);
  const LayerVersion* v = find(account, layer_name, version);
  if (v == nullptr || v->deleted) return not_found();
  return *v;
}

namespace {

struct ParsedVersionArn {
  std::string region, account, name;
  int64_t version = 0;
};

std::optional<ParsedVersionArn> parse_version_arn(const std::string& arn) {
  static const std::regex kArn(
      R"(arn:[a-zA-Z0-9-]+:lambda:([a-zA-Z0-9-]+):(\d{12}):layer:([a-zA-Z0-9_-]+):([0-9]{1,18}))");
  std::smatch m;
  if (arn.size() > 140 || !std::regex_match(arn, m, kArn)) return std::nullopt;
  auto version = parse_number<int64_t>(m[4].str());
  if (!version) return std::nullopt;
  return ParsedVersionArn{m[1].str(), m[2].str(), m[3].str(), *version};
}

Status bad_version_arn(const std::string& arn, const char* field) {
  return {400, "ValidationException",
          "1 validation error detected: Value '" + arn + "' at '" + field +
              "' failed to satisfy constraint: Member must satisfy regular expression pattern: "
              "arn:[a-zA-Z0-9-]+:lambda:[a-zA-Z0-9-]+:\\d{12}:layer:[a-zA-Z0-9-_]+:[0-9]+"};
}

}  // namespace

StatusOr<LayerVersion> LayerStore::get_by_arn(const std::string& account, const std::string& arn) const {
  auto parsed = parse_version_arn(arn);
  if (!parsed) return bad_version_arn(arn, "arn");
  if (parsed->account != account || parsed->region != region_) return not_found();
  return get(account, parsed->name, parsed->version);
}

StatusOr<LayerPage> LayerStore::list_layers(const std::string& account, const LayerListQuery& query) const {
  int64_t max_items = 0;
  if (Status s = validate_list_query(query, &max_items); !s.ok()) return s;
  std::string after;
  if (!query.marker.empty() && (!crypto::base64_decode(query.marker, &after) || after.empty())) {
    return bad_marker(query.marker);
  }
  LayerPage page;
  std::lock_guard lock(mu_);
  // Versions are ordered by (account, name, version): the last match of a name wins.
  const LayerVersion* latest = nullptr;
  auto flush = [&]() {
    if (latest == nullptr) return;
    if (static_cast<int64_t>(page.items.size()) == max_items) {
      if (page.next_marker.empty()) page.next_marker = crypto::base64(page.items.back().name);
    } else {
      page.items.push_back(*latest);
    }
    latest = nullptr;
  };
  for (auto it = versions_.lower_bound({account, after, INT64_MAX}); it != versions_.end(); ++it) {
    const LayerVersion& v = it->second;
    if (v.account_id != account) break;
    if (latest != nullptr && latest->name != v.name) flush();
    if (!page.next_marker.empty()) break;
    if (matches(v, query)) latest = &v;
  }
  flush();
  return page;
}

StatusOr<LayerPage> LayerStore::list_versions(const std::string& account, const std::string& layer_name,
                                              const LayerListQuery& query) const {
  int64_t max_items = 0;
  if (Status s = validate_list_query(query, &max_items); !s.ok()) return s;
  int64_t before = INT64_MAX;
  if (!query.marker.empty()) {
    std::string decoded;
    std::optional<int64_t> n;
    if (!crypto::base64_decode(query.marker, &decoded) || !(n = parse_number<int64_t>(decoded)) || *n < 0) {
      return bad_marker(query.marker);
    }
    before = *n;
  }
  LayerPage page;
  std::lock_guard lock(mu_);
  auto first = versions_.lower_bound({account, layer_name, 0});
  auto it = versions_.lower_bound({account, layer_name, before});  // newest first: walk backwards
  while (it != first) {
    const LayerVersion& v = (--it)->second;
    if (!matches(v, query)) continue;
    if (static_cast<int64_t>(page.items.size()) == max_items) {
      page.next_marker = crypto::base64(std::to_string(page.items.back().version));
      break;
    }
    page.items.push_back(v);
  }
  return page;
}

Status LayerStore::remove(const std::string& account, const std::string& layer_name, int64_t version) {
  std::lock_guard lock(mu_);
  auto it = versions_.find({account, layer_name, version});
  if (it == versions_.end() || it->second.deleted) return Status::Ok();
  LayerVersion tombstone = it->second;
  tombstone.deleted = true;
  if (Status s = persist(tombstone); !s.ok()) return s;
  it->second.deleted = true;
  return Status::Ok();
}

StatusOr<LayerContent> LayerStore::resolve(const std::string& account, const std::string& arn,
                                           bool include_deleted) const {
  auto parsed = parse_version_arn(arn);
  if (!parsed) return bad_version_arn(arn, "layers");
  std::lock_guard lock(mu_);
  const LayerVersion* v = parsed->account == account && parsed->region == region_
                              ? find(account, parsed->name, parsed->version)
                              : nullptr;
  if (v == nullptr || (v->deleted && !include_deleted)) {
    return InvalidParameterValue("Layer version " + arn + " does not exist.");
  }
  if (!code_.contains(v->code_hex)) return ServiceError("content of layer version " + arn + " is missing");
  LayerContent c;
  c.arn = v->version_arn();
  c.code_hex = v->code_hex;
  c.code_size = v->code_size;
  c.unzipped_size = v->unzipped_size;
  c.dir = code_.tree_path(v->code_hex);
  return c;
}

std::vector<std::string> LayerStore::referenced_code() const {
  std::lock_guard lock(mu_);
  std::vector<std::string> out;
  for (const auto& [key, v] : versions_) out.push_back(v.code_hex);
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

}  // namespace kiln::registry
