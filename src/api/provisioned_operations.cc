#include "api/provisioned_operations.h"
#include "api/control_helpers.h"

#include <nlohmann/json.hpp>

#include "api/frontend.h"
#include "common/log.h"
#include "common/numbers.h"

namespace kiln::api {

using nlohmann::json;

namespace {



Status not_found() {
  return {404, "ProvisionedConcurrencyConfigNotFoundException", "No Provisioned Concurrency Config found for this function"};
}

// The function (canonical name) and, unless `list`, the qualifier: a published version
// or an alias that exists.
struct Target {
  std::string function;
  std::string qualifier;
};

StatusOr<Target> target(const RouteMatch& m, const ControlContext& ctx, bool list) {
  auto ref = registry::parse_function_ref(m.params.at("FunctionName"), ctx.region, ctx.account);
  if (!ref.ok()) return ref.status();
  auto f = ctx.registry.configuration(ctx.account, ref->name, "");
  if (!f.ok()) return f.status();
  Target t{(*f)->name, query(m, "Qualifier")};
  if (list) return t;
  if (!ref->qualifier.empty()) {
    if (!t.qualifier.empty() && t.qualifier != ref->qualifier) {
      return InvalidParameterValue("The derived qualifier from the function name does not match the specified qualifier.");
    }
    t.qualifier = ref->qualifier;
  }
  if (t.qualifier.empty()) {
    return Status{400, "ValidationException",
                  "1 validation error detected: Value null at 'qualifier' failed to satisfy constraint: Member must "
                  "not be null"};
  }
  if (t.qualifier == "$LATEST") {
    return InvalidParameterValue("Provisioned Concurrency Configs cannot be applied to unpublished function versions.");
  }
  auto v = ctx.registry.configuration(ctx.account, t.function, t.qualifier);
  if (!v.ok()) return v.status();
  return t;
}

std::optional<registry::Store::ProvisionedRow> stored(registry::Store& store, const std::string& account,
                                                      const Target& t) {
  for (auto& row : store.provisioned_configs()) {
    if (row.account == account && row.name == t.function && row.qualifier == t.qualifier) return row;
  }
  return std::nullopt;
}

json config_json(const worker::ProvisionedStatus& s, const std::string& last_modified) {
  json out = {{"RequestedProvisionedConcurrentExecutions", s.requested},
              {"AvailableProvisionedConcurrentExecutions", s.available},
              {"AllocatedProvisionedConcurrentExecutions", s.allocated},
              {"Status", s.status},
              {"LastModified", last_modified}};
  if (!s.reason.empty()) out["StatusReason"] = s.reason;
  return out;
}

ControlResult put(registry::Store& store, worker::Provisioner& p, const RouteMatch& m, const std::string& body,
                  const ControlContext& ctx) {
  json req = body.empty() ? json::object() : json::parse(body, nullptr, false);
  if (req.is_discarded() || !req.is_object()) {
    return failed(InvalidRequestContent("Could not parse request body into json: the body is not a JSON object"));
  }
  auto v = req.find("ProvisionedConcurrentExecutions");
  if (v == req.end() || v->is_null()) {
    return failed({400, "ValidationException",
                   "1 validation error detected: Value null at 'provisionedConcurrentExecutions' failed to satisfy "
                   "constraint: Member must not be null"});
  }
  if (!v->is_number_integer()) {
    return failed(InvalidRequestContent("Could not parse request body into json: ProvisionedConcurrentExecutions "
                                        "must be an integer"));
  }
  if (!v->is_number_unsigned() || v->get<uint64_t>() < 1) {
    return failed({400, "ValidationException",
                   "1 validation error detected: Value '" + v->dump() + "' at 'provisionedConcurrentExecutions' "
                   "failed to satisfy constraint: Member must have value greater than or equal to 1"});
  }
  uint64_t n = v->get<uint64_t>();
  if (n > ctx.concurrency_limit) {
    return failed(InvalidParameterValue("Requested Provisioned Concurrency should not be greater than the "
                                        "account's concurrency limit of " + std::to_string(ctx.concurrency_limit)));
  }
  auto t = target(m, ctx, false);
  if (!t.ok()) return failed(t.status());
  registry::Store::ProvisionedRow row{ctx.account, t->function, t->qualifier, n, registry::lambda_timestamp_now()};
  if (Status s = store.put_provisioned(row); !s.ok()) return failed(s);
  if (Status s = p.put(ctx.account, t->function, t->qualifier, n); !s.ok()) return failed(s);
  auto st = p.status(ctx.account, t->function, t->qualifier);
  return ok_json(202, config_json(*st, row.last_modified));
}

ControlResult list(registry::Store& store, worker::Provisioner& p, const RouteMatch& m, const ControlContext& ctx) {
  auto t = target(m, ctx, true);
  if (!t.ok()) return failed(t.status());
  std::map<std::string, std::string> modified;
  for (auto& row : store.provisioned_configs()) {
    if (row.account == ctx.account && row.name == t->function) modified[row.qualifier] = row.last_modified;
  }
  json configs = json::array();
  std::string marker = query(m, "Marker");
  size_t max = 50;
  if (std::string mi = query(m, "MaxItems"); !mi.empty()) {
    auto n = parse_number<size_t>(mi);
    if (!n || *n < 1 || *n > 50) {
      return failed({400, "ValidationException",
                     "1 validation error detected: Value '" + mi + "' at 'maxItems' failed to satisfy constraint: "
                     "Member must have value between 1 and 50"});
    }
    max = *n;
  }
  std::string last, next;
  for (const auto& [qualifier, s] : p.list(ctx.account, t->function)) {
    if (!marker.empty() && qualifier <= marker) continue;  // the marker is the last qualifier shown
    if (configs.size() == max) {
      next = last;
      break;
    }
    last = qualifier;
    json item = config_json(s, modified[qualifier]);
    item["FunctionArn"] = ctx.registry.alias_arn(ctx.account, t->function, qualifier);
    configs.push_back(std::move(item));
  }
  json out = {{"ProvisionedConcurrencyConfigs", configs}};
  if (!next.empty()) out["NextMarker"] = next;
  return ok_json(200, out);
}

}  // namespace

ControlResult run_provisioned_operation(registry::Store& store, worker::Provisioner& p, const RouteMatch& m,
                                        const std::string& body, const ControlContext& ctx) {
  const std::string& op = m.operation;
  if (op == "PutProvisionedConcurrencyConfig") return put(store, p, m, body, ctx);
  if (op == "ListProvisionedConcurrencyConfigs") return list(store, p, m, ctx);
  if (op == "GetProvisionedConcurrencyConfig" || op == "DeleteProvisionedConcurrencyConfig") {
    auto t = target(m, ctx, false);
    if (!t.ok()) return failed(t.status());
    auto row = stored(store, ctx.account, *t);
    auto st = p.status(ctx.account, t->function, t->qualifier);
    if (!row && !st) return failed(not_found());
    if (op == "DeleteProvisionedConcurrencyConfig") {
      if (Status s = store.delete_provisioned(ctx.account, t->function, t->qualifier); !s.ok()) return failed(s);
      p.remove(ctx.account, t->function, t->qualifier);
      return {Status::Ok(), 204, ""};
    }
    if (!st) return failed(not_found());
    return ok_json(200, config_json(*st, row ? row->last_modified : std::string()));
  }
  return failed(ServiceError("not a provisioned-concurrency operation: " + op));
}

void register_provisioned_operations(Frontend& frontend, registry::Store& store, worker::Provisioner& provisioner) {
  for (const char* op : {"PutProvisionedConcurrencyConfig", "GetProvisionedConcurrencyConfig",
                         "DeleteProvisionedConcurrencyConfig", "ListProvisionedConcurrencyConfigs"}) {
    frontend.add_control_operation(op, [&store, &provisioner](const RouteMatch& m, const std::string& body,
                                                              const ControlContext& ctx) {
      return run_provisioned_operation(store, provisioner, m, body, ctx);
    });
  }
}

void load_provisioned_configs(registry::Store& store, worker::Provisioner& provisioner) {
  for (const auto& row : store.provisioned_configs()) {
    if (Status s = provisioner.put(row.account, row.name, row.qualifier, row.requested); !s.ok()) {
      log::warn("provisioned concurrency of " + row.name + ":" + row.qualifier + " not restored: " + s.message());
    }
  }
}

}  // namespace kiln::api
