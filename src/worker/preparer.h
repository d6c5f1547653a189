// Initializing a new configuration ahead of traffic: the update rule. Before a changed
// $LATEST takes traffic, one sandbox of it must come up; it then joins the idle pool, so
// the first invoke after a change is warm.
#pragma once

#include "assignment/assignment.h"
#include "placement/placement.h"
#include "registry/registry.h"
#include "worker/init_queue.h"

namespace kiln::worker {

// A registry Preparer that creates an environment through placement, waits for its
// runtime to initialize, and hands it to the assignment service as idle. Failures come
// back as Lambda's LastUpdateStatusReasonCode (e.g. FunctionError.RuntimeInitError) with
// "errorType: errorMessage" of the runtime's error document as the message.
//
// Initializations run through `queue` (bounded, FIFO). A busy host never fails one:
// without memory room it reclaims idle sandboxes, else waits in the queue for room; if
// it has waited longer than the queue's max_wait it succeeds without a sandbox (the first
// invoke starts one, as after any idle reap). As with Lambda, a create or update does not
// fail because the host is busy, and the waiters (function_active_v2,
// function_updated_v2) see a final state. It fails for the function's own errors (init
// error, timeout, bad entrypoint), internal errors, and InsufficientCapacity only when
// its MemorySize exceeds the host's whole sandbox memory (room can never come).
// `placement`, `assignment` and `queue` must outlive the preparer.
// A runtime's init failure (Runtime.InitError, Runtime.ExitError, Runtime.InitTimeout,
// Runtime.InvalidEntrypoint, with the runtime's error document as message) in the terms
// of LastUpdateStatusReasonCode / StateReasonCode, with "errorType: errorMessage" as the
// reason; anything else is InternalError.
Status as_update_failure(const Status& s);

registry::Preparer make_preparer(placement::PlacementService& placement, assignment::AssignmentService& assignment,
                                 InitQueue& queue);

}  // namespace kiln::worker
