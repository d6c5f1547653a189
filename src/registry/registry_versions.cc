// Versions, aliases and tags: the parts of the registry that name configurations.
#include <nlohmann/json.hpp>

#include <regex>

#include "common/numbers.h"
#include "registry/registry.h"

namespace kiln::registry {

using nlohmann::json;

namespace {

Status validation(const std::string& value, const std::string& field, const std::string& constraint) {
  return {400, "ValidationException",
          "1 validation error detected: Value '" + value + "' at '" + field +
              "' failed to satisfy constraint: " + constraint};
}

bool is_version_number(const std::string& v) {
  return !v.empty() && v.size() <= 18 && v.find_first_not_of("0123456789") == std::string::npos;
}

Status check_alias_name(const std::string& name) {
  static const std::regex kAlias(R"((?!^[0-9]+$)([a-zA-Z0-9-_]+))");
  if (name.empty() || name.size() > 128 || !std::regex_match(name, kAlias)) {
    return validation(name, "name", "Member must satisfy regular expression pattern: (?!^[0-9]+$)([a-zA-Z0-9-_]+)");
  }
  return Status::Ok();
}

}  // namespace

StatusOr<FunctionVersionPtr> Registry::publish_version(const std::string& account, const std::string& function_name,
                                                       const json& req) {
  if (!req.is_object()) return InvalidRequestContent("Could not parse request body into json");
  std::unique_lock write(write_mu_);
  auto found = find_by_param(account, function_name);
  if (!found.ok()) return found.status();
  auto& [key, entry] = *found;
  const FunctionVersionPtr& latest = entry.latest;
  if (latest->last_update_status == "InProgress") {
    return ResourceConflict("The operation cannot be performed at this time. An update is in progress for resource: " +
                            latest->arn());
  }
  if (latest->last_update_status == "Failed") {
    return ResourceConflict("The operation cannot be performed at this time. The last update of " + latest->arn() +
                            " failed: " + latest->last_update_reason);
  }
  if (auto sha = req.find("CodeSha256"); sha != req.end() && sha->is_string() && *sha != latest->code_sha256) {
    return InvalidParameterValue("CodeSha256 (" + sha->get<std::string>() +
                                 ") is different from current CodeSha256 in $LATEST (" + latest->code_sha256 +
                                 "). Please try again.");
  }
  if (Status s = check_revision(req, latest->revision_id); !s.ok()) return s;
  std::string description = latest->description;
  if (auto d = req.find("Description"); d != req.end() && d->is_string()) {
    if (d->get_ref<const std::string&>().size() > 256) {
      return validation(*d, "description", "Member must have length less than or equal to 256");
    }
    description = *d;
  }
  // Nothing changed since the newest version: Lambda returns that version.
  if (!entry.versions.empty() && entry.versions.rbegin()->second->published_from_revision == latest->revision_id) {
    return entry.versions.rbegin()->second;
  }
  Entry e = entry;
  FunctionVersionPtr v = add_version(e, latest, description);
  if (Status s = commit(key, std::move(e)); !s.ok()) return s;
  write.unlock();  // the snapshotter may answer at once, and snapshotted() takes the lock
  // Answered as published (Pending while the snapshot is taken); a quick snapshotter
  // may already have made it Active in the registry.
  if (awaits_snapshot(v)) snapshot(v);
  return v;
}

StatusOr<std::vector<FunctionVersionPtr>> Registry::versions(const std::string& account,
                                                             const std::string& function_name) const {
  auto found = find_by_param(account, function_name);
  if (!found.ok()) return found.status();
  std::vector<FunctionVersionPtr> out{found->second.latest};
  for (const auto& [n, v] : found->second.versions) out.push_back(v);
  return out;
}

std::string Registry::alias_arn(const std::string& account, const std::string& function,
                                const std::string& alias) const {
  return "arn:aws:lambda:" + region_ + ":" + account + ":function:" + function + ":" + alias;
}

namespace {

// Applies FunctionVersion / Description / RoutingConfig of a request to `a`.
Status apply_alias_fields(const json& req, const std::map<uint64_t, FunctionVersionPtr>& versions, Alias* a) {
  auto exists = [&](const std::string& v) {
    auto n = parse_number<uint64_t>(v);
    return v == "$LATEST" || (is_version_number(v) && n && versions.count(*n) > 0);
  };
  if (auto v = req.find("FunctionVersion"); v != req.end() && !v->is_null()) {
    if (!v->is_string()) return InvalidRequestContent("Could not parse request body into json: FunctionVersion must be a string");
    std::string version = *v;
    if (version != "$LATEST" && !is_version_number(version)) {
      return validation(version, "functionVersion", "Member must satisfy regular expression pattern: (\\$LATEST|[0-9]+)");
    }
    if (!exists(version)) return ResourceNotFound("Function version " + version + " not found.");
    a->function_version = version;
  }
  if (auto d = req.find("Description"); d != req.end() && !d->is_null()) {
    if (!d->is_string()) return InvalidRequestContent("Could not parse request body into json: Description must be a string");
    if (d->get_ref<const std::string&>().size() > 256) {
      return validation(*d, "description", "Member must have length less than or equal to 256");
    }
    a->description = *d;
  }
  if (auto r = req.find("RoutingConfig"); r != req.end() && !r->is_null()) {
    if (!r->is_object()) return InvalidRequestContent("Could not parse request body into json: RoutingConfig must be an object");
    a->additional_version.clear();
    a->additional_weight = 0;
    auto w = r->find("AdditionalVersionWeights");
    if (w != r->end() && !w->is_null()) {
      if (!w->is_object()) return InvalidRequestContent("Could not parse request body into json: AdditionalVersionWeights must be a map");
      if (w->size() > 1) return InvalidParameterValue("Number of items in AdditionalVersionWeights cannot be greater than 1");
      for (auto it = w->begin(); it != w->end(); ++it) {
        if (!it.value().is_number()) return InvalidRequestContent("Could not parse request body into json: weights are numbers");
        double weight = it.value();
        if (!(weight >= 0.0 && weight <= 1.0)) {
          return validation(std::to_string(weight), "routingConfig.additionalVersionWeights",
                            "Map value must satisfy constraint: [Member must have value less than or equal to 1.0, "
                            "Member must have value greater than or equal to 0.0]");
        }
        if (!is_version_number(it.key())) {
          return InvalidParameterValue("$LATEST is not supported for an alias pointing to more than 1 version");
        }
        if (!exists(it.key())) return ResourceNotFound("Function version " + it.key() + " not found.");
        a->additional_version = it.key();
        a->additional_weight = weight;
      }
    }
  }
  if (!a->additional_version.empty()) {
    if (a->function_version == "$LATEST") {
      return InvalidParameterValue("$LATEST is not supported for an alias pointing to more than 1 version");
    }
    if (a->additional_version == a->function_version) {
      return InvalidParameterValue("Invalid function version " + a->additional_version +
                                   ". Function version " + a->additional_version +
                                   " is already included in primary version.");
    }
  }
  return Status::Ok();
}

}  // namespace

StatusOr<Alias> Registry::create_alias(const std::string& account, const std::string& function_name,
                                       const json& req) {
  if (!req.is_object()) return InvalidRequestContent("Could not parse request body into json");
  auto name = req.find("Name");
  if (name == req.end() || !name->is_string()) {
    return Status(400, "ValidationException",
                  "1 validation error detected: Value null at 'name' failed to satisfy constraint: Member must not be null");
  }
  if (Status s = check_alias_name(*name); !s.ok()) return s;
  if (!req.contains("FunctionVersion")) {
    return Status(400, "ValidationException",
                  "1 validation error detected: Value null at 'functionVersion' failed to satisfy constraint: Member must not be null");
  }
  std::lock_guard write(write_mu_);
  auto found = find_by_param(account, function_name);
  if (!found.ok()) return found.status();
  auto& [key, entry] = *found;
  if (entry.aliases.count(*name)) return ResourceConflict("Alias already exists: " + alias_arn(account, key.second, *name));
  Alias a;
  a.name = *name;
  if (Status s = apply_alias_fields(req, entry.versions, &a); !s.ok()) return s;
  a.revision_id = new_uuid();
  Entry e = entry;
  e.aliases[a.name] = a;
  if (Status s = commit(key, std::move(e)); !s.ok()) return s;
  return a;
}

StatusOr<Alias> Registry::update_alias(const std::string& account, const std::string& function_name,
                                       const std::string& alias, const json& req) {
  if (!req.is_object()) return InvalidRequestContent("Could not parse request body into json");
  std::lock_guard write(write_mu_);
  auto found = find_by_param(account, function_name);
  if (!found.ok()) return found.status();
  auto& [key, entry] = *found;
  auto it = entry.aliases.find(alias);
  if (it == entry.aliases.end()) return ResourceNotFound("Alias not found: " + alias_arn(account, key.second, alias));
  if (Status s = check_revision(req, it->second.revision_id); !s.ok()) return s;
  Alias a = it->second;
  if (Status s = apply_alias_fields(req, entry.versions, &a); !s.ok()) return s;
  a.revision_id = new_uuid();
  Entry e = entry;
  e.aliases[a.name] = a;
  if (Status s = commit(key, std::move(e)); !s.ok()) return s;
  return a;
}

StatusOr<Alias> Registry::get_alias(const std::string& account, const std::string& function_name,
                                    const std::string& alias) const {
  auto found = find_by_param(account, function_name);
  if (!found.ok()) return found.status();
  auto it = found->second.aliases.find(alias);
  if (it == found->second.aliases.end()) {
    return ResourceNotFound("Alias not found: " + alias_arn(account, found->first.second, alias));
  }
  return it->second;
}

Status Registry::delete_alias(const std::string& account, const std::string& function_name, const std::string& alias) {
  std::lock_guard write(write_mu_);
  auto found = find_by_param(account, function_name);
  if (!found.ok()) return found.status();
  auto& [key, entry] = *found;
  if (!entry.aliases.count(alias)) return Status::Ok();  // Lambda: deleting a missing alias succeeds
  Entry e = entry;
  e.aliases.erase(alias);
  return commit(key, std::move(e));
}

StatusOr<std::vector<Alias>> Registry::aliases(const std::string& account, const std::string& function_name) const {
  auto found = find_by_param(account, function_name);
  if (!found.ok()) return found.status();
  std::vector<Alias> out;
  for (const auto& [name, a] : found->second.aliases) out.push_back(a);
  return out;
}

Status check_tag_count(size_t count) {
  if (count > kMaxTagsPerFunction) return InvalidParameterValue("Number of tags exceeds resource tag limit.");
  return Status::Ok();
}

StatusOr<std::map<std::string, std::string>> Registry::tags(const std::string& account, const std::string& arn) const {
  if (arn.rfind("arn:", 0) != 0) return InvalidParameterValue("Tags are read from a function ARN; got " + arn);
  auto found = find_by_param(account, arn);
  if (!found.ok()) return found.status();
  return found->second.latest->tags;
}

Status Registry::tag(const std::string& account, const std::string& arn, const std::map<std::string, std::string>& add) {
  if (arn.rfind("arn:", 0) != 0) return InvalidParameterValue("Tags are set on a function ARN; got " + arn);
  std::lock_guard write(write_mu_);
  auto found = find_by_param(account, arn);
  if (!found.ok()) return found.status();
  auto& [key, entry] = *found;
  auto latest = std::make_shared<FunctionVersion>(*entry.latest);
  for (const auto& [k, v] : add) latest->tags[k] = v;
  if (Status s = check_tag_count(latest->tags.size()); !s.ok()) return s;
  Entry e = entry;
  if (e.serving == e.latest) e.serving = latest;  // same revision: the sandbox key does not change
  e.latest = latest;
  return commit(key, std::move(e));
}

Status Registry::untag(const std::string& account, const std::string& arn, const std::vector<std::string>& keys) {
  if (arn.rfind("arn:", 0) != 0) return InvalidParameterValue("Tags are removed from a function ARN; got " + arn);
  std::lock_guard write(write_mu_);
  auto found = find_by_param(account, arn);
  if (!found.ok()) return found.status();
  auto& [key, entry] = *found;
  auto latest = std::make_shared<FunctionVersion>(*entry.latest);
  for (const auto& k : keys) latest->tags.erase(k);
  Entry e = entry;
  if (e.serving == e.latest) e.serving = latest;
  e.latest = latest;
  return commit(key, std::move(e));
}

}  // namespace kiln::registry
