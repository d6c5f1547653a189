// Kiln's own checkpoint and restore of a sandbox's first process (issue 11).
//
// Checkpoint: checkpoint_process() seizes and interrupts every thread of the process,
// saves its user-space state into a directory (plan + pages, see image_format.h) and, on
// success, KILLS the process (SIGKILL while still traced, then reaps the traced threads'
// exit notifications as tracer; the real parent still reaps the process). On failure the
// registers are put back, every thread is detached and the process runs on.
//
// Restore handshake (caller = the lead's jail / the tests):
//   1. fds = open_image(dir): plan, pages (read-only) and a pipe (ready_read, ready_write).
//   2. Start the new sandbox's first process with fds.plan at fd 3, fds.pages at fd 4,
//      fds.ready_write at fd 5 (image::kPlanFd...), 0/1/2 as the sandbox wants, and exec
//      the stub (target `kiln-restore`, in the build dir next to `kiln`). It must be pid 1
//      of a fresh pid namespace, in a mount namespace where the image's paths resolve to
//      the same files, and in a network namespace where 127.0.0.1:api_port listens.
//      Close ready_write (and plan/pages) in the caller after the start.
//   3. complete_restore(stub_host_pid, dir, replay, ready_read):
//      - waits for one byte on ready_read: 'R' = memory built, fds and signal actions
//        recreated, every thread created with its tid and parked in futex_wait;
//        'E' + text = the stub failed (it has exited; the caller reaps it);
//      - seizes every thread (PTRACE_O_EXITKILL), sets registers, xstate and signal masks,
//        unmaps the stub's range by one injected munmap on the main thread, writes `replay`
//        on the Runtime API connection that had the outstanding request, detaches.
//      On any failure it SIGKILLs the stub (the caller still reaps it) and returns the
//      error; it never leaves a traced or stopped process behind.
// All ptrace calls of one checkpoint / complete_restore come from the calling thread.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "common/unique_fd.h"

namespace kiln::snapshot {

struct CheckpointOptions {
  // TCP connections of the process to 127.0.0.1:runtime_api_port are the Runtime API:
  // not saved; at restore they are reconnected.
  uint16_t runtime_api_port = 9001;
  // When the process has several Runtime API connections: the local (client) port of the
  // one with the outstanding request, as the server sees it as the peer port. 0 = the
  // process must have at most one.
  uint16_t outstanding_client_port = 0;
  // fds that belong to the sandbox, not the process. Not saved.
  std::vector<int> inherited_fds = {0, 1, 2};
};

Status checkpoint_process(pid_t pid, const CheckpointOptions& options, const std::filesystem::path& dir);

struct RestoreFds {
  UniqueFd plan;         // goes to fd 3 of the stub
  UniqueFd pages;        // fd 4
  UniqueFd ready_write;  // fd 5
  UniqueFd ready_read;   // stays with the caller, for complete_restore
};
StatusOr<RestoreFds> open_image(const std::filesystem::path& dir);

Status complete_restore(pid_t stub_pid, const std::filesystem::path& dir, std::string_view replay, int ready_read,
                        std::chrono::milliseconds timeout = std::chrono::seconds(30));

}  // namespace kiln::snapshot
