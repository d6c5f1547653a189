#include "api/concurrency_operations.h"
#include "api/control_helpers.h"

#include <nlohmann/json.hpp>

#include "api/frontend.h"

namespace kiln::api {

using nlohmann::json;

namespace {


Status validation(const std::string& value, const std::string& constraint) {
  return {400, "ValidationException",
          "1 validation error detected: Value " + value + " at 'reservedConcurrentExecutions' failed to satisfy "
          "constraint: " + constraint};
}


// The function a FunctionName parameter names, by its canonical name. Reservations are
// per function, so a qualifier is refused.
StatusOr<std::string> function_name(const RouteMatch& m, const ControlContext& ctx) {
  const std::string& param = m.params.at("FunctionName");
  auto ref = registry::parse_function_ref(param, ctx.region, ctx.account);
  if (!ref.ok()) return ref.status();
  if (!ref->qualifier.empty()) {
    return InvalidParameterValue("Reserved concurrency applies to a function, not to a version or alias: " + param);
  }
  auto f = ctx.registry.configuration(ctx.account, ref->name, "");
  if (!f.ok()) return f.status();
  return (*f)->name;
}

ControlResult put(concurrency::Reservations& r, const RouteMatch& m, const std::string& body,
                  const ControlContext& ctx) {
  json req = body.empty() ? json::object() : json::parse(body, nullptr, false);
  if (req.is_discarded() || !req.is_object()) {
    return failed(InvalidRequestContent("Could not parse request body into json: the body is not a JSON object"));
  }
  auto v = req.find("ReservedConcurrentExecutions");
  if (v == req.end() || v->is_null()) return failed(validation("null", "Member must not be null"));
  if (!v->is_number_integer()) {
    return failed(InvalidRequestContent("Could not parse request body into json: ReservedConcurrentExecutions "
                                        "must be an integer"));
  }
  if (!v->is_number_unsigned() && v->get<int64_t>() < 0) {
    return failed(validation("'" + v->dump() + "'", "Member must have value greater than or equal to 0"));
  }
  uint64_t n = v->get<uint64_t>();
  auto name = function_name(m, ctx);
  if (!name.ok()) return failed(name.status());
  if (Status s = r.put(ctx.account, *name, n); !s.ok()) return failed(s);
  return ok_json(200, {{"ReservedConcurrentExecutions", n}});
}

// Runs Kiln's own handler of a wrapped operation.
ControlResult base(const RouteMatch& m, const std::string& body, const ControlContext& ctx) {
  return run_control_operation(m, body, ctx);
}

}  // namespace

ControlResult run_concurrency_operation(concurrency::Reservations& r, const RouteMatch& m, const std::string& body,
                                        const ControlContext& ctx) {
  const std::string& op = m.operation;
  if (op == "PutFunctionConcurrency") return put(r, m, body, ctx);
  if (op == "GetFunctionConcurrency" || op == "DeleteFunctionConcurrency") {
    auto name = function_name(m, ctx);
    if (!name.ok()) return failed(name.status());
    if (op == "DeleteFunctionConcurrency") {
      if (Status s = r.remove(ctx.account, *name); !s.ok()) return failed(s);
      return {Status::Ok(), 204, ""};
    }
    json out = json::object();
    if (auto n = r.get(ctx.account, *name)) out["ReservedConcurrentExecutions"] = *n;
    return ok_json(200, out);
  }
  if (op == "GetAccountSettings") {
    ControlResult res = base(m, body, ctx);
    if (!res.status.ok()) return res;
    json out = json::parse(res.body);
    out["AccountLimit"]["ConcurrentExecutions"] = r.limiter().account_limit();
    out["AccountLimit"]["UnreservedConcurrentExecutions"] = r.limiter().unreserved_limit(ctx.account);
    return ok_json(res.http_status, out);
  }
  if (op == "GetFunction") {
    ControlResult res = base(m, body, ctx);
    if (!res.status.ok()) return res;
    json out = json::parse(res.body);
    auto name = out["Configuration"].value("FunctionName", std::string());
    if (auto n = r.get(ctx.account, name)) out["Concurrency"] = {{"ReservedConcurrentExecutions", *n}};
    return ok_json(res.http_status, out);
  }
  if (op == "DeleteFunction") {
    // The function's canonical name, before it is gone.
    auto name = function_name(m, ctx);
    bool whole = name.ok() && query(m, "Qualifier").empty();
    ControlResult res = base(m, body, ctx);
    if (res.status.ok() && whole) {
      if (Status s = r.remove(ctx.account, *name); !s.ok()) return failed(s);
    }
    return res;
  }
  return failed(ServiceError("not a concurrency operation: " + op));
}

void register_concurrency_operations(Frontend& frontend, concurrency::Reservations& reservations) {
  for (const char* op : {"PutFunctionConcurrency", "GetFunctionConcurrency", "DeleteFunctionConcurrency",
                         "GetAccountSettings", "GetFunction", "DeleteFunction"}) {
    frontend.add_control_operation(op, [&reservations](const RouteMatch& m, const std::string& body,
                                                       const ControlContext& ctx) {
      return run_concurrency_operation(reservations, m, body, ctx);
    });
  }
}

}  // namespace kiln::api
