// Lambda operations on versions, aliases and tags.
#include <nlohmann/json.hpp>

#include "api/control_helpers.h"
#include "api/control_operations.h"
#include "common/crypto.h"
#include "common/numbers.h"

namespace kiln::api {

using nlohmann::json;

namespace {




json alias_json(const registry::Alias& a, const std::string& arn) {
  json out = {{"AliasArn", arn}, {"Name", a.name}, {"FunctionVersion", a.function_version},
              {"Description", a.description}, {"RevisionId", a.revision_id}};
  if (!a.additional_version.empty()) {
    out["RoutingConfig"] = {{"AdditionalVersionWeights", {{a.additional_version, a.additional_weight}}}};
  }
  return out;
}

// Marker / MaxItems paging over a list already in order; the marker is the index.
StatusOr<std::pair<size_t, size_t>> page(const RouteMatch& m, size_t total) {
  size_t max_items = 50;
  std::string max = query(m, "MaxItems");
  if (!max.empty()) {
    auto n = parse_number<size_t>(max);
    if (!n || *n < 1 || *n > 10000) {
      return Status(400, "ValidationException",
                    "1 validation error detected: Value '" + max +
                        "' at 'maxItems' failed to satisfy constraint: Member must have value between 1 and 10000");
    }
    max_items = *n;
  }
  size_t start = 0;
  std::string marker = query(m, "Marker");
  if (!marker.empty()) {
    std::string decoded;
    std::optional<size_t> n;
    if (!crypto::base64_decode(marker, &decoded) || !(n = parse_number<size_t>(decoded)) || *n > total) {
      return InvalidParameterValue("Invalid marker: " + marker);
    }
    start = *n;
  }
  return std::make_pair(start, std::min(total, start + max_items));
}

void add_next_marker(json& out, size_t end, size_t total) {
  if (end < total) out["NextMarker"] = crypto::base64(std::to_string(end));
}

}  // namespace

bool is_version_operation(const std::string& op) {
  static const char* kOps[] = {"PublishVersion", "ListVersionsByFunction", "CreateAlias", "GetAlias", "UpdateAlias",
                               "DeleteAlias", "ListAliases", "TagResource", "UntagResource", "ListTags"};
  for (const char* o : kOps) {
    if (op == o) return true;
  }
  return false;
}

ControlResult run_version_operation(const RouteMatch& m, const std::string& body, const ControlContext& ctx) {
  const std::string& op = m.operation;
  auto& reg = ctx.registry;
  if (op == "ListVersionsByFunction") {
    auto all = reg.versions(ctx.account, m.params.at("FunctionName"));
    if (!all.ok()) return failed(all.status());
    auto range = page(m, all->size());
    if (!range.ok()) return failed(range.status());
    json list = json::array();
    for (size_t i = range->first; i < range->second; ++i) list.push_back(registry::configuration_json(*(*all)[i]));
    json out = {{"Versions", list}};
    add_next_marker(out, range->second, all->size());
    return ok_json(200, out);
  }
  if (op == "ListAliases") {
    auto all = reg.aliases(ctx.account, m.params.at("FunctionName"));
    if (!all.ok()) return failed(all.status());
    std::string only = query(m, "FunctionVersion");
    std::vector<registry::Alias> kept;
    for (auto& a : *all) {
      if (only.empty() || a.function_version == only) kept.push_back(a);
    }
    auto range = page(m, kept.size());
    if (!range.ok()) return failed(range.status());
    auto ref = registry::parse_function_ref(m.params.at("FunctionName"), ctx.region, ctx.account);
    json list = json::array();
    for (size_t i = range->first; i < range->second; ++i) {
      list.push_back(alias_json(kept[i], reg.alias_arn(ctx.account, ref->name, kept[i].name)));
    }
    json out = {{"Aliases", list}};
    add_next_marker(out, range->second, kept.size());
    return ok_json(200, out);
  }
  if (op == "GetAlias" || op == "DeleteAlias") {
    const std::string& fn = m.params.at("FunctionName");
    const std::string& name = m.params.at("Name");
    if (op == "DeleteAlias") {
      Status s = reg.delete_alias(ctx.account, fn, name);
      return s.ok() ? ControlResult{Status::Ok(), 204, ""} : failed(s);
    }
    auto a = reg.get_alias(ctx.account, fn, name);
    if (!a.ok()) return failed(a.status());
    auto ref = registry::parse_function_ref(fn, ctx.region, ctx.account);
    return ok_json(200, alias_json(*a, reg.alias_arn(ctx.account, ref->name, a->name)));
  }
  if (op == "ListTags") {
    auto tags = reg.tags(ctx.account, m.params.at("Resource"));
    if (!tags.ok()) return failed(tags.status());
    return ok_json(200, json{{"Tags", *tags}});
  }
  if (op == "UntagResource") {
    std::vector<std::string> keys;
    for (const auto& [k, v] : m.query_list) {
      if (k == "tagKeys") keys.push_back(v);
    }
    Status s = reg.untag(ctx.account, m.params.at("Resource"), keys);
    return s.ok() ? ControlResult{Status::Ok(), 204, ""} : failed(s);
  }

  auto req = parse_body(body);
  if (!req.ok()) return failed(req.status());
  if (op == "PublishVersion") {
    auto v = reg.publish_version(ctx.account, m.params.at("FunctionName"), *req);
    if (!v.ok()) return failed(v.status());
    return ok_json(201, registry::configuration_json(**v));
  }
  if (op == "CreateAlias" || op == "UpdateAlias") {
    const std::string& fn = m.params.at("FunctionName");
    auto a = op == "CreateAlias" ? reg.create_alias(ctx.account, fn, *req)
                                 : reg.update_alias(ctx.account, fn, m.params.at("Name"), *req);
    if (!a.ok()) return failed(a.status());
    auto ref = registry::parse_function_ref(fn, ctx.region, ctx.account);
    return ok_json(op == "CreateAlias" ? 201 : 200, alias_json(*a, reg.alias_arn(ctx.account, ref->name, a->name)));
  }
  if (op == "TagResource") {
    auto tags = req->find("Tags");
    if (tags == req->end() || !tags->is_object()) {
      return failed(Status(400, "ValidationException",
                           "1 validation error detected: Value null at 'tags' failed to satisfy constraint: Member must not be null"));
    }
    std::map<std::string, std::string> add;
    for (auto it = tags->begin(); it != tags->end(); ++it) {
      if (!it.value().is_string()) return failed(InvalidRequestContent("Could not parse request body into json: tag values must be strings"));
      add[it.key()] = it.value();
    }
    Status s = reg.tag(ctx.account, m.params.at("Resource"), add);
    return s.ok() ? ControlResult{Status::Ok(), 204, ""} : failed(s);
  }
  return failed(ServiceError("unrouted version operation " + op));
}

}  // namespace kiln::api
