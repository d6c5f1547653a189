// A function version's configuration: an immutable snapshot shared by the control
// plane (registry), the invoke path (api, assignment) and the worker that starts its
// sandboxes. A change of code or configuration makes a new snapshot with a new
// revision; sandboxes are keyed by it, so old code never serves after an update.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace kiln::registry {

struct FunctionVersion {
  std::string account_id;
  std::string region;
  std::string name;
  std::string version = "$LATEST";
  std::string runtime;
  std::string handler;
  std::string role;
  std::string description;
  uint32_t memory_mb = 128;
  uint32_t timeout_s = 3;
  uint32_t ephemeral_mb = 512;
  // SnapStart {ApplyOn: PublishedVersions}: each published version is initialized once
  // and its sandboxes are restored from a snapshot of that (Kiln's snapshotter).
  bool snap_start = false;
  // LoggingConfig: "Text" or "JSON"; the levels are set (default INFO) only with JSON.
  std::string log_format = "Text";
  std::string application_log_level;  // TRACE DEBUG INFO WARN ERROR FATAL
  std::string system_log_level;       // DEBUG INFO WARN
  std::vector<std::pair<std::string, std::string>> environment;  // user variables
  std::map<std::string, std::string> tags;
  std::string code_hex;      // CodeStore identity
  std::string code_sha256;   // base64, Lambda's CodeSha256
  uint64_t code_size = 0;
  uint64_t code_unzipped_size = 0;
  std::string revision_id;   // UUID, new on every change
  std::string last_modified; // "2026-11-28T04:30:00.000+0000"
  std::filesystem::path code_dir;  // extracted tree (derived from code_hex at load)

  // Layers, in order (bound at /opt, later ones win). Trees derived at load.
  struct Layer {
    std::string arn;  // layer version ARN
    uint64_t code_size = 0;
    std::string code_hex;
    std::filesystem::path dir;
    uint64_t unzipped_size = 0;
  };
  std::vector<Layer> layers;

  // Lifecycle as Lambda reports it. State: Pending, Active, Failed; LastUpdateStatus:
  // InProgress, Successful, Failed. Not part of the sandbox key.
  std::string state = "Active";
  std::string state_reason;
  std::string state_reason_code;
  std::string last_update_status = "Successful";
  std::string last_update_reason;
  std::string last_update_reason_code;
  // For published versions: the $LATEST revision they were published from.
  std::string published_from_revision;

  // arn:aws:lambda:REGION:ACCOUNT:function:NAME
  std::string arn() const;
  // Sandboxes of this exact code and configuration share this key.
  std::string sandbox_key() const { return arn() + ":" + version + "#" + revision_id; }
  std::string log_group() const { return "/aws/lambda/" + name; }
};

using FunctionVersionPtr = std::shared_ptr<const FunctionVersion>;

// Lambda's FunctionConfiguration shape.
nlohmann::json configuration_json(const FunctionVersion& f);
// Lambda's SnapStartResponse shape: ApplyOn as configured; OptimizationStatus On only
// for a published version of a SnapStart function ($LATEST is never snapshotted).
nlohmann::json snap_start_json(const FunctionVersion& f);
// Lambda's LoggingConfig shape.
nlohmann::json logging_config_json(const FunctionVersion& f);
// Kiln's durable record (all fields) and back.
nlohmann::json record_json(const FunctionVersion& f);
FunctionVersion from_record_json(const nlohmann::json& j);

// Runtimes Kiln ships, with what the sandbox starts for each.
struct RuntimeInfo {
  const char* name;
  const char* bootstrap;  // path inside the sandbox
  const char* runtime_dir_name;  // folder under the runtimes directory bound at /var/runtime
  bool needs_handler;
};
const RuntimeInfo* find_runtime(const std::string& name);
std::string supported_runtimes_list();

}  // namespace kiln::registry
