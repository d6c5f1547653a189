// Initializing a new configuration ahead of traffic: the update rule. Before a changed
// $LATEST takes traffic, one sandbox of it must come up; it then joins the idle pool, so
// the first invoke after a change is warm.
#pragma once

#include "assignment/assignment.h"
#include "placement/placement.h"
#include "registry/registry.h"

namespace kiln::worker {

// A registry Preparer that creates an environment through placement, waits for its
// runtime to initialize, and hands it to the assignment service as idle. Failures come
// back as Lambda's LastUpdateStatusReasonCode (e.g. FunctionError.RuntimeInitError) with
// "errorType: errorMessage" of the runtime's error document as the message.
// `placement` and `assignment` must outlive the preparer.
registry::Preparer make_preparer(placement::PlacementService& placement, assignment::AssignmentService& assignment);

}  // namespace kiln::worker
