#include "registry/registry.h"

#include <nlohmann/json.hpp>

#include <regex>

#include "common/crypto.h"
#include "common/log.h"

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

Status Registry::load() {
  std::unique_lock lock(mu_);
  for (const std::string& text : store_.function_records()) {
    json j = json::parse(text, nullptr, false);
    if (j.is_discarded()) return ServiceError("store holds a corrupt function record");
    auto f = std::make_shared<FunctionVersion>(from_record_json(j));
    if (!code_.contains(f->code_hex)) {
      log::error("function " + f->arn() + " refers to missing code " + f->code_hex + "; skipped");
      continue;
    }
    f->code_dir = code_.tree_path(f->code_hex);
    functions_[{f->account_id, f->name}] = std::move(f);
  }
  return Status::Ok();
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

}  // namespace

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
  if (auto tags = req.find("Tags"); tags != req.end() && !tags->is_null()) {
    if (!tags->is_object()) return InvalidRequestContent("Could not parse request body into json: Tags must be a map");
    for (auto it = tags->begin(); it != tags->end(); ++it) {
      if (!it.value().is_string()) return InvalidRequestContent("Could not parse request body into json: tag values must be strings");
      f->tags[it.key()] = it.value();
    }
  }
  auto code = req.find("Code");
  if (code == req.end() || !code->is_object()) {
    return Status(400, "ValidationException",
            "1 validation error detected: Value null at 'code' failed to satisfy constraint: Member must not be null");
  }
  if (Status s = only_zipfile(*code); !s.ok()) return s;
  if (!code->contains("ZipFile")) return InvalidParameterValue("Please provide a source for function code (Code.ZipFile).");

  std::lock_guard write(write_mu_);
  if (find_latest(account, f->name).ok()) {
    return ResourceConflict("Function already exist: " + f->name);
  }
  auto info = store_zip(code_, (*code)["ZipFile"]);
  if (!info.ok()) return info.status();
  f->code_hex = info->sha256_hex;
  f->code_sha256 = info->sha256_base64;
  f->code_size = info->zip_size;
  f->code_dir = code_.tree_path(f->code_hex);
  f->revision_id = new_uuid();
  f->last_modified = lambda_timestamp_now();
  if (Status s = commit(f); !s.ok()) return s;
  return FunctionVersionPtr(f);
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
  auto ref = parse_function_ref(function_name, region_, account);
  if (!ref.ok()) return ref.status();
  if (!ref->qualifier.empty()) return bad_name(function_name);

  std::lock_guard write(write_mu_);
  auto old = find_latest(account, ref->name);
  if (!old.ok()) return old.status();
  auto f = std::make_shared<FunctionVersion>(**old);
  if (auto rev = req.find("RevisionId"); rev != req.end() && rev->is_string() && *rev != f->revision_id) {
    return PreconditionFailed(
        "The Revision Id provided does not match the latest Revision Id. Call the GetFunction/GetAlias API to "
        "retrieve the latest Revision Id");
  }
  if (code) {
    if (Status s = only_zipfile(req); !s.ok()) return s;
    if (!req.contains("ZipFile")) return InvalidParameterValue("Please provide a source for function code (ZipFile).");
    if (auto arch = req.find("Architectures"); arch != req.end()) {
      json only_arch = {{"Architectures", *arch}};
      if (Status s = apply_configuration(only_arch, false, f.get()); !s.ok()) return s;
    }
    auto info = store_zip(code_, req["ZipFile"]);
    if (!info.ok()) return info.status();
    f->code_hex = info->sha256_hex;
    f->code_sha256 = info->sha256_base64;
    f->code_size = info->zip_size;
    f->code_dir = code_.tree_path(f->code_hex);
  } else {
    if (Status s = apply_configuration(req, /*create=*/false, f.get()); !s.ok()) return s;
  }
  f->revision_id = new_uuid();
  f->last_modified = lambda_timestamp_now();
  if (Status s = commit(f); !s.ok()) return s;
  if (on_retired_) on_retired_(*old);
  return FunctionVersionPtr(f);
}

Status Registry::delete_function(const std::string& account, const std::string& function_name,
                                 const std::string& qualifier) {
  auto ref = parse_function_ref(function_name, region_, account);
  if (!ref.ok()) return ref.status();
  std::string q = !qualifier.empty() ? qualifier : ref->qualifier;
  if (!q.empty() && q != "$LATEST") return not_found(region_, account, ref->name, q);
  if (q == "$LATEST") {
    return InvalidParameterValue("$LATEST version cannot be deleted without deleting the function.");
  }
  FunctionVersionPtr old;
  {
    std::lock_guard write(write_mu_);
    auto found = find_latest(account, ref->name);
    if (!found.ok()) return found.status();
    old = *found;
    if (Status s = store_.delete_function(account, ref->name); !s.ok()) return s;
    std::unique_lock lock(mu_);
    functions_.erase({account, ref->name});
  }
  if (on_retired_) on_retired_(old);
  return Status::Ok();
}

StatusOr<FunctionVersionPtr> Registry::resolve(const std::string& account, const std::string& function_name,
                                               const std::string& qualifier) const {
  auto ref = parse_function_ref(function_name, region_, account);
  if (!ref.ok()) return ref.status();
  if (!qualifier.empty() && !ref->qualifier.empty() && qualifier != ref->qualifier) {
    return InvalidParameterValue("The derived qualifier from the function name does not match the specified qualifier.");
  }
  std::string q = !qualifier.empty() ? qualifier : ref->qualifier;
  auto f = find_latest(account, ref->name);
  if (!f.ok()) return f.status();
  if (!q.empty() && q != "$LATEST") return not_found(region_, account, ref->name, q);
  return f;
}

StatusOr<FunctionVersionPtr> Registry::find_latest(const std::string& account, const std::string& name) const {
  std::shared_lock lock(mu_);
  auto it = functions_.find({account, name});
  if (it == functions_.end()) return not_found(region_, account, name);
  return it->second;
}

Status Registry::commit(const FunctionVersionPtr& f) {
  if (Status s = store_.put_function(f->account_id, f->name, f->version, record_json(*f).dump()); !s.ok()) {
    return s;
  }
  std::unique_lock lock(mu_);
  functions_[{f->account_id, f->name}] = f;
  return Status::Ok();
}

std::vector<FunctionVersionPtr> Registry::list(const std::string& account) const {
  std::shared_lock lock(mu_);
  std::vector<FunctionVersionPtr> out;
  for (auto it = functions_.lower_bound({account, ""}); it != functions_.end() && it->first.first == account; ++it) {
    out.push_back(it->second);
  }
  return out;
}

AccountUsage Registry::usage(const std::string& account) const {
  AccountUsage u;
  for (const auto& f : list(account)) {
    u.total_code_size += f->code_size;
    u.function_count++;
  }
  return u;
}

}  // namespace kiln::registry
