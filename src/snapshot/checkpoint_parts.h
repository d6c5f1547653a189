// The parts of checkpoint_process(), each filling its sections of the plan.
#pragma once

#include <sys/types.h>

#include <filesystem>

#include "common/status.h"
#include "snapshot/image_writer.h"
#include "snapshot/proc_view.h"
#include "snapshot/snapshot.h"

namespace kiln::snapshot {

// VMAs and the pages file. The process must be stopped.
Status dump_memory(pid_t pid, const ProcView& view, PlanBuilder& plan, const std::filesystem::path& pages_path);

// fds, epoll entries. Refuses any fd kind it cannot restore.
Status dump_fds(pid_t pid, const ProcView& view, const CheckpointOptions& options, PlanBuilder& plan);

}  // namespace kiln::snapshot
