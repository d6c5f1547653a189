#include "registry/function.h"

#include <nlohmann/json.hpp>

namespace kiln::registry {

using nlohmann::json;

namespace {
constexpr RuntimeInfo kRuntimes[] = {
    {"python3.11", "/var/runtime/bootstrap", "python3.11", true},
    {"nodejs20.x", "/var/runtime/bootstrap", "nodejs20.x", true},
    {"provided.al2023", "/var/task/bootstrap", "provided", false},
    {"provided.al2", "/var/task/bootstrap", "provided", false},
};
}  // namespace

const RuntimeInfo* find_runtime(const std::string& name) {
  for (const auto& r : kRuntimes) {
    if (name == r.name) return &r;
  }
  return nullptr;
}

std::string supported_runtimes_list() {
  std::string out;
  for (const auto& r : kRuntimes) {
    if (!out.empty()) out += ", ";
    out += r.name;
  }
  return out;
}

std::string FunctionVersion::arn() const {
  return "arn:aws:lambda:" + region + ":" + account_id + ":function:" + name;
}

json configuration_json(const FunctionVersion& f) {
  json env_vars = json::object();
  for (const auto& [k, v] : f.environment) env_vars[k] = v;
  json c = {
      {"FunctionName", f.name},
      {"FunctionArn", f.version == "$LATEST" ? f.arn() : f.arn() + ":" + f.version},
      {"Runtime", f.runtime},
      {"Role", f.role},
      {"Handler", f.handler},
      {"CodeSize", f.code_size},
      {"Description", f.description},
      {"Timeout", f.timeout_s},
      {"MemorySize", f.memory_mb},
      {"LastModified", f.last_modified},
      {"CodeSha256", f.code_sha256},
      {"Version", f.version},
      {"TracingConfig", {{"Mode", "PassThrough"}}},
      {"RevisionId", f.revision_id},
      {"State", f.state},
      {"LastUpdateStatus", f.last_update_status},
      {"PackageType", "Zip"},
      {"Architectures", json::array({"x86_64"})},
      {"EphemeralStorage", {{"Size", f.ephemeral_mb}}},
      {"SnapStart", snap_start_json(f)},
      {"LoggingConfig", logging_config_json(f)},
  };
  if (!f.environment.empty()) c["Environment"] = {{"Variables", env_vars}};
  if (!f.state_reason.empty()) c["StateReason"] = f.state_reason;
  if (!f.state_reason_code.empty()) c["StateReasonCode"] = f.state_reason_code;
  if (!f.last_update_reason.empty()) c["LastUpdateStatusReason"] = f.last_update_reason;
  if (!f.last_update_reason_code.empty()) c["LastUpdateStatusReasonCode"] = f.last_update_reason_code;
  if (!f.layers.empty()) {
    json layers = json::array();
    for (const auto& l : f.layers) layers.push_back({{"Arn", l.arn}, {"CodeSize", l.code_size}});
    c["Layers"] = layers;
  }
  if (f.handler.empty()) c.erase("Handler");
  return c;
}

namespace {
json layers_json(const FunctionVersion& f) {
  json out = json::array();
  for (const auto& l : f.layers) {
    out.push_back({{"arn", l.arn}, {"code_size", l.code_size}, {"code_hex", l.code_hex}, {"unzipped_size", l.unzipped_size}});
  }
  return out;
}
}  // namespace

json snap_start_json(const FunctionVersion& f) {
  bool on = f.snap_start && f.version != "$LATEST";
  return {{"ApplyOn", f.snap_start ? "PublishedVersions" : "None"}, {"OptimizationStatus", on ? "On" : "Off"}};
}

json logging_config_json(const FunctionVersion& f) {
  json j = {{"LogFormat", f.log_format}, {"LogGroup", f.log_group()}};
  if (!f.application_log_level.empty()) j["ApplicationLogLevel"] = f.application_log_level;
  if (!f.system_log_level.empty()) j["SystemLogLevel"] = f.system_log_level;
  return j;
}

json record_json(const FunctionVersion& f) {
  json env = json::array();
  for (const auto& [k, v] : f.environment) env.push_back({k, v});
  return {
      {"account_id", f.account_id}, {"region", f.region}, {"name", f.name},
      {"version", f.version}, {"runtime", f.runtime}, {"handler", f.handler},
      {"role", f.role}, {"description", f.description}, {"memory_mb", f.memory_mb},
      {"timeout_s", f.timeout_s}, {"ephemeral_mb", f.ephemeral_mb}, {"snap_start", f.snap_start},
      {"environment", env},
      {"log_format", f.log_format}, {"application_log_level", f.application_log_level},
      {"system_log_level", f.system_log_level},
      {"tags", f.tags}, {"code_hex", f.code_hex}, {"code_sha256", f.code_sha256},
      {"code_size", f.code_size}, {"code_unzipped_size", f.code_unzipped_size}, {"revision_id", f.revision_id},
      {"last_modified", f.last_modified},
      {"layers", layers_json(f)},
      {"state", f.state}, {"state_reason", f.state_reason}, {"state_reason_code", f.state_reason_code},
      {"last_update_status", f.last_update_status}, {"last_update_reason", f.last_update_reason},
      {"last_update_reason_code", f.last_update_reason_code},
      {"published_from_revision", f.published_from_revision},
  };
}

FunctionVersion from_record_json(const json& j) {
  FunctionVersion f;
  f.account_id = j.at("account_id");
  f.region = j.at("region");
  f.name = j.at("name");
  f.version = j.at("version");
  f.runtime = j.at("runtime");
  f.handler = j.at("handler");
  f.role = j.at("role");
  f.description = j.at("description");
  f.memory_mb = j.at("memory_mb");
  f.timeout_s = j.at("timeout_s");
  f.ephemeral_mb = j.at("ephemeral_mb");
  f.snap_start = j.value("snap_start", false);  // records from before SnapStart: off
  f.log_format = j.value("log_format", "Text");
  f.application_log_level = j.value("application_log_level", "");
  f.system_log_level = j.value("system_log_level", "");
  for (const auto& kv : j.at("environment")) f.environment.emplace_back(kv.at(0), kv.at(1));
  f.tags = j.at("tags").get<std::map<std::string, std::string>>();
  f.code_hex = j.at("code_hex");
  f.code_sha256 = j.at("code_sha256");
  f.code_size = j.at("code_size");
  f.code_unzipped_size = j.value("code_unzipped_size", uint64_t{0});
  f.revision_id = j.at("revision_id");
  f.last_modified = j.at("last_modified");
  for (const auto& l : j.value("layers", json::array())) {
    f.layers.push_back({l.at("arn"), l.at("code_size"), l.at("code_hex"), {}, l.value("unzipped_size", uint64_t{0})});
  }
  f.state = j.value("state", "Active");
  f.state_reason = j.value("state_reason", "");
  f.state_reason_code = j.value("state_reason_code", "");
  f.last_update_status = j.value("last_update_status", "Successful");
  f.last_update_reason = j.value("last_update_reason", "");
  f.last_update_reason_code = j.value("last_update_reason_code", "");
  f.published_from_revision = j.value("published_from_revision", "");
  return f;
}

}  // namespace kiln::registry
