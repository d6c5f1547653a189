// A worker hosts execution environments: it creates sandboxes for function versions
// (with Lambda's environment variables, code at /var/task, the runtime at
// /var/runtime), serves their Runtime API and tears them down. Sandbox creation and
// destruction are blocking and run on the worker's own threads, never on the event
// loop that serves invokes.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/thread_pool.hpp>

#include <atomic>
#include <filesystem>
#include <functional>
#include <map>
#include <mutex>
#include <memory>
#include <string>

#include "common/status.h"
#include "placement/placement.h"
#include "registry/function.h"
#include "sandbox/sandbox.h"
#include "worker/capacity.h"
#include "worker/environment.h"
#include "worker/log_store.h"
#include "worker/snapshot_store.h"

namespace kiln::worker {

struct WorkerOptions {
  std::filesystem::path runtimes_dir;  // holds python3.11/, nodejs20.x/, provided/
  std::string region = "us-east-1";
  uint64_t max_sandboxes = 4096;
  unsigned creation_threads = 2;
  // Host memory Kiln may reserve for sandboxes (sum of MemorySize); 0 = unlimited.
  uint64_t sandbox_memory_mb = 0;
  // New sandboxes per function every 10 s (Lambda's scaling rate); 0 = unlimited.
  uint64_t scale_rate = 1000;
  // Sandboxes that fit in Kiln's file descriptors; 0 = sandboxes_by_fds(RLIMIT_NOFILE,
  // descriptors open when the worker is made), so raise the limit before making it.
  uint64_t max_sandboxes_by_fds = 0;
};

// One live sandbox, as the operator sees it.
struct SandboxInfo {
  std::string id;
  std::string account, function, version;
  bool busy = false;
  double age_s = 0;
  uint32_t memory_mb = 0;      // the limit (MemorySize)
  uint64_t max_memory_mb = 0;  // peak used, from its cgroup
};

class Worker : public placement::WorkerSlot {
 public:
  using Created = std::function<void(StatusOr<std::shared_ptr<Environment>>)>;

  // `io` serves the Runtime APIs; `backend` and `logs` must outlive the worker.
  Worker(boost::asio::io_context& io, sandbox::SandboxBackend& backend, LogStore& logs, WorkerOptions options);
  ~Worker() override;

  // Creates an environment for `function` and starts its runtime; `done` runs on a
  // worker thread once the runtime process has started (it initializes concurrently).
  // `on_dead` is called when the environment's runtime dies or times out.
  // Its MemorySize is reserved before create() returns; when it does not fit in
  // sandbox_memory_mb, or no descriptors are left for it (max_sandboxes_by_fds),
  // `done` runs at once, on the caller's thread, with a 429 TooManyRequestsException
  // (make_room first to reclaim idle sandboxes).
  //
  // SnapStart: kind kForSnapshot starts the runtime to be snapshotted
  // (AWS_LAMBDA_INITIALIZATION_TYPE=snap-start; see StartKind). With kOnDemand, a
  // published version of a SnapStart function is restored from its snapshot when the
  // store holds one for exactly it; if the restore fails, or there is none, it starts
  // from scratch (still as snap-start, so its hooks keep their meaning) and says so in
  // Kiln's log.
  void create(registry::FunctionVersionPtr function,
              std::function<void(const std::shared_ptr<Environment>&)> on_dead, Created done,
              StartKind kind = StartKind::kOnDemand);
  // Where restores find snapshots (nullptr: no restores). Set before the first create.
  void set_snapshots(const SnapshotStore* store) { snapshots_ = store; }

  uint64_t load() const override { return live_.load(); }
  bool accepting() const override { return live_.load() < options_.max_sandboxes; }
  // Sum of MemorySize over live sandboxes (reserved, not necessarily used).
  uint64_t reserved_memory_mb() const { return reserved_mb_.load(); }
  // Whether a sandbox of `memory_mb` would fit in sandbox_memory_mb now.
  bool memory_fits(uint64_t memory_mb) const;
  uint64_t memory_limit_mb() const { return options_.sandbox_memory_mb; }
  // Whether one more sandbox fits in Kiln's file descriptors now.
  bool fds_fit() const { return slots_.load() < max_by_fds_; }
  uint64_t max_sandboxes_by_fds() const { return max_by_fds_; }
  static constexpr const char* kNoFdsMessage =
      "Rate Exceeded. The host has no file descriptors left for a new execution environment.";
  // The per-function scaling rate of new on-demand sandboxes (admit_new_sandbox).
  ScaleRate& scale_rate() { return scale_rate_; }
  // Live sandboxes (thread-safe; takes each environment's lock briefly).
  std::vector<SandboxInfo> sandboxes() const;
  // Blocks until every queued teardown has finished (shutdown, tests).
  void drain();

 private:
  StatusOr<std::shared_ptr<Environment>> create_now(const registry::FunctionVersionPtr& f,
                                                    std::function<void(const std::shared_ptr<Environment>&)> on_dead,
                                                    StartKind kind);
  bool reserve_memory(uint64_t memory_mb);
  bool reserve_slot();
  std::vector<std::string> environment_for(const registry::FunctionVersion& f, const std::string& stream,
                                           bool snap_start) const;

  boost::asio::io_context& io_;
  sandbox::SandboxBackend& backend_;
  LogStore& logs_;
  WorkerOptions options_;
  std::atomic<uint64_t> live_{0};
  std::atomic<uint64_t> reserved_mb_{0};
  ScaleRate scale_rate_;
  uint64_t max_by_fds_;
  std::atomic<uint64_t> slots_{0};  // sandboxes holding descriptors (freed with memory)
  mutable std::mutex envs_mu_;
  std::map<std::string, std::weak_ptr<Environment>> envs_;  // guarded by envs_mu_; by sandbox id
  const SnapshotStore* snapshots_ = nullptr;
  std::unique_ptr<boost::asio::thread_pool> create_pool_;
  std::unique_ptr<boost::asio::thread_pool> destroy_pool_;
};

}  // namespace kiln::worker
