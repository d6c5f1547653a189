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
      {"State", "Active"},
      {"LastUpdateStatus", "Successful"},
      {"PackageType", "Zip"},
      {"Architectures", json::array({"x86_64"})},
      {"EphemeralStorage", {{"Size", f.ephemeral_mb}}},
      {"SnapStart", {{"ApplyOn", "None"}, {"OptimizationStatus", "Off"}}},
      {"LoggingConfig", {{"LogFormat", "Text"}, {"LogGroup", f.log_group()}}},
  };
  if (!f.environment.empty()) c["Environment"] = {{"Variables", env_vars}};
  if (f.handler.empty()) c.erase("Handler");
  return c;
}

json record_json(const FunctionVersion& f) {
  json env = json::array();
  for (const auto& [k, v] : f.environment) env.push_back({k, v});
  return {
      {"account_id", f.account_id}, {"region", f.region}, {"name", f.name},
      {"version", f.version}, {"runtime", f.runtime}, {"handler", f.handler},
      {"role", f.role}, {"description", f.description}, {"memory_mb", f.memory_mb},
      {"timeout_s", f.timeout_s}, {"ephemeral_mb", f.ephemeral_mb}, {"environment", env},
      {"tags", f.tags}, {"code_hex", f.code_hex}, {"code_sha256", f.code_sha256},
      {"code_size", f.code_size}, {"revision_id", f.revision_id},
      {"last_modified", f.last_modified},
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
  for (const auto& kv : j.at("environment")) f.environment.emplace_back(kv.at(0), kv.at(1));
  f.tags = j.at("tags").get<std::map<std::string, std::string>>();
  f.code_hex = j.at("code_hex");
  f.code_sha256 = j.at("code_sha256");
  f.code_size = j.at("code_size");
  f.revision_id = j.at("revision_id");
  f.last_modified = j.at("last_modified");
  return f;
}

}  // namespace kiln::registry
