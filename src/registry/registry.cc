#include "registry/registry.h"

#include <nlohmann/json.hpp>

#include <random>
#include <regex>
#include <set>

#include "common/crypto.h"
#include "common/json_text.h"
#include "common/log.h"
#include "common/numbers.h"

namespace kiln::registry {

using nlohmann::json;

namespace {

Status bad_name(const std::string& value) {
  return {400, "ValidationException",
          "1 validation error detected: Value '" + value +
              "' at 'functionName' failed to satisfy constraint: Member must satisfy regular expression "
              "pattern: (arn:(aws[a-zA-Z-]*)?:lambda:)?([a-z]{2}(-gov)?-[a-z]+-\\d{1}:)?(\\d{12}:)?(function:)?"
              "([a-zA-Z0-9-_]+)(:(\\$LATEST|[a-zA-Z0-9-_]+))?"};
}

std::string function_arn(const std::string& region, const std::string& account, const std::string& name) {
  return "arn:aws:lambda:" + region + ":" + account + ":function:" + name;
}

Status not_found(const std::string& region, const std::string& account, const std::string& name,
                 const std::string& qualifier = "") {
  std::string arn = function_arn(region, account, name);
  if (!qualifier.empty()) arn += ":" + qualifier;
  return ResourceNotFound("Function not found: " + arn);
}

}  // namespace

StatusOr<FunctionRef> parse_function_ref(const std::string& param, const std::string& region,
                                         const std::string& account) {
  static const std::regex kFull(R"(arn:aws[a-zA-Z-]*:lambda:([a-z]{2}(?:-gov)?-[a-z]+-\d):(\d{12}):function:([a-zA-Z0-9_-]+)(?::(\$LATEST|[a-zA-Z0-9_-]+))?)");
  static const std::regex kPartial(R"((\d{12}):function:([a-zA-Z0-9_-]+)(?::(\$LATEST|[a-zA-Z0-9_-]+))?)");
  static const std::regex kName(R"(([a-zA-Z0-9_-]+)(?::(\$LATEST|[a-zA-Z0-9_-]+))?)");
  if (param.empty() || param.size() > 256) return bad_name(param);
  // The common case, a plain name, without a regex (this runs on every invoke).
  if (param.size() <= 64 && param.find_first_not_of(
      "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_") == std::string::npos) {
    return FunctionRef{param, ""};
  }
  std::smatch m;
  FunctionRef ref;
  if (std::regex_match(param, m, kFull)) {
    if (m[2].str() != account) {
      return Status(403, "AccessDeniedException",
                    "User is not authorized to access function " + param + " from account " + account);
    }
    if (m[1].str() != region) return not_found(m[1].str(), m[2].str(), m[3].str());
    ref = {m[3].str(), m[4].str()};
  } else if (std::regex_match(param, m, kPartial)) {
    if (m[1].str() != account) {
      return Status(403, "AccessDeniedException",
                    "User is not authorized to access function " + param + " from account " + account);
    }
    ref = {m[2].str(), m[3].str()};
  } else if (std::regex_match(param, m, kName)) {
    ref = {m[1].str(), m[2].str()};
  } else {
    return bad_name(param);
  }
  if (ref.name.size() > 64 || ref.qualifier.size() > 128) return bad_name(param);
  return ref;
}

Registry::Registry(Store& store, CodeStore& code, std::string region)
    : store_(store), code_(code), region_(std::move(region)) {}

namespace {

constexpr const char* kLatest = "$LATEST";
constexpr const char* kServing = "$SERVING";  // record of what $LATEST runs while an update is pending
constexpr const char* kEntry = "$ENTRY";      // record of aliases and the version counter

json alias_record(const Alias& a) {
  return {{"name", a.name}, {"function_version", a.function_version}, {"description", a.description},
          {"revision_id", a.revision_id}, {"additional_version", a.additional_version},
          {"additional_weight", a.additional_weight}};
}

Alias alias_from_record(const json& j) {
  return {j.at("name"), j.at("function_version"), j.at("description"), j.at("revision_id"),
          j.at("additional_version"), j.at("additional_weight")};
}

}  // namespace

Status Registry::load() {
  std::map<Key, Entry> loaded;
  for (const auto& row : store_.function_rows()) {
    json j = json::parse(row.record, nullptr, false);
    if (j.is_discarded()) return ServiceError("store holds a corrupt function record");
    Entry& e = loaded[{row.account, row.name}];
    if (row.version == kEntry) {
      e.last_version = j.value("last_version", uint64_t{0});
      for (const auto& a : j.value("aliases", json::array())) {
        Alias alias = alias_from_record(a);
        e.aliases[alias.name] = alias;
      }
      continue;
    }
    auto f = std::make_shared<FunctionVersion>(from_record_json(j));
    if (!code_.contains(f->code_hex)) {
      log::error("function " + f->arn() + " refers to missing code " + f->code_hex + "; skipped");
      continue;
    }
    f->code_dir = code_.tree_path(f->code_hex);
    for (auto& l : f->layers) l.dir = code_.tree_path(l.code_hex);
    if (row.version == kLatest) {
      e.latest = f;
    } else if (row.version == kServing) {
      e.serving = f;
    } else {
      e.versions[std::stoull(row.version)] = f;
    }
  }
  std::unique_lock lock(mu_);
  for (auto& [key, e] : loaded) {
    if (!e.latest) continue;
    if (!e.serving) e.serving = e.latest;
    functions_[key] = std::move(e);
  }
  return Status::Ok();
}

void Registry::resume_preparations() {
  std::vector<FunctionVersionPtr> pending;
  std::vector<FunctionVersionPtr> unsnapshotted;  // Kiln stopped while taking their snapshots
  {
    std::shared_lock lock(mu_);
    for (const auto& [key, e] : functions_) {
      if (e.latest->last_update_status == "InProgress") pending.push_back(e.latest);
      for (const auto& [n, v] : e.versions) {
        if (awaits_snapshot(v)) unsnapshotted.push_back(v);
      }
    }
  }
  for (const auto& f : pending) prepare(f);
  for (const auto& v : unsnapshotted) snapshot(v);
}

namespace {

// Decodes Code.ZipFile / ZipFile into the code store.
StatusOr<CodeInfo> store_zip(CodeStore& code, const json& zip_field) {
  if (!zip_field.is_string()) {
    return InvalidRequestContent("Could not parse request body into json: ZipFile must be a base64 string");
  }
  std::string zip;
  if (!crypto::base64_decode(zip_field.get_ref<const std::string&>(), &zip)) {
    return InvalidRequestContent("Could not parse request body into json: ZipFile is not valid base64");
  }
  return code.put(zip);
}

Status only_zipfile(const json& code) {
  for (const char* other : {"S3Bucket", "S3Key", "S3ObjectVersion", "ImageUri"}) {
    if (code.contains(other) && !code[other].is_null()) {
      return InvalidParameterValue(std::string("Kiln accepts function code as ZipFile only; ") + other +
                                   " is not supported.");
    }
  }
  return Status::Ok();
}

// Points f at stored code.
void set_code(const CodeStore& code, const CodeInfo& info, FunctionVersion* f) {
  f->code_hex = info.sha256_hex;
  f->code_sha256 = info.sha256_base64;
  f->code_size = info.zip_size;
  f->code_dir = code.tree_path(f->code_hex);
  f->code_unzipped_size = info.unzipped_size;
}

// Lambda's 250 MB unzipped limit counts the code and its layers together.
Status check_total_size(const FunctionVersion& f) {
  uint64_t total = f.code_unzipped_size;
  for (const auto& l : f.layers) total += l.unzipped_size;
  if (total > 262144000) {
    return InvalidParameterValue(
        "Function code combined with layers exceeds the maximum allowed size of 262144000 bytes. The actual size is " +
        std::to_string(total) + " bytes.");
  }
  return Status::Ok();
}

Status update_in_progress(const FunctionVersion& f) {
  return ResourceConflict("The operation cannot be performed at this time. An update is in progress for resource: " +
                          f.arn());
}

}  // namespace

Status Registry::apply_layers(const json& req, FunctionVersion* f) const {
  auto it = req.find("Layers");
  if (it == req.end() || it->is_null()) return Status::Ok();
  if (!it->is_array()) return InvalidRequestContent("Could not parse request body into json: Layers must be a list");
  if (it->size() > 5) {
    return InvalidParameterValue("Cannot reference more than 5 layers.");
  }
  std::vector<FunctionVersion::Layer> layers;
  for (const auto& arn : *it) {
    if (!arn.is_string()) return InvalidRequestContent("Could not parse request body into json: layer ARNs are strings");
    if (!layer_resolver_) return InvalidParameterValue("Layers are not available on this server.");
    auto content = layer_resolver_(f->account_id, arn.get<std::string>());
    if (!content.ok()) return content.status();
    layers.push_back({content->arn, content->code_size, content->code_hex, content->dir, content->unzipped_size});
  }
  f->layers = std::move(layers);
  return Status::Ok();
}

StatusOr<FunctionVersionPtr> Registry::create_function(const std::string& account, const json& req) {
  if (!req.is_object()) return InvalidRequestContent("Could not parse request body into json");
  auto name_it = req.find("FunctionName");
  if (name_it == req.end() || !name_it->is_string()) {
    return Status(400, "ValidationException",
                  "1 validation error detected: Value null at 'functionName' failed to satisfy constraint: Member must not be null");
  }
  auto ref = parse_function_ref(*name_it, region_, account);
  if (!ref.ok()) return ref.status();
  if (!ref->qualifier.empty()) return bad_name(*name_it);

  auto f = std::make_shared<FunctionVersion>();
  f->account_id = account;
  f->region = region_;
  f->name = ref->name;
  if (Status s = apply_configuration(req, /*create=*/true, f.get()); !s.ok()) return s;
  if (Status s = apply_layers(req, f.get()); !s.ok()) return s;
  if (auto tags = req.find("Tags"); tags != req.end() && !tags->is_null()) {
    if (!tags->is_object()) return InvalidRequestContent("Could not parse request body into json: Tags must be a map");
    for (auto it = tags->begin(); it != tags->end(); ++it) {
      if (!it.value().is_string()) return InvalidRequestContent("Could not parse request body into json: tag values must be strings");
      f->tags[it.key()] = it.value();
    }
    if (Status s = check_tag_count(f->tags.size()); !s.ok()) return s;
  }
  auto code = req.find("Code");
  if (code == req.end() || !code->is_object()) {
    return Status(400, "ValidationException",
                  "1 validation error detected: Value null at 'code' failed to satisfy constraint: Member must not be null");
  }
  if (Status s = only_zipfile(*code); !s.ok()) return s;
  if (!code->contains("ZipFile")) return InvalidParameterValue("Please provide a source for function code (Code.ZipFile).");
  bool publish = req.value("Publish", false);

  std::unique_lock write(write_mu_);
  if (find(account, f->name).ok()) return ResourceConflict("Function already exist: " + f->name);
  auto info = store_zip(code_, (*code)["ZipFile"]);
  if (!info.ok()) return info.status();
  set_code(code_, *info, f.get());
  if (Status s = check_total_size(*f); !s.ok()) return s;
  f->revision_id = new_uuid();
  f->last_modified = lambda_timestamp_now();
  f->state = "Pending";
  f->state_reason = "The function is being created.";
  f->state_reason_code = "Creating";
  f->last_update_status = "InProgress";
  Entry e;
  e.latest = f;
  e.serving = f;  // a new function serves at once; its first sandbox initializes meanwhile
  FunctionVersionPtr published = publish ? add_version(e, f, f->description) : nullptr;
  if (Status s = commit({account, f->name}, std::move(e)); !s.ok()) return s;
  write.unlock();  // the preparer may answer at once, and prepared() takes the lock
  prepare(f);
  if (awaits_snapshot(published)) snapshot(published);
  // With Publish, Lambda answers with the published version's configuration.
  return published ? published : FunctionVersionPtr(f);
}

FunctionVersionPtr Registry::add_version(Entry& e, const FunctionVersionPtr& from,
                                         const std::string& description) const {
  auto v = std::make_shared<FunctionVersion>(*from);
  uint64_t n = ++e.last_version;
  v->version = std::to_string(n);
  v->description = description;
  v->revision_id = new_uuid();
  v->last_modified = lambda_timestamp_now();
  v->published_from_revision = from->revision_id;
  v->state = "Active";
  v->state_reason.clear();
  v->state_reason_code.clear();
  if (v->snap_start && snapshotter_) {
    // As Lambda answers a SnapStart publish: Pending until the snapshot is stored.
    v->state = "Pending";
    v->state_reason = "The function is being created.";
    v->state_reason_code = "Creating";
  }
  v->last_update_status = "Successful";
  v->last_update_reason.clear();
  v->last_update_reason_code.clear();
  e.versions[n] = v;
  return v;
}

StatusOr<FunctionVersionPtr> Registry::update_code(const std::string& account, const std::string& function_name,
                                                   const json& req) {
  return replace(account, function_name, req, /*code=*/true);
}

StatusOr<FunctionVersionPtr> Registry::update_configuration(const std::string& account,
                                                            const std::string& function_name, const json& req) {
  return replace(account, function_name, req, /*code=*/false);
}

StatusOr<FunctionVersionPtr> Registry::replace(const std::string& account, const std::string& function_name,
                                               const json& req, bool code) {
  if (!req.is_object()) return InvalidRequestContent("Could not parse request body into json");
  std::unique_lock write(write_mu_);
  auto found = find_by_param(account, function_name);
  if (!found.ok()) return found.status();
  auto& [key, entry] = *found;
  const FunctionVersionPtr& old = entry.latest;
  if (old->last_update_status == "InProgress") return update_in_progress(*old);
  auto f = std::make_shared<FunctionVersion>(*old);
  if (Status s = check_revision(req, f->revision_id); !s.ok()) return s;
  if (code) {
    if (Status s = only_zipfile(req); !s.ok()) return s;
    if (!req.contains("ZipFile")) return InvalidParameterValue("Please provide a source for function code (ZipFile).");
    if (auto arch = req.find("Architectures"); arch != req.end()) {
      json only_arch = {{"Architectures", *arch}};
      if (Status s = apply_configuration(only_arch, false, f.get()); !s.ok()) return s;
    }
    auto info = store_zip(code_, req["ZipFile"]);
    if (!info.ok()) return info.status();
    set_code(code_, *info, f.get());
  } else {
    if (Status s = apply_configuration(req, /*create=*/false, f.get()); !s.ok()) return s;
    if (Status s = apply_layers(req, f.get()); !s.ok()) return s;
  }
  f->revision_id = new_uuid();
  f->last_modified = lambda_timestamp_now();
  f->state = "Active";
  f->state_reason.clear();
  f->state_reason_code.clear();
  f->last_update_status = "InProgress";
  f->last_update_reason.clear();
  f->last_update_reason_code.clear();
  Entry e = entry;
  e.latest = f;  // serving stays: the previous configuration runs until this one is ready
  if (Status s = check_total_size(*f); !s.ok()) return s;
  // Publish=true: the version is immutable and runs the new code whatever the fate of
  // $LATEST's initialization.
  FunctionVersionPtr published = code && req.value("Publish", false) ? add_version(e, f, f->description) : nullptr;
  if (Status s = commit(key, std::move(e)); !s.ok()) return s;
  write.unlock();  // the preparer may answer at once, and prepared() takes the lock
  prepare(f);
  if (awaits_snapshot(published)) snapshot(published);
  return published ? published : FunctionVersionPtr(f);
}

void Registry::prepare(const FunctionVersionPtr& f) {
  if (!preparer_) return prepared(f, Status::Ok());
  preparer_(f, [this, f](Status s) { prepared(f, s); });
}

void Registry::prepared(const FunctionVersionPtr& f, const Status& result) {
  FunctionVersionPtr replaced;
  {
    std::lock_guard write(write_mu_);
    auto found = find(f->account_id, f->name);
    if (!found.ok() || found->latest->revision_id != f->revision_id) return;  // deleted or superseded
    Entry e = *found;
    // The current $LATEST (same revision as f; tags may have changed since).
    auto done = std::make_shared<FunctionVersion>(*e.latest);
    done->state = "Active";
    done->state_reason.clear();
    done->state_reason_code.clear();
    if (result.ok()) {
      done->last_update_status = "Successful";
      if (e.serving != e.latest || e.serving->revision_id != f->revision_id) replaced = e.serving;
      e.latest = done;
      e.serving = done;
    } else {
      done->last_update_status = "Failed";
      done->last_update_reason = result.message();
      done->last_update_reason_code = result.type();
      bool is_new = e.serving->revision_id == f->revision_id;  // a new function: nothing older
      if (is_new && result.type().rfind("FunctionError", 0) != 0) {
        // Kiln could not set the function up (no capacity, an internal error), as
        // opposed to the function's own init failing, which its invokes report.
        done->state = "Failed";
        done->state_reason = result.message();
        done->state_reason_code = result.type();
      }
      e.latest = done;
      if (is_new) e.serving = done;
    }
    if (Status s = commit({f->account_id, f->name}, std::move(e)); !s.ok()) {
      log::error("cannot record the end of an update of " + f->arn() + ": " + s.message());
      return;
    }
  }
  if (replaced) retire(replaced);
}

namespace {

// Lambda's StateReasonCode values (botocore's model): a snapshot failure whose type is
// one of them is reported as such, any other as InternalError.
bool is_state_reason_code(const std::string& type) {
  static const std::set<std::string> codes = {
      "Idle", "Creating", "Restoring", "EniLimitExceeded", "InsufficientRolePermissions", "InvalidConfiguration",
      "InternalError", "SubnetOutOfIPAddresses", "InvalidSubnet", "InvalidSecurityGroup", "ImageDeleted",
      "ImageAccessDenied", "InvalidImage", "KMSKeyAccessDenied", "KMSKeyNotFound", "InvalidStateKMSKey",
      "DisabledKMSKey", "EFSIOError", "EFSMountConnectivityError", "EFSMountFailure", "EFSMountTimeout",
      "InvalidRuntime", "InvalidZipFileException", "FunctionError", "FunctionError.InitTimeout",
      "FunctionError.RuntimeInitError", "FunctionError.ExtensionInitError", "FunctionError.InvalidEntryPoint",
      "FunctionError.InvalidWorkingDirectory", "FunctionError.PermissionDenied", "FunctionError.TooManyExtensions",
      "FunctionError.InitResourceExhausted"};
  return codes.count(type) > 0;
}

}  // namespace

void Registry::snapshot(const FunctionVersionPtr& v) {
  if (!snapshotter_) return snapshotted(v, Status::Ok());
  snapshotter_(v, [this, v](Status s) { snapshotted(v, s); });
}

void Registry::snapshotted(const FunctionVersionPtr& v, const Status& result) {
  std::lock_guard write(write_mu_);
  auto found = find(v->account_id, v->name);
  if (!found.ok()) return;  // the function was deleted meanwhile
  auto n = parse_number<uint64_t>(v->version);
  if (!n) return;
  Entry e = *found;
  auto it = e.versions.find(*n);
  // Deleted meanwhile (a function re-created since may reuse the number: not this one).
  if (it == e.versions.end() || it->second->revision_id != v->revision_id || it->second->state != "Pending") return;
  auto done = std::make_shared<FunctionVersion>(*it->second);
  if (result.ok()) {
    done->state = "Active";
    done->state_reason.clear();
    done->state_reason_code.clear();
  } else {
    done->state = "Failed";
    done->state_reason = result.message();
    done->state_reason_code = is_state_reason_code(result.type()) ? result.type() : "InternalError";
  }
  it->second = done;
  if (Status s = commit({v->account_id, v->name}, std::move(e)); !s.ok()) {
    log::error("cannot record the snapshot of " + v->arn() + ":" + v->version + ": " + s.message());
  }
}

Status check_invocable(const FunctionVersion& f) {
  if (f.version == "$LATEST" || f.state == "Active") return Status::Ok();
  return ResourceConflict("The operation cannot be performed at this time. The function is currently in the following state: " +
                          f.state);
}

Status Registry::delete_function(const std::string& account, const std::string& function_name,
                                 const std::string& qualifier) {
  auto ref = parse_function_ref(function_name, region_, account);
  if (!ref.ok()) return ref.status();
  if (!qualifier.empty() && !ref->qualifier.empty() && qualifier != ref->qualifier) {
    return InvalidParameterValue("The derived qualifier from the function name does not match the specified qualifier.");
  }
  std::string q = !qualifier.empty() ? qualifier : ref->qualifier;
  if (q == kLatest) return InvalidParameterValue("$LATEST version cannot be deleted without deleting the function.");
  std::vector<FunctionVersionPtr> doomed;
  std::vector<FunctionVersionPtr> deleted_versions;  // published ones, for on_version_deleted_
  {
    std::lock_guard write(write_mu_);
    auto found = find(account, ref->name);
    if (!found.ok()) return found.status();
    Entry e = *found;
    if (q.empty()) {
      if (Status s = store_.replace_function(account, ref->name, {}); !s.ok()) return s;
      std::unique_lock lock(mu_);
      functions_.erase({account, ref->name});
      doomed.push_back(e.latest);
      if (e.serving != e.latest) doomed.push_back(e.serving);
      for (auto& [n, v] : e.versions) {
        doomed.push_back(v);
        deleted_versions.push_back(v);
      }
    } else {
      auto n = parse_number<uint64_t>(q);
      if (!n || q.size() > 18 || !e.versions.count(*n)) {
        return not_found(region_, account, ref->name, q);
      }
      std::string users;
      for (const auto& [name, a] : e.aliases) {
        if (a.function_version == q || a.additional_version == q) users += (users.empty() ? "" : ", ") + name;
      }
      if (!users.empty()) {
        return ResourceConflict("Unable to delete version because the following aliases reference it: [" + users + "]");
      }
      doomed.push_back(e.versions[*n]);
      deleted_versions.push_back(e.versions[*n]);
      e.versions.erase(*n);
      if (Status s = commit({account, ref->name}, std::move(e)); !s.ok()) return s;
    }
  }
  for (const auto& f : doomed) retire(f);
  if (on_version_deleted_) {
    for (const auto& v : deleted_versions) on_version_deleted_(v);
  }
  return Status::Ok();
}

void Registry::retire(const FunctionVersionPtr& f) const {
  if (on_retired_) on_retired_(f);
}

StatusOr<Registry::Entry> Registry::find(const std::string& account, const std::string& name) const {
  std::shared_lock lock(mu_);
  auto it = functions_.find({account, name});
  if (it == functions_.end()) return not_found(region_, account, name);
  return it->second;
}

StatusOr<std::pair<Registry::Key, Registry::Entry>> Registry::find_by_param(const std::string& account,
                                                                          const std::string& function_name) const {
  auto ref = parse_function_ref(function_name, region_, account);
  if (!ref.ok()) return ref.status();
  if (!ref->qualifier.empty()) return bad_name(function_name);
  auto e = find(account, ref->name);
  if (!e.ok()) return e.status();
  return std::make_pair(Key{account, ref->name}, std::move(e).value());
}

StatusOr<FunctionVersionPtr> Registry::qualified(const Entry& e, const std::string& account,
                                                 const std::string& name, const std::string& q,
                                                 bool for_invoke) const {
  if (q.empty() || q == kLatest) return for_invoke ? e.serving : e.latest;
  if (q.find_first_not_of("0123456789") == std::string::npos) {
    auto n = parse_number<uint64_t>(q);
    if (!n || q.size() > 18) return not_found(region_, account, name, q);
    auto v = e.versions.find(*n);
    if (v == e.versions.end()) return not_found(region_, account, name, q);
    return v->second;
  }
  auto a = e.aliases.find(q);
  if (a == e.aliases.end()) return not_found(region_, account, name, q);
  std::string version = a->second.function_version;
  if (for_invoke && !a->second.additional_version.empty()) {
    thread_local std::mt19937_64 rng(std::random_device{}());
    if (std::uniform_real_distribution<double>(0.0, 1.0)(rng) < a->second.additional_weight) {
      version = a->second.additional_version;
    }
  }
  return qualified(e, account, name, version, for_invoke);
}

StatusOr<FunctionVersionPtr> Registry::configuration(const std::string& account, const std::string& function_name,
                                                     const std::string& qualifier) const {
  auto ref = parse_function_ref(function_name, region_, account);
  if (!ref.ok()) return ref.status();
  if (!qualifier.empty() && !ref->qualifier.empty() && qualifier != ref->qualifier) {
    return InvalidParameterValue("The derived qualifier from the function name does not match the specified qualifier.");
  }
  auto e = find(account, ref->name);
  if (!e.ok()) return e.status();
  return qualified(*e, account, ref->name, !qualifier.empty() ? qualifier : ref->qualifier, false);
}

StatusOr<FunctionVersionPtr> Registry::resolve(const std::string& account, const std::string& function_name,
                                               const std::string& qualifier) const {
  auto ref = parse_function_ref(function_name, region_, account);
  if (!ref.ok()) return ref.status();
  if (!qualifier.empty() && !ref->qualifier.empty() && qualifier != ref->qualifier) {
    return InvalidParameterValue("The derived qualifier from the function name does not match the specified qualifier.");
  }
  std::shared_lock lock(mu_);
  auto it = functions_.find({account, ref->name});
  if (it == functions_.end()) return not_found(region_, account, ref->name);
  return qualified(it->second, account, ref->name, !qualifier.empty() ? qualifier : ref->qualifier, true);
}

Status Registry::commit(const Key& key, Entry e) {
  std::vector<std::pair<std::string, std::string>> rows;
  rows.emplace_back(kLatest, json_text::dump(record_json(*e.latest)));
  if (e.serving && e.serving != e.latest) rows.emplace_back(kServing, json_text::dump(record_json(*e.serving)));
  json aliases = json::array();
  for (const auto& [name, a] : e.aliases) aliases.push_back(alias_record(a));
  rows.emplace_back(kEntry, json_text::dump(json{{"last_version", e.last_version}, {"aliases", aliases}}));
  for (const auto& [n, v] : e.versions) rows.emplace_back(std::to_string(n), json_text::dump(record_json(*v)));
  if (Status s = store_.replace_function(key.first, key.second, rows); !s.ok()) return s;
  std::unique_lock lock(mu_);
  functions_[key] = std::move(e);
  return Status::Ok();
}

std::vector<FunctionVersionPtr> Registry::list(const std::string& account) const {
  std::shared_lock lock(mu_);
  std::vector<FunctionVersionPtr> out;
  for (auto it = functions_.lower_bound({account, ""}); it != functions_.end() && it->first.first == account; ++it) {
    out.push_back(it->second.latest);
  }
  entries_listed_.fetch_add(out.size(), std::memory_order_relaxed);
  return out;
}

Registry::Page Registry::list_page(const std::string& account, const std::string& after, size_t limit) const {
  Page page;
  std::shared_lock lock(mu_);
  uint64_t visited = 0;
  for (auto it = functions_.upper_bound({account, after}); it != functions_.end() && it->first.first == account;
       ++it) {
    ++visited;
    if (page.functions.size() == limit) {
      page.more = true;
      break;
    }
    page.functions.push_back(it->second.latest);
  }
  entries_listed_.fetch_add(visited, std::memory_order_relaxed);
  return page;
}

AccountUsage Registry::usage(const std::string& account) const {
  AccountUsage u;
  std::shared_lock lock(mu_);
  for (auto it = functions_.lower_bound({account, ""}); it != functions_.end() && it->first.first == account; ++it) {
    u.total_code_size += it->second.latest->code_size;
    for (const auto& [n, v] : it->second.versions) u.total_code_size += v->code_size;
    u.function_count++;
  }
  return u;
}

}  // namespace kiln::registry
