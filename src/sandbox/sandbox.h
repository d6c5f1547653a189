// The sandbox layer: one execution environment = one runtime process tree, isolated
// from the host and from every other sandbox. One interface, several backends
// (the jail by default; a microVM later). The worker owns sandboxes; nothing here
// knows about invocations or HTTP.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"

namespace kiln::sandbox {

// What to run and with which limits. Paths named "inside" are paths the runtime sees.
struct SandboxSpec {
  std::string id;       // unique per sandbox, [a-z0-9-]{1,64}; names its cgroup and dirs
  std::string tenant;   // isolation key (account + function): tenants never share a uid
  std::filesystem::path code_dir;     // host dir, bound read-only at /var/task
  std::filesystem::path runtime_dir;  // host dir, bound read-only at /var/runtime
  std::vector<std::filesystem::path> layer_dirs;  // host dirs merged read-only at /opt, in order
  std::vector<std::string> argv;      // argv[0] is a path inside, e.g. /var/task/bootstrap
  std::vector<std::string> env;       // complete environment, "KEY=VALUE"
  uint32_t memory_mb = 128;           // memory limit (MemorySize)
  uint32_t ephemeral_mb = 512;        // size of the private /tmp (EphemeralStorage)
  uint16_t runtime_api_port = 9001;   // port of the Runtime API on the sandbox's loopback
  int output_fd = -1;  // borrowed: stdout and stderr of the runtime are dup'ed from it
  // Borrowed fds handed to the runtime at exec as fds kPassedFdBase, kPassedFdBase + 1, ...
  // (at most kMaxPassedFds; not close-on-exec). Used to hand a restore its snapshot.
  std::vector<int> pass_fds;
  // Borrowed; -1 for none. A /tmp archive (tmp_archive.h) unpacked into the sandbox's
  // fresh /tmp before its first process runs, owned by the sandbox's root.
  int tmp_archive_fd = -1;
};

inline constexpr int kPassedFdBase = 3;
inline constexpr int kMaxPassedFds = 4;

class Sandbox {
 public:
  virtual ~Sandbox() = default;  // destroys the sandbox if destroy() was not called

  virtual const std::string& id() const = 0;
  // A listening, non-blocking TCP socket: the runtime's connections to
  // AWS_LAMBDA_RUNTIME_API arrive here. Owned by the sandbox, valid until destroy().
  virtual int runtime_api_fd() const = 0;
  // A pidfd of the sandbox's first process: readable once that process has exited.
  // Owned by the sandbox, valid until destroy().
  virtual int exit_fd() const = 0;
  // The host pid of the sandbox's first process (pid 1 of its own pid namespace under
  // the jail), or -1 once destroyed.
  virtual pid_t host_pid() const = 0;
  // Peak memory used by the sandbox's processes, in bytes (0 if unknown).
  virtual uint64_t max_memory_bytes() const = 0;
  // True once the memory limit has killed (or refused memory to) a process of it.
  virtual bool out_of_memory() const = 0;
  // Kills every process of the sandbox and removes its mounts, cgroup and /tmp.
  // Idempotent; blocks until done (a few ms). Not thread-safe against itself.
  virtual void destroy() = 0;
};

class SandboxBackend {
 public:
  virtual ~SandboxBackend() = default;
  // Creates and starts a sandbox running spec.argv. Returns once the runtime process
  // has been started (not once it has initialized). Thread-safe.
  virtual StatusOr<std::unique_ptr<Sandbox>> create(const SandboxSpec& spec) = 0;
  virtual const char* name() const = 0;
};

// The jail: the default isolation for untrusted code (see docs/security.md).
struct JailOptions {
  // Kiln's sandbox state (Kiln passes <data-dir>/sandboxes). Holds the shared read-only
  // root skeleton; jails add nothing per sandbox here. Created 0700 if missing.
  std::filesystem::path state_dir;
  // Cgroups live at <Kiln's own cgroup>/<cgroup_prefix>/<spec.id> (per hierarchy on v1).
  std::string cgroup_prefix = "kiln";
  std::filesystem::path cgroup_root = "/sys/fs/cgroup";
  // Root inside a sandbox maps to host uid/gid uid_base + k, where k numbers the
  // tenants in the order this backend first saw them: two tenants never share a uid.
  // The range [uid_base, uid_base + uid_count) must belong to no host user.
  uint32_t uid_base = 200000;
  uint32_t uid_count = 65536;
  // false (default): the sandbox has its own network namespace with only a loopback.
  // true: it shares the HOST's network namespace (and so the host's loopback services);
  // the Runtime API then listens on a host 127.0.0.1 port that AWS_LAMBDA_RUNTIME_API
  // is rewritten to.
  bool allow_network = false;
  uint32_t pids_max = 1024;         // processes and threads per sandbox
  uint32_t max_open_files = 1024;   // RLIMIT_NOFILE
  bool cpu_quota = false;           // hard-cap CPU at memory_mb / 1769 vCPUs (else shares only)
  // Shells kept started ahead of create() (each: a process in fresh namespaces, its root
  // built, in an unlimited cgroup <prefix>/shell-*, holding nothing of any tenant).
  // 0: every create() starts its own. The pool refills on a background thread.
  uint32_t pool_size = 8;
  // Shells are cloned by a small "zygote" process forked when the backend starts, so that
  // they copy its address space rather than Kiln's (cheaper to clone and to exec, and a
  // waiting shell pins none of Kiln's memory). false: cloned from Kiln itself.
  bool use_zygote = true;
  // Host path of Kiln's snapshot restorer (kiln-restore), installed in every sandbox's
  // root at kRestoreStubPath. Empty: sandboxes cannot be restored from snapshots.
  std::filesystem::path restore_stub;
};

// Where the restorer sits inside a jail (read-only, like the rest of its root).
inline constexpr const char* kRestoreStubPath = "/.kiln/restore";

// Prepares the backend (root skeleton, cgroup parents, seccomp program). A preparation
// failure is returned by every create(). create() needs root on the host.
std::unique_ptr<SandboxBackend> make_jail_backend(JailOptions options);

// No isolation at all: runs the runtime as a host child process with /var/task and
// /var/runtime rewritten to the host paths in argv and env. For in-process tests only.
std::unique_ptr<SandboxBackend> make_process_backend();

}  // namespace kiln::sandbox
