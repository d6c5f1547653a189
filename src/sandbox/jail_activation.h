// The activation of a pooled shell for one sandbox (the wire format is in jail_child.h):
// the spec's argv, environment and limits, and detached read-only overlays of the
// tenant's directories, which the shell attaches at /var/task, /var/runtime and /opt
// inside its own root. Overlays rather than binds: each sandbox gets inodes of its own,
// so a lock taken inside on code shared by content with other functions never blocks
// them or the host; and the mount table inside names the layers /proc/self/fd/<n>, not
// by their host paths (a bind would show its host path as the mount's root).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"
#include "sandbox/sandbox.h"
#include "sandbox/unique_fd.h"

namespace kiln::sandbox {

struct ActivationMessage {
  std::string bytes;              // ActivationHeader + strings
  std::vector<UniqueFd> mounts;   // detached mounts, in the order of the targets
  std::vector<int> passed;        // borrowed from the spec: fds for the runtime
};

// Builds the activation of spec. api_env, when not empty, replaces the spec's
// AWS_LAMBDA_RUNTIME_API entry. Root inside maps to host uid and gid host_id.
// empty_dir_fd: an O_PATH fd of an empty directory (the bottom layer of every overlay).
// With spec.tmp_archive_fd, /tmp is made here (a tmpfs of the spec's size), the archive
// unpacked into it owned by host_id, and sent as one of the mounts.
// InvalidParameterValue if argv and env exceed kMaxActivationBytes or too many fds are
// passed; ServiceError if a directory cannot be mounted or the archive is bad.
StatusOr<ActivationMessage> build_activation(const SandboxSpec& spec, const std::string& api_env,
                                             uint32_t host_id, uint64_t max_open_files,
                                             int empty_dir_fd);

// Sends m over a shell's control socket, with output_fd (borrowed; -1 for none) and the
// mounts as SCM_RIGHTS. False (errno set) if the shell is gone.
bool send_activation(int control_fd, int output_fd, const ActivationMessage& m);

}  // namespace kiln::sandbox
