// The Lambda API's reserved-concurrency operations (Put/Get/DeleteFunctionConcurrency),
// and the concurrency fields of GetFunction (Concurrency) and GetAccountSettings
// (UnreservedConcurrentExecutions), served from concurrency::Reservations on the
// frontend's control pool. DeleteFunction of a whole function also drops its
// reservation, as Lambda does.
#pragma once

#include <string>

#include "api/control_operations.h"
#include "concurrency/reservations.h"

namespace kiln::api {

class Frontend;

// Registers PutFunctionConcurrency, GetFunctionConcurrency, DeleteFunctionConcurrency,
// and wraps GetFunction, GetAccountSettings and DeleteFunction (call before serving, after
// any other registration of those three). `reservations` must outlive the frontend.
void register_concurrency_operations(Frontend& frontend, concurrency::Reservations& reservations);

// One operation, as registered (exposed for tests that drive handlers directly).
ControlResult run_concurrency_operation(concurrency::Reservations& reservations, const RouteMatch& match,
                                        const std::string& body, const ControlContext& ctx);

}  // namespace kiln::api
