// The activation of a pooled shell for one sandbox (the wire format is in jail_child.h):
// the spec's argv, environment and limits, and detached read-only mounts of the
// tenant's directories (open_tree, or an overlay of the layers), which the shell
// attaches at /var/task, /var/runtime and /opt inside its own root.
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
};

// Builds the activation of spec. api_env, when not empty, replaces the spec's
// AWS_LAMBDA_RUNTIME_API entry. Root inside maps to host uid and gid host_id.
// InvalidParameterValue if argv and env exceed kMaxActivationBytes or a layer path
// holds ':' or ','; ServiceError if a directory cannot be bound.
StatusOr<ActivationMessage> build_activation(const SandboxSpec& spec, const std::string& api_env,
                                             uint32_t host_id, uint64_t max_open_files);

// Sends m over a shell's control socket, with output_fd (borrowed; -1 for none) and the
// mounts as SCM_RIGHTS. False (errno set) if the shell is gone.
bool send_activation(int control_fd, int output_fd, const ActivationMessage& m);

}  // namespace kiln::sandbox
