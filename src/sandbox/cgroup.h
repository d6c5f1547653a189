// Per-sandbox cgroups: memory, pids and CPU limits, peak memory and OOM reporting.
// Works with cgroup v2 (unified hierarchy with controllers) and with v1 (one
// hierarchy per controller). Kiln's sandboxes live under Kiln's own cgroup:
//   v1: <root>/<controller>/<kiln's cgroup for it>/<prefix>/<id>
//   v2: <root>/<kiln's cgroup>/<prefix>/<id>
// The filesystem root and Kiln's own cgroup are injected so tests can use a fake tree.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "sandbox/unique_fd.h"

namespace kiln::sandbox {

struct CgroupLimits {
  uint64_t memory_bytes = 128ull << 20;
  uint32_t pids_max = 1024;
  // CPU share in proportion to memory: 1.0 = one vCPU (Lambda gives one at 1769 MB).
  double vcpus = 128.0 / 1769.0;
  bool cpu_quota = false;  // also cap CPU time at vcpus (cfs quota / cpu.max)
};

// The cgroups of one sandbox. Owns its directories until remove().
class SandboxCgroup {
 public:
  SandboxCgroup() = default;
  SandboxCgroup(SandboxCgroup&&) = default;
  SandboxCgroup& operator=(SandboxCgroup&&) = default;
  ~SandboxCgroup() { remove(); }

  // v2: a directory fd for clone3(CLONE_INTO_CGROUP), which starts a process inside the
  // cgroup at no migration cost. -1 on v1. Valid until remove().
  int clone_into_fd() const { return dir_fd_.get(); }
  // Writes the memory and pids limits. The usage must be below the new limits. Called
  // once per sandbox; limits only tighten an unlimited cgroup.
  Status set_limits(const CgroupLimits& limits) const;
  // Writes the CPU share (and quota if asked). The jail sets it once the runtime has
  // started, so that the jail's own setup runs at Kiln's share, as a fork would.
  void set_cpu(const CgroupLimits& limits) const;
  // Renames the directories to `name` (same parents): a pooled shell's cgroup takes the
  // sandbox's id. v2 cannot rename; there the cgroup keeps its name (returns Ok).
  Status rename(const std::string& name);
  // Moves a process into the sandbox's cgroups (every hierarchy on v1). Costs an RCU
  // grace period in the kernel (milliseconds), so callers overlap it with other work.
  Status add_process(pid_t pid) const;
  // The open cgroup.procs files (one per hierarchy), for a child that joins by writing
  // "0" itself. Valid until remove().
  const std::vector<UniqueFd>& procs_files() const { return procs_; }
  // Peak memory usage (v1 memory.max_usage_in_bytes, v2 memory.peak); 0 if unknown.
  // Read on every invoke (the REPORT line): one pread of a file kept open since
  // creation, not an open/read/close by path (the path walk in cgroupfs was most of it).
  uint64_t peak_memory_bytes() const;
  // True once the memory limit killed a process (oom_kill count > 0).
  bool out_of_memory() const;
  // Removes the directories; the cgroups must hold no live process. Idempotent.
  Status remove();

 private:
  friend class CgroupLayout;
  std::filesystem::path peak_file() const;
  bool v2_ = false;
  std::vector<std::string> controllers_;  // v1 hierarchy of each directory ("" on v2)
  std::filesystem::path memory_dir_;      // where the memory files are
  std::vector<std::filesystem::path> dirs_;  // every directory created, one per hierarchy
  std::vector<UniqueFd> procs_;  // cgroup.procs of each directory
  UniqueFd dir_fd_;
  UniqueFd peak_fd_;  // the peak-memory file, if it existed at creation (else read by path)
};

// Where and how Kiln creates cgroups. Detected once; create() is thread-safe.
class CgroupLayout {
 public:
  // root: the cgroup filesystem root ("/sys/fs/cgroup"); self_cgroup: the contents of
  // /proc/self/cgroup. Creates the <prefix> parent(s); prefix may have several levels
  // ("kiln/<instance>"), each gets the controllers on v2. On v2 it enables the memory,
  // pids and cpu controllers for the subtree; if Kiln's own cgroup holds processes (the
  // no-internal-process rule), they are moved first into <kiln's cgroup>/supervisor.
  static StatusOr<CgroupLayout> detect(const std::filesystem::path& root,
                                       std::string_view self_cgroup, const std::string& prefix);

  bool v2() const { return v2_; }
  // Creates <prefix>/<id> with the limits. Fails if it exists.
  StatusOr<SandboxCgroup> create(const std::string& id, const CgroupLimits& limits) const;
  // Creates <prefix>/<id> with no limits yet (a pooled shell's cgroup; see set_limits).
  StatusOr<SandboxCgroup> create_unlimited(const std::string& id) const;
  // The parent directories (for tests and for cleanup of earlier runs).
  const std::vector<std::filesystem::path>& bases() const { return bases_; }
  // Removes the parent directories if empty (best effort; the prefix's parents stay).
  void remove_bases() const;

 private:
  bool v2_ = false;
  // v2: one base. v1: memory first, then pids and cpu when present.
  std::vector<std::filesystem::path> bases_;
  std::vector<std::string> controllers_;  // v1 hierarchy name of each base
};

// SIGKILLs every process in the cgroup dir and in the cgroups below it (cgroup.kill on
// v2, each listed process otherwise), then removes them all, retrying until they are
// empty or timeout passes. True once dir is gone. For leftovers of a Kiln that died:
// the caller must know that nothing live owns dir.
bool kill_cgroup_tree(const std::filesystem::path& dir, std::chrono::milliseconds timeout);

// Names a data directory in cgroup names ("k" + 16 hex digits of a hash of the absolute
// state directory path), so that Kilns on other data directories never take this one's
// cgroups for leftovers.
std::string data_dir_tag(const std::filesystem::path& state_dir);
// The start time of a process (clock ticks since boot; /proc/<pid>/stat field 22), 0 if
// it does not exist. With the pid, it names a process for good (pids are reused).
uint64_t process_start_time(pid_t pid);

// The path of the given controller ("" = the v2 unified one) in /proc/self/cgroup text.
StatusOr<std::string> cgroup_path_of(std::string_view self_cgroup, std::string_view controller);

}  // namespace kiln::sandbox
