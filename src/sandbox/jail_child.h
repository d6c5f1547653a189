// The first process of a jail, between clone and exec: a "shell" that is prepared ahead
// of demand (see jail_shell.h), then activated once with one sandbox's spec.
//
// Started as host root inside fresh pid, mount, net, ipc and uts namespaces (cloned into
// its cgroup on v2; on v1 it moves itself there first, so that the RCU grace period of
// the migration does not hold up the parent), the shell, with nothing of any tenant:
// closes every fd inherited from Kiln, builds the shared skeleton root and
// pivots into it, mounts /proc and brings up its loopback. Then it waits for its
// activation message (ActivationHeader). Activated, it: attaches the detached mounts it
// was handed (/var/task, /var/runtime, /opt), mounts a fresh /tmp, opens the Runtime API
// socket, drops supplementary groups, becomes the tenant's host uid/gid (keeping its
// capabilities), creates its user namespace and maps root inside to that uid/gid itself
// (a one-line map of its own ids needs no help from the parent), asks for SIGKILL when
// its parent thread in Kiln dies (PR_SET_PDEATHSIG; kept across exec), sends the socket
// to the parent without waiting (failing if Kiln is already gone), then becomes root inside, enters a cgroup namespace rooted at
// its own cgroup, drops every capability, sets no_new_privs, rlimits, Landlock and
// seccomp, and execs the runtime. The parent learns of success from the control socket's
// hang-up at exec. A shell serves one sandbox only: on any failure, or EOF before
// activation, it exits.
//
// Every namespace but the user namespace is owned by the host's initial user namespace,
// so even a capability regained inside the user namespace would grant nothing over them.
// The child of a multithreaded parent may not allocate: everything is prepared in a
// ShellPlan first (or arrives in the activation message), and the child only makes
// system calls.
#pragma once

#include <linux/filter.h>
#include <sys/types.h>

#include <cstdint>
#include <string>

namespace kiln::sandbox {

// One step of a shell's root. kOpenPath opens source (O_PATH) as fd number `fd`
// (>= kFirstPlanFd), so that a later overlay names it "/proc/self/fd/<fd>" rather than
// by its host path; every such fd is closed before pivot_root.
struct MountOp {
  enum Kind : uint8_t { kMount, kReadOnlyTree, kOpenPath } kind = kMount;
  const char* source = nullptr;
  const char* target = nullptr;
  const char* fstype = nullptr;
  unsigned long flags = 0;
  const char* data = nullptr;
  int fd = -1;
};
constexpr int kFirstPlanFd = 10;

// Messages from the child over the control socket (SOCK_SEQPACKET).
struct ChildReport {
  enum Kind : int32_t { kReady = 1, kFailed = 2 } kind;  // kReady carries the API socket
  int32_t stage;   // a JailStage when kFailed
  int32_t detail;  // e.g. the index of the failing mount
  int32_t err;     // errno
};

enum JailStage : int32_t {
  kStageCgroup = 1, kStageNamespaces, kStageMount, kStagePivotRoot, kStageLoopback,
  kStageListen, kStageLimits, kStageUserNs, kStageHandOff, kStageIdentity, kStageCapabilities,
  kStageNoNewPrivs, kStageStdio, kStageChdir, kStageLandlock, kStageSeccomp, kStageExec,
  kStageActivation, kStageAttach, kStageTmp,
};
const char* jail_stage_name(int32_t stage);

// What every shell of a backend does before activation; lives as long as the backend.
struct ShellPlan {
  const char* new_root = nullptr;         // the skeleton directory (host path)
  const MountOp* mounts = nullptr;        // applied in order before pivot_root
  size_t mount_count = 0;
  bool own_network = true;                // false: the host's network namespace is shared
  const sock_fprog* seccomp = nullptr;
  int landlock_abi = 0;
  int cap_last_cap = 40;
  int nice = 0;  // Kiln's own: a shell prepared at background priority returns to it
};

// The activation message, parent to shell, one SOCK_SEQPACKET datagram: this header,
// then NUL-terminated strings: the /tmp tmpfs options, mount_count targets inside
// (e.g. "/var/task"), argc argv entries, envc environment entries. Its SCM_RIGHTS carry
// the output fd first when has_output, then one detached mount (open_tree/fsmount) per
// target, in order, then pass_count fds for the runtime.
struct ActivationHeader {
  uint32_t size = 0;        // of the whole message
  uint16_t api_port = 9001; // with own_network: the listener's port inside
  uint16_t has_output = 0;
  uint16_t pass_count = 0;  // fds after the mounts, handed to the runtime (SandboxSpec::pass_fds)
  uint16_t tmp_given = 0;   // 1: one of the mounts is the sandbox's /tmp (do not mount one)
  uint32_t mount_count = 0;
  uint32_t argc = 0, envc = 0;
  uint32_t host_uid = 0;    // the tenant's host uid and gid: root inside maps to them
  uint32_t host_gid = 0;
  uint64_t max_open_files = 1024;
  uint64_t max_file_bytes = 0;
};
constexpr size_t kMaxActivationBytes = 128 * 1024;
constexpr int kMaxActivationMounts = 4;
// Every fd one activation may carry: output, mounts, passed fds.
constexpr int kMaxActivationFds = 1 + kMaxActivationMounts + 4;

// The fds one shell starts with (inherited at clone; all others are closed at once).
struct ShellFds {
  static constexpr int kMaxCgroupFiles = 4;
  int control = -1;         // the child end of the control socket
  int parent_control = -1;  // the parent's end: closed first, so EOF means "gave up"
  int cgroup_procs[kMaxCgroupFiles] = {-1, -1, -1, -1};  // v1: join by writing "0"
};

// Runs in the cloned child; never returns (execs the runtime or _exits after reporting).
[[noreturn]] void run_jail_shell(const ShellPlan& plan, const ShellFds& fds);

}  // namespace kiln::sandbox
