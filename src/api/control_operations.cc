#include "api/control_operations.h"
#include "api/control_helpers.h"

#include <nlohmann/json.hpp>

#include <fstream>
#include <set>
#include <sstream>

#include "common/crypto.h"
#include "common/numbers.h"

namespace kiln::api {

using nlohmann::json;

namespace {




ControlResult get_function(const RouteMatch& m, const ControlContext& ctx, bool configuration_only) {
  auto f = ctx.registry.configuration(ctx.account, m.params.at("FunctionName"), query(m, "Qualifier"));
  if (!f.ok()) return failed(f.status());
  json config = registry::configuration_json(**f);
  if (configuration_only) return ok_json(200, config);
  json out = {{"Configuration", config},
              {"Code", {{"RepositoryType", "S3"}, {"Location", ctx.code_url(**f)}}}};
  if (!(*f)->tags.empty()) out["Tags"] = (*f)->tags;
  return ok_json(200, out);
}

ControlResult list_functions(const RouteMatch& m, const ControlContext& ctx) {
  int64_t max_items = 50;
  std::string max = query(m, "MaxItems");
  if (!max.empty()) {
    auto n = parse_number<int64_t>(max);
    if (!n || *n < 1 || *n > 10000) {
      return failed({400, "ValidationException",
                     "1 validation error detected: Value '" + max +
                         "' at 'maxItems' failed to satisfy constraint: Member must have value between 1 and 10000"});
    }
    max_items = *n;
  }
  std::string after;
  std::string marker = query(m, "Marker");
  if (!marker.empty() && !crypto::base64_decode(marker, &after)) {
    return failed(InvalidParameterValue("Invalid marker: " + marker));
  }
  // The marker is the last name of the previous page: the next page starts after it,
  // whatever was created or deleted in between.
  auto page = ctx.registry.list_page(ctx.account, after, static_cast<size_t>(max_items));
  json functions = json::array();
  for (const auto& f : page.functions) functions.push_back(registry::configuration_json(*f));
  json out = {{"Functions", functions}};
  if (page.more) out["NextMarker"] = crypto::base64(page.functions.back()->name);
  return ok_json(200, out);
}

ControlResult account_settings(const ControlContext& ctx) {
  auto usage = ctx.registry.usage(ctx.account);
  json out = {{"AccountLimit",
               {{"TotalCodeSize", 80530636800ULL},
                {"CodeSizeUnzipped", 262144000},
                {"CodeSizeZipped", 52428800},
                {"ConcurrentExecutions", ctx.concurrency_limit},
                {"UnreservedConcurrentExecutions", ctx.concurrency_limit}}},
              {"AccountUsage", {{"TotalCodeSize", usage.total_code_size}, {"FunctionCount", usage.function_count}}}};
  return ok_json(200, out);
}

}  // namespace

bool is_control_operation(const std::string& op) {
  static const std::set<std::string> kOps = {
      "CreateFunction", "GetFunction", "GetFunctionConfiguration", "ListFunctions", "UpdateFunctionCode",
      "UpdateFunctionConfiguration", "DeleteFunction", "GetAccountSettings"};
  return kOps.count(op) > 0 || is_version_operation(op);
}

ControlResult run_control_operation(const RouteMatch& m, const std::string& body, const ControlContext& ctx) {
  const std::string& op = m.operation;
  if (is_version_operation(op)) return run_version_operation(m, body, ctx);
  if (op == "GetFunction") return get_function(m, ctx, false);
  if (op == "GetFunctionConfiguration") return get_function(m, ctx, true);
  if (op == "ListFunctions") return list_functions(m, ctx);
  if (op == "GetAccountSettings") return account_settings(ctx);
  if (op == "DeleteFunction") {
    Status s = ctx.registry.delete_function(ctx.account, m.params.at("FunctionName"), query(m, "Qualifier"));
    if (!s.ok()) return failed(s);
    return {Status::Ok(), 204, ""};
  }
  auto req = parse_body(body);
  if (!req.ok()) return failed(req.status());
  StatusOr<registry::FunctionVersionPtr> f = ServiceError("unreachable");
  if (op == "CreateFunction") {
    f = ctx.registry.create_function(ctx.account, *req);
  } else if (op == "UpdateFunctionCode") {
    f = ctx.registry.update_code(ctx.account, m.params.at("FunctionName"), *req);
  } else if (op == "UpdateFunctionConfiguration") {
    f = ctx.registry.update_configuration(ctx.account, m.params.at("FunctionName"), *req);
  }
  if (!f.ok()) return failed(f.status());
  return ok_json(m.success_code, registry::configuration_json(**f));
}

bool read_file(const std::filesystem::path& path, std::string* out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::ostringstream ss;
  ss << in.rdbuf();
  *out = ss.str();
  return true;
}

}  // namespace kiln::api
