// `kiln serve`: wires every component of a single node into one process.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

namespace kiln::cli {

struct ServeOptions {
  std::string listen = "127.0.0.1:9001";
  std::filesystem::path data_dir = ".kiln";
  std::string region = "us-east-1";
  std::filesystem::path runtimes_dir;  // default: compiled-in source tree's runtimes/
  std::string sandbox_backend = "jail";
  uint32_t sandbox_idle_seconds = 300;
  unsigned threads = 0;  // event-loop threads; 0 = half the cores (at least one)
  uint64_t log_max_bytes_per_function = 0;  // 0 = the default (256 MiB)
  uint64_t concurrency_limit = 1000;  // --account-concurrency: the account concurrency limit
  int64_t async_retry_base_ms = 60000;  // async retries wait this, then twice this
  uint64_t sandbox_memory_mb = 0;  // --sandbox-memory-mb: host memory for sandboxes; 0 = 75% of RAM
  uint64_t scale_rate = 1000;      // --scale-rate: new sandboxes per function every 10 s; 0 = unlimited
  uint32_t sandbox_pids_max = 1024;  // --sandbox-pids-max: processes and threads per sandbox (jail)
};

// Runs until SIGINT or SIGTERM. Returns the process exit code.
int serve(const ServeOptions& options);

}  // namespace kiln::cli
