// The `kiln` CLI's client for the admin API: finds the endpoint and the root account's
// credentials, signs POST /admin/<Action> with SigV4 (service "kiln") and returns the
// JSON result or the server's error.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

#include <nlohmann/json.hpp>

#include "api/sigv4.h"
#include "common/status.h"

namespace kiln::cli {

struct AdminEndpoint {
  std::string host = "127.0.0.1";
  uint16_t port = 9001;
  std::string region = "us-east-1";
  api::Credential key;
};

// endpoint_url: "http://HOST:PORT" (https is refused). Credentials: env
// KILN_ACCESS_KEY_ID/KILN_SECRET_ACCESS_KEY if both set, else the [kiln] profile of
// data_dir/credentials (its region too, unless `region` is non-empty).
StatusOr<AdminEndpoint> resolve_admin_endpoint(const std::string& endpoint_url, const std::filesystem::path& data_dir,
                                               const std::string& region);

// One signed call. Blocking; 30 s timeout. A non-2xx answer becomes a Status with the
// server's error type and message.
StatusOr<nlohmann::json> call_admin(const AdminEndpoint& endpoint, const std::string& action,
                                    const nlohmann::json& args);

// `kiln status|sandboxes|dead-letters|credentials ...`; argv starts at the subcommand.
// Returns the process exit code.
int run_admin_command(int argc, char** argv);

}  // namespace kiln::cli
