#include "api/layer_operations.h"
#include "api/control_helpers.h"

#include <nlohmann/json.hpp>

#include "api/frontend.h"

namespace kiln::api {

using nlohmann::json;

namespace {

constexpr const char* kOperations[] = {"PublishLayerVersion", "GetLayerVersion",   "GetLayerVersionByArn",
                                       "ListLayers",          "ListLayerVersions", "DeleteLayerVersion"};



std::string param(const RouteMatch& m, const char* key) {
  auto it = m.params.find(key);
  return it == m.params.end() ? std::string() : it->second;
}

// Content.Location: the frontend's presigned /kiln/code/<account>/<hex>.zip link.
std::string location(const ControlContext& ctx, const registry::LayerVersion& v) {
  if (!ctx.code_url) return "";
  registry::FunctionVersion code_owner;
  code_owner.account_id = v.account_id;
  code_owner.code_hex = v.code_hex;
  return ctx.code_url(code_owner);
}

json list_item_json(const registry::LayerVersion& v) {
  json j = {{"LayerVersionArn", v.version_arn()},
            {"Version", v.version},
            {"Description", v.description},
            {"CreatedDate", v.created_date}};
  if (!v.compatible_runtimes.empty()) j["CompatibleRuntimes"] = v.compatible_runtimes;
  if (!v.compatible_architectures.empty()) j["CompatibleArchitectures"] = v.compatible_architectures;
  if (!v.license_info.empty()) j["LicenseInfo"] = v.license_info;
  return j;
}

registry::LayerListQuery list_query(const RouteMatch& m) {
  registry::LayerListQuery q;
  q.compatible_runtime = query(m, "CompatibleRuntime");
  q.compatible_architecture = query(m, "CompatibleArchitecture");
  q.marker = query(m, "Marker");
  q.max_items = query(m, "MaxItems");
  return q;
}

ControlResult publish(registry::LayerStore& layers, const RouteMatch& m, const std::string& body,
                      const ControlContext& ctx) {
  auto name = registry::parse_layer_name(param(m, "LayerName"), ctx.region, ctx.account);
  if (!name.ok()) {
    if (name.status().type() != "ResourceNotFoundException") return failed(name.status());
    return failed({403, "AccessDeniedException",
                   "User is not authorized to publish versions of layer " + param(m, "LayerName") +
                       " from account " + ctx.account});
  }
  json req = body.empty() ? json::object() : json::parse(body, nullptr, false);
  if (req.is_discarded() || !req.is_object()) {
    return failed(InvalidRequestContent("Could not parse request body into json: the body is not a JSON object"));
  }
  auto request = registry::parse_publish_request(req);
  if (!request.ok()) return failed(request.status());
  auto v = layers.publish(ctx.account, *name, *request);
  if (!v.ok()) return failed(v.status());
  return ok_json(m.success_code, layer_version_json(*v, location(ctx, *v)));
}

ControlResult get(registry::LayerStore& layers, const RouteMatch& m, const ControlContext& ctx) {
  auto name = registry::parse_layer_name(param(m, "LayerName"), ctx.region, ctx.account);
  if (!name.ok()) return failed(name.status());
  auto version = registry::parse_layer_version_number(param(m, "VersionNumber"));
  if (!version.ok()) return failed(version.status());
  auto v = layers.get(ctx.account, *name, *version);
  if (!v.ok()) return failed(v.status());
  return ok_json(200, layer_version_json(*v, location(ctx, *v)));
}

ControlResult get_by_arn(registry::LayerStore& layers, const RouteMatch& m, const ControlContext& ctx) {
  if (!m.query.count("Arn")) {
    return failed({400, "ValidationException",
                   "1 validation error detected: Value null at 'arn' failed to satisfy constraint: Member must "
                   "not be null"});
  }
  auto v = layers.get_by_arn(ctx.account, query(m, "Arn"));
  if (!v.ok()) return failed(v.status());
  return ok_json(200, layer_version_json(*v, location(ctx, *v)));
}

ControlResult list_layers(registry::LayerStore& layers, const RouteMatch& m, const ControlContext& ctx) {
  auto page = layers.list_layers(ctx.account, list_query(m));
  if (!page.ok()) return failed(page.status());
  json items = json::array();
  for (const auto& v : page->items) {
    items.push_back({{"LayerName", v.name}, {"LayerArn", v.layer_arn()}, {"LatestMatchingVersion", list_item_json(v)}});
  }
  json out = {{"Layers", items}};
  if (!page->next_marker.empty()) out["NextMarker"] = page->next_marker;
  return ok_json(200, out);
}

ControlResult list_versions(registry::LayerStore& layers, const RouteMatch& m, const ControlContext& ctx) {
  auto name = registry::parse_layer_name(param(m, "LayerName"), ctx.region, ctx.account);
  if (!name.ok() && name.status().type() == "ResourceNotFoundException") {
    return ok_json(200, {{"LayerVersions", json::array()}});  // nothing of ours by that ARN
  }
  if (!name.ok()) return failed(name.status());
  auto page = layers.list_versions(ctx.account, *name, list_query(m));
  if (!page.ok()) return failed(page.status());
  json items = json::array();
  for (const auto& v : page->items) items.push_back(list_item_json(v));
  json out = {{"LayerVersions", items}};
  if (!page->next_marker.empty()) out["NextMarker"] = page->next_marker;
  return ok_json(200, out);
}

ControlResult remove(registry::LayerStore& layers, const RouteMatch& m, const ControlContext& ctx) {
  auto version = registry::parse_layer_version_number(param(m, "VersionNumber"));
  if (!version.ok()) return failed(version.status());
  auto name = registry::parse_layer_name(param(m, "LayerName"), ctx.region, ctx.account);
  if (!name.ok() && name.status().type() == "ResourceNotFoundException") return {Status::Ok(), 204, ""};
  if (!name.ok()) return failed(name.status());
  if (Status s = layers.remove(ctx.account, *name, *version); !s.ok()) return failed(s);
  return {Status::Ok(), 204, ""};
}

}  // namespace

json layer_version_json(const registry::LayerVersion& v, const std::string& location) {
  json j = {{"Content", {{"Location", location}, {"CodeSha256", v.code_sha256}, {"CodeSize", v.code_size}}},
            {"LayerArn", v.layer_arn()},
            {"LayerVersionArn", v.version_arn()},
            {"Description", v.description},
            {"CreatedDate", v.created_date},
            {"Version", v.version}};
  if (!v.compatible_runtimes.empty()) j["CompatibleRuntimes"] = v.compatible_runtimes;
  if (!v.compatible_architectures.empty()) j["CompatibleArchitectures"] = v.compatible_architectures;
  if (!v.license_info.empty()) j["LicenseInfo"] = v.license_info;
  return j;
}

ControlResult run_layer_operation(registry::LayerStore& layers, const RouteMatch& m, const std::string& body,
                                  const ControlContext& ctx) {
  const std::string& op = m.operation;
  if (op == "PublishLayerVersion") return publish(layers, m, body, ctx);
  if (op == "GetLayerVersion") return get(layers, m, ctx);
  if (op == "GetLayerVersionByArn") return get_by_arn(layers, m, ctx);
  if (op == "ListLayers") return list_layers(layers, m, ctx);
  if (op == "ListLayerVersions") return list_versions(layers, m, ctx);
  if (op == "DeleteLayerVersion") return remove(layers, m, ctx);
  return failed(ServiceError("not a layer operation: " + op));
}

void register_layer_operations(Frontend& frontend, registry::LayerStore& layers) {
  for (const char* op : kOperations) {
    frontend.add_control_operation(op, [&layers](const RouteMatch& m, const std::string& body,
                                                 const ControlContext& ctx) {
      return run_layer_operation(layers, m, body, ctx);
    });
  }
}

}  // namespace kiln::api
