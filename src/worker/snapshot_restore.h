// The worker's two uses of the snapshot mechanism (src/snapshot): taking a SnapStart
// version's snapshot from an environment stopped at its snapshot point, and creating a
// sandbox by restoring one. Blocking; called on the worker's and the snapshotter's
// threads, never on the event loop.
#pragma once

#include <filesystem>
#include <memory>
#include <string>

#include "common/status.h"
#include "sandbox/sandbox.h"
#include "worker/snapshot_store.h"

namespace kiln::worker {

// Checkpoints the process `pid` (a sandbox's first process, blocked on the Runtime API
// request `replay`) and its /tmp into the partial directory `dir`, filling meta's
// sizes and timings. The process stays frozen; the caller destroys the sandbox.
Status take_snapshot(pid_t pid, uint32_t ephemeral_mb, const std::filesystem::path& dir, SnapshotMeta& meta);

// Creates a sandbox from spec (its id, tenant, directories, limits and output) whose
// first process is the snapshot in dir restored, blocked on `replay` (already replayed
// to the new sandbox's Runtime API when this returns). Fails without leaving a sandbox.
StatusOr<std::unique_ptr<sandbox::Sandbox>> restore_sandbox(sandbox::SandboxBackend& backend,
                                                            sandbox::SandboxSpec spec,
                                                            const std::filesystem::path& dir,
                                                            const std::string& replay);

}  // namespace kiln::worker
