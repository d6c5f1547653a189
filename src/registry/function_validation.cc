// Validation of a function's configuration fields, with the errors Lambda gives:
// model constraints (ranges, patterns) as ValidationException, semantic refusals as
// InvalidParameterValueException.
#include <nlohmann/json.hpp>

#include <chrono>
#include <ctime>
#include <regex>
#include <set>

#include "common/crypto.h"
#include "registry/registry.h"

namespace kiln::registry {

using nlohmann::json;

namespace {

Status validation(const std::string& value, const std::string& field, const std::string& constraint) {
  return {400, "ValidationException",
          "1 validation error detected: Value '" + value + "' at '" + field +
              "' failed to satisfy constraint: " + constraint};
}

// Reads an optional string member; a non-string is a malformed request.
Status get_string(const json& req, const char* key, std::string* out, bool* present) {
  *present = false;
  auto it = req.find(key);
  if (it == req.end() || it->is_null()) return Status::Ok();
  if (!it->is_string()) return InvalidRequestContent(std::string("Could not parse request body into json: ") + key + " must be a string");
  *out = it->get<std::string>();
  *present = true;
  return Status::Ok();
}

Status get_int(const json& req, const char* key, int64_t* out, bool* present) {
  *present = false;
  auto it = req.find(key);
  if (it == req.end() || it->is_null()) return Status::Ok();
  if (!it->is_number_integer()) return InvalidRequestContent(std::string("Could not parse request body into json: ") + key + " must be an integer");
  *out = it->get<int64_t>();
  *present = true;
  return Status::Ok();
}

Status check_range(int64_t v, int64_t lo, int64_t hi, const char* field) {
  if (v < lo) return validation(std::to_string(v), field, "Member must have value greater than or equal to " + std::to_string(lo));
  if (v > hi) return validation(std::to_string(v), field, "Member must have value less than or equal to " + std::to_string(hi));
  return Status::Ok();
}

const std::set<std::string>& reserved_env_keys() {
  static const std::set<std::string> keys = {
      "_HANDLER", "_X_AMZN_TRACE_ID", "AWS_DEFAULT_REGION", "AWS_REGION", "AWS_EXECUTION_ENV",
      "AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "AWS_LAMBDA_FUNCTION_VERSION",
      "AWS_LAMBDA_INITIALIZATION_TYPE", "AWS_LAMBDA_LOG_GROUP_NAME", "AWS_LAMBDA_LOG_STREAM_NAME",
      "AWS_ACCESS_KEY", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
      "AWS_LAMBDA_RUNTIME_API", "LAMBDA_TASK_ROOT", "LAMBDA_RUNTIME_DIR"};
  return keys;
}

Status apply_environment(const json& env, FunctionVersion* f) {
  if (env.is_null()) return Status::Ok();
  if (!env.is_object()) return InvalidRequestContent("Could not parse request body into json: Environment must be an object");
  auto vars = env.find("Variables");
  if (vars == env.end() || vars->is_null()) {
    f->environment.clear();
    return Status::Ok();
  }
  if (!vars->is_object()) return InvalidRequestContent("Could not parse request body into json: Environment.Variables must be a map");
  static const std::regex kKey("[a-zA-Z]([a-zA-Z0-9_])+");
  std::vector<std::pair<std::string, std::string>> out;
  std::string reserved;
  size_t total = 0;
  for (auto it = vars->begin(); it != vars->end(); ++it) {
    if (!it.value().is_string()) return InvalidRequestContent("Could not parse request body into json: environment variable values must be strings");
    if (!std::regex_match(it.key(), kKey)) {
      return validation(it.key(), "environment.variables", "Member must satisfy regular expression pattern: [a-zA-Z]([a-zA-Z0-9_])+");
    }
    if (reserved_env_keys().count(it.key())) reserved += (reserved.empty() ? "" : ", ") + it.key();
    total += it.key().size() + it.value().get<std::string>().size();
    out.emplace_back(it.key(), it.value().get<std::string>());
  }
  if (!reserved.empty()) {
    return InvalidParameterValue(
        "Lambda was unable to configure your environment variables because the environment variables you have "
        "provided contains reserved keys that are currently not supported for modification. Reserved keys used in "
        "this request: " + reserved);
  }
  if (total > 4096) {
    return InvalidParameterValue(
        "Lambda was unable to configure your environment variables because the environment variables you have "
        "provided exceeded the 4KB limit. String measured: " + std::to_string(total));
  }
  f->environment = std::move(out);
  return Status::Ok();
}

}  // namespace

// LoggingConfig {LogFormat, ApplicationLogLevel, SystemLogLevel, LogGroup}: the levels
// need JSON (and default to INFO with it); Kiln keeps logs in /aws/lambda/NAME only.
static Status apply_logging_config(const json& c, FunctionVersion* f) {
  if (!c.is_object()) return InvalidRequestContent("Could not parse request body into json: LoggingConfig must be an object");
  auto field = [&](const char* name, std::initializer_list<const char*> allowed, std::string* out) -> Status {
    auto it = c.find(name);
    if (it == c.end() || it->is_null()) return {};
    std::string v = it->is_string() ? it->get<std::string>() : it->dump();
    std::string set;
    for (const char* a : allowed) {
      if (v == a) {
        *out = v;
        return {};
      }
      set += std::string(set.empty() ? "" : ", ") + a;
    }
    std::string member(name);
    member[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(member[0])));
    return validation(v, "loggingConfig." + member, "Member must satisfy enum value set: [" + set + "]");
  };
  std::string format = f->log_format, app = f->application_log_level, sys = f->system_log_level;
  if (Status st = field("LogFormat", {"JSON", "Text"}, &format); !st.ok()) return st;
  std::string new_app, new_sys;
  if (Status st = field("ApplicationLogLevel", {"TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"}, &new_app); !st.ok()) return st;
  if (Status st = field("SystemLogLevel", {"DEBUG", "INFO", "WARN"}, &new_sys); !st.ok()) return st;
  if (format == "Text" && (!new_app.empty() || !new_sys.empty())) {
    return InvalidParameterValue("To set ApplicationLogLevel or SystemLogLevel, LogFormat must be JSON.");
  }
  if (auto it = c.find("LogGroup"); it != c.end() && !it->is_null() && *it != f->log_group()) {
    return InvalidParameterValue("Kiln keeps function logs in the log group " + f->log_group() + " only.");
  }
  f->log_format = format;
  if (format == "Text") {
    f->application_log_level.clear();
    f->system_log_level.clear();
  } else {
    f->application_log_level = !new_app.empty() ? new_app : app.empty() ? "INFO" : app;
    f->system_log_level = !new_sys.empty() ? new_sys : sys.empty() ? "INFO" : sys;
  }
  return {};
}

