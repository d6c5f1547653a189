// The first process of a jail, between clone and exec. It starts as host root inside
// fresh pid, mount, net, ipc and uts namespaces (the parent moves it into its cgroups
// meanwhile, or it was cloned into them) and, in this order: builds the root
// filesystem and pivots into it; brings up
// its loopback and opens the Runtime API socket; lowers rlimits; drops supplementary
// groups; creates its user namespace and hands the socket to the parent, which maps
// root inside to the tenant's host uid/gid; then becomes that root, enters a cgroup
// namespace rooted at its own cgroup, drops every
// capability, sets no_new_privs, Landlock and seccomp, and execs the runtime.
//
// Every namespace but the user namespace is owned by the host's initial user namespace,
// so even a capability regained inside the user namespace would grant nothing over them.
// The child of a multithreaded parent may not allocate: everything is prepared in a
// JailChildPlan first, and run_jail_child() only makes system calls.
#pragma once

#include <linux/filter.h>
#include <sys/types.h>

#include <cstdint>
#include <string>

namespace kiln::sandbox {

struct MountOp {
  enum Kind : uint8_t { kMount, kReadOnlyTree } kind = kMount;
  const char* source = nullptr;
  const char* target = nullptr;
  const char* fstype = nullptr;
  unsigned long flags = 0;
  const char* data = nullptr;
};

// Messages from the child over the control socket (SOCK_SEQPACKET).
struct ChildReport {
  enum Kind : int32_t { kUserNsReady = 1, kFailed = 2 } kind;
  int32_t stage;   // a JailStage when kFailed
  int32_t detail;  // e.g. the index of the failing mount
  int32_t err;     // errno
};

enum JailStage : int32_t {
  kStageCgroup = 1, kStageNamespaces, kStageMount, kStagePivotRoot, kStageLoopback,
  kStageListen, kStageLimits, kStageUserNs, kStageHandOff, kStageIdentity, kStageCapabilities,
  kStageNoNewPrivs, kStageStdio, kStageChdir, kStageLandlock, kStageSeccomp, kStageExec,
};
const char* jail_stage_name(int32_t stage);

struct JailChildPlan {
  const char* new_root = nullptr;         // the skeleton directory (host path)
  const MountOp* mounts = nullptr;        // applied in order before pivot_root
  size_t mount_count = 0;
  bool own_network = true;                // false: the host's network namespace is shared
  uint16_t api_port = 9001;               // with own_network: the listener's port inside
  int control_fd = -1;                    // child end of the control socket
  int parent_control_fd = -1;             // parent end: closed first, so EOF means "gave up"
  int output_fd = -1;                     // stdout and stderr
  uint64_t max_open_files = 1024;
  uint64_t max_file_bytes = 0;
  const char* const* argv = nullptr;
  const char* const* envp = nullptr;
  const char* cwd = "/var/task";
  const sock_fprog* seccomp = nullptr;
  int landlock_abi = 0;
  int cap_last_cap = 40;
};

// Runs in the cloned child; never returns (execs the runtime or _exits after reporting).
[[noreturn]] void run_jail_child(const JailChildPlan& plan);

}  // namespace kiln::sandbox
