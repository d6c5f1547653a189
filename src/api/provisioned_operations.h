// The Lambda API's provisioned-concurrency operations (Put/Get/Delete/
// ListProvisionedConcurrencyConfig(s)) on a published version or an alias, never on
// $LATEST. Configurations are durable in the store; the worker::Provisioner keeps the
// sandboxes. Served on the frontend's control pool.
#pragma once

#include <string>

#include "api/control_operations.h"
#include "registry/store.h"
#include "worker/provisioner.h"

namespace kiln::api {

class Frontend;

// Registers the four operations (call before serving). `store` and `provisioner` must
// outlive the frontend.
void register_provisioned_operations(Frontend& frontend, registry::Store& store, worker::Provisioner& provisioner);

// Restarts the provisioning of every stored configuration (after Registry::load). A
// configuration whose version or alias is gone is logged and skipped.
void load_provisioned_configs(registry::Store& store, worker::Provisioner& provisioner);

// One operation, as registered (exposed for tests that drive handlers directly).
ControlResult run_provisioned_operation(registry::Store& store, worker::Provisioner& provisioner,
                                        const RouteMatch& match, const std::string& body, const ControlContext& ctx);

}  // namespace kiln::api