// SnapStart {ApplyOn}: the model's enum (PublishedVersions, None); an object without
// ApplyOn turns SnapStart off.
static Status apply_snap_start(const json& c, FunctionVersion* f) {
  if (!c.is_object()) return InvalidRequestContent("Could not parse request body into json: SnapStart must be an object");
  auto it = c.find("ApplyOn");
  if (it == c.end() || it->is_null()) {
    f->snap_start = false;
    return {};
  }
  std::string v = it->is_string() ? it->get<std::string>() : it->dump();
  if (v != "PublishedVersions" && v != "None") {
    return validation(v, "snapStart.applyOn", "Member must satisfy enum value set: [PublishedVersions, None]");
  }
  f->snap_start = v == "PublishedVersions";
  return {};
}

Status apply_configuration(const json& req, bool create, FunctionVersion* f) {
  bool present = false;
  std::string s;
  int64_t n = 0;

  if (Status st = get_string(req, "Runtime", &s, &present); !st.ok()) return st;
  if (present) {
    if (!find_runtime(s)) {
      return InvalidParameterValue("The runtime parameter of " + s + " is not supported by Kiln. Supported runtimes: " +
                                   supported_runtimes_list());
    }
    f->runtime = s;
  } else if (create) {
    return InvalidParameterValue("Runtime is required for .zip file archive functions (PackageType Zip).");
  }

  if (Status st = get_string(req, "Role", &s, &present); !st.ok()) return st;
  if (present) {
    static const std::regex kRole(R"(arn:(aws[a-zA-Z-]*)?:iam::\d{12}:role/?[a-zA-Z_0-9+=,.@\-_/]+)");
    if (!std::regex_match(s, kRole)) {
      return validation(s, "role", "Member must satisfy regular expression pattern: arn:(aws[a-zA-Z-]*)?:iam::\\d{12}:role/?[a-zA-Z_0-9+=,.@\\-_/]+");
    }
    f->role = s;
  } else if (create) {
    return validation("null", "role", "Member must not be null");
  }

  if (Status st = get_string(req, "Handler", &s, &present); !st.ok()) return st;
  if (present) {
    static const std::regex kHandler(R"([^\s]+)");
    if (s.size() > 128 || !std::regex_match(s, kHandler)) {
      return validation(s, "handler", "Member must satisfy regular expression pattern: [^\\s]+ and have length less than or equal to 128");
    }
    f->handler = s;
  }
  if (f->handler.empty() && find_runtime(f->runtime) && find_runtime(f->runtime)->needs_handler) {
    return InvalidParameterValue("Handler is required for runtime " + f->runtime + ".");
  }

  if (Status st = get_string(req, "Description", &s, &present); !st.ok()) return st;
  if (present) {
    if (s.size() > 256) return validation(s, "description", "Member must have length less than or equal to 256");
    f->description = s;
  }
  if (Status st = get_int(req, "MemorySize", &n, &present); !st.ok()) return st;
  if (present) {
    if (Status st = check_range(n, 128, 10240, "memorySize"); !st.ok()) return st;
    f->memory_mb = static_cast<uint32_t>(n);
  }
  if (Status st = get_int(req, "Timeout", &n, &present); !st.ok()) return st;
  if (present) {
    if (Status st = check_range(n, 1, 900, "timeout"); !st.ok()) return st;
    f->timeout_s = static_cast<uint32_t>(n);
  }
  if (auto it = req.find("EphemeralStorage"); it != req.end() && !it->is_null()) {
    if (!it->is_object() || !it->contains("Size") || !(*it)["Size"].is_number_integer()) {
      return InvalidRequestContent("Could not parse request body into json: EphemeralStorage.Size must be an integer");
    }
    n = (*it)["Size"].get<int64_t>();
    if (Status st = check_range(n, 512, 10240, "ephemeralStorage.size"); !st.ok()) return st;
    f->ephemeral_mb = static_cast<uint32_t>(n);
  }
  if (auto it = req.find("LoggingConfig"); it != req.end() && !it->is_null()) {
    if (Status st = apply_logging_config(*it, f); !st.ok()) return st;
  }
  if (auto it = req.find("Environment"); it != req.end()) {
    if (Status st = apply_environment(*it, f); !st.ok()) return st;
  }
  if (auto it = req.find("SnapStart"); it != req.end() && !it->is_null()) {
    if (Status st = apply_snap_start(*it, f); !st.ok()) return st;
  }
  if (auto it = req.find("Architectures"); it != req.end() && !it->is_null()) {
    if (!it->is_array() || it->size() != 1 || !(*it)[0].is_string()) {
      return validation(it->dump(), "architectures", "Member must have length less than or equal to 1");
    }
    if ((*it)[0] != "x86_64") {
      return InvalidParameterValue("Kiln runs x86_64 functions only; architecture " + (*it)[0].get<std::string>() +
                                   " is not supported on this host.");
    }
  }
  if (auto it = req.find("PackageType"); it != req.end() && !it->is_null() && *it != "Zip") {
    return InvalidParameterValue("Kiln supports PackageType Zip only.");
  }
  return Status::Ok();
}

Status check_revision(const json& req, const std::string& current) {
  auto rev = req.find("RevisionId");
  if (rev == req.end() || !rev->is_string() || *rev == current) return Status::Ok();
  return PreconditionFailed(
      "The Revision Id provided does not match the latest Revision Id. Call the GetFunction/GetAlias API to "
      "retrieve the latest Revision Id");
}

std::string lambda_timestamp_now() {
  auto now = std::chrono::system_clock::now();
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::time_t t = std::chrono::system_clock::to_time_t(now);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[40];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  char out[64];
  std::snprintf(out, sizeof out, "%s.%03d+0000", buf, static_cast<int>(ms));
  return out;
}

std::string new_uuid() {
  std::string r = crypto::hex(crypto::random_bytes(16));
  r[12] = '4';
  r[16] = "89ab"[r[16] % 4];
  return r.substr(0, 8) + "-" + r.substr(8, 4) + "-" + r.substr(12, 4) + "-" + r.substr(16, 4) + "-" + r.substr(20);
}

}  // namespace kiln::registry
