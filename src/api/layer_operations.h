// The Lambda API's layer operations: PublishLayerVersion, GetLayerVersion,
// GetLayerVersionByArn, ListLayers, ListLayerVersions and DeleteLayerVersion, served
// from a LayerStore on the frontend's control pool. Layer permissions
// (Add/Get/RemoveLayerVersionPermission) are not implemented: layers are private to
// their account.
#pragma once

#include <string>

#include <nlohmann/json_fwd.hpp>

#include "api/control_operations.h"
#include "registry/layers.h"

namespace kiln::api {

class Frontend;

// Registers the six operations on `frontend` (call before serving). `layers` must
// outlive the frontend.
void register_layer_operations(Frontend& frontend, registry::LayerStore& layers);

// One operation, as registered (exposed for tests that drive handlers directly).
ControlResult run_layer_operation(registry::LayerStore& layers, const RouteMatch& match, const std::string& body,
                                  const ControlContext& ctx);

// GetLayerVersion's response shape; `location` is Content.Location.
nlohmann::json layer_version_json(const registry::LayerVersion& v, const std::string& location);

}  // namespace kiln::api
