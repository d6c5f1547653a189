// SnapStart's publish step: a registry Snapshotter that, for a newly published version
// of a SnapStart function, starts one sandbox of it to be snapshotted (StartKind
// kForSnapshot), waits for its runtime to reach the snapshot point (init done and
// before-snapshot hooks run), checkpoints it into the SnapshotStore and destroys it.
// The version becomes Active only once the snapshot is stored; init errors, hook errors
// and checkpoint failures fail it with Lambda's StateReasonCode (FunctionError.*,
// FunctionError for a hook, InternalError for Kiln's own failure). Runs through the
// init queue like any initialization, so a busy host delays snapshots rather than
// failing them.
#pragma once

#include <boost/asio/thread_pool.hpp>

#include "assignment/assignment.h"
#include "placement/placement.h"
#include "registry/registry.h"
#include "worker/init_queue.h"
#include "worker/snapshot_store.h"

namespace kiln::worker {

// Everything passed must outlive the snapshotter; `pool` runs the checkpoints.
registry::Snapshotter make_snapshotter(placement::PlacementService& placement,
                                       assignment::AssignmentService& assignment, InitQueue& queue,
                                       SnapshotStore& store, boost::asio::thread_pool& pool);

}  // namespace kiln::worker
