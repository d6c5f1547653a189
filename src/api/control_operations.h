// The Lambda API's control operations (function CRUD, account settings): request JSON
// in, response JSON out. Run on the frontend's control pool, never on the event loop.
#pragma once

#include <filesystem>
#include <functional>
#include <string>

#include "api/router.h"
#include "assignment/assignment.h"
#include "common/status.h"
#include "registry/registry.h"

namespace kiln::api {

struct ControlContext {
  registry::Registry& registry;
  assignment::AssignmentService& assignment;
  std::string account;
  std::string region;
  uint64_t concurrency_limit;
  std::function<std::string(const registry::FunctionVersion&)> code_url;
};

struct ControlResult {
  Status status;
  int http_status = 200;
  std::string body;  // JSON; empty for no body
};

using ControlHandler =
    std::function<ControlResult(const RouteMatch& match, const std::string& body, const ControlContext& ctx)>;

bool is_control_operation(const std::string& operation);
// Versions, aliases and tags (version_operations.cc).
bool is_version_operation(const std::string& operation);
ControlResult run_version_operation(const RouteMatch& match, const std::string& body, const ControlContext& ctx);
ControlResult run_control_operation(const RouteMatch& match, const std::string& body, const ControlContext& ctx);

bool read_file(const std::filesystem::path& path, std::string* out);

}  // namespace kiln::api
