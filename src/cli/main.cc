// kiln: the single binary. `kiln serve` runs a node; `kiln status|sandboxes|dead-letters|
// credentials` are the operator's commands (cli/admin_commands.cc).
#include <cstdio>
#include <cstring>
#include <string>

#include "cli/admin_client.h"
#include "cli/server.h"
#include "common/numbers.h"

namespace {

void usage() {
  std::fprintf(stderr,
               "usage: kiln serve [--listen HOST:PORT] [--data-dir DIR] [--region REGION]\n"
               "                  [--sandbox-backend jail|process] [--sandbox-idle-seconds N]\n"
               "                  [--threads N] [--runtimes-dir DIR] [--async-retry-base-ms MS]\n"
               "                  [--log-max-bytes-per-function BYTES] [--account-concurrency N]\n"
               "                  [--sandbox-memory-mb N] [--scale-rate N] [--sandbox-pids-max N]\n"
               "defaults: --listen 127.0.0.1:9001 --data-dir ./.kiln --region us-east-1\n"
               "       kiln status | sandboxes | dead-letters | credentials ...  (operator commands; --help)\n");
}

// strtoull took "-1" for 2^64-1 and overflow for its maximum; parse_number refuses both.
bool parse_uint(const char* s, uint64_t* out) {
  auto v = s ? kiln::parse_number<uint64_t>(s) : std::nullopt;
  if (v) *out = *v;
  return v.has_value();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 2) {
    std::string command = argv[1];
    if (command == "status" || command == "sandboxes" || command == "dead-letters" || command == "credentials") {
      return kiln::cli::run_admin_command(argc - 1, argv + 1);
    }
  }
  if (argc < 2 || std::strcmp(argv[1], "serve") != 0) {
    usage();
    return argc < 2 ? 2 : (std::strcmp(argv[1], "--help") == 0 ? 0 : 2);
  }
  kiln::cli::ServeOptions o;
  for (int i = 2; i < argc; ++i) {
    std::string flag = argv[i];
    const char* value = i + 1 < argc ? argv[i + 1] : nullptr;
    uint64_t n = 0;
    if (flag == "--help" || flag == "-h") {
      usage();
      return 0;
    }
    if (!value) {
      std::fprintf(stderr, "kiln: %s needs a value\n", flag.c_str());
      return 2;
    }
    ++i;
    if (flag == "--listen") {
      o.listen = value;
    } else if (flag == "--data-dir") {
      o.data_dir = value;
    } else if (flag == "--region") {
      o.region = value;
    } else if (flag == "--runtimes-dir") {
      o.runtimes_dir = value;
    } else if (flag == "--sandbox-backend") {
      o.sandbox_backend = value;
    } else if (flag == "--sandbox-idle-seconds" && parse_uint(value, &n)) {
      o.sandbox_idle_seconds = static_cast<uint32_t>(n);
    } else if (flag == "--log-max-bytes-per-function" && parse_uint(value, &n) && n > 0) {
      o.log_max_bytes_per_function = n;
    } else if (flag == "--account-concurrency" && parse_uint(value, &n) && n >= 1 && n <= 1000000) {
      o.concurrency_limit = n;
    } else if (flag == "--sandbox-memory-mb" && parse_uint(value, &n) && n >= 128) {
      o.sandbox_memory_mb = n;
    } else if (flag == "--scale-rate" && parse_uint(value, &n)) {
      o.scale_rate = n;
    } else if (flag == "--sandbox-pids-max" && parse_uint(value, &n) && n >= 16 && n <= 1000000) {
      o.sandbox_pids_max = static_cast<uint32_t>(n);
    } else if (flag == "--threads" && parse_uint(value, &n)) {
      o.threads = static_cast<unsigned>(n);
    } else if (flag == "--async-retry-base-ms" && parse_uint(value, &n) && n >= 1 && n <= 3600000) {
      o.async_retry_base_ms = static_cast<int64_t>(n);
    } else {
      std::fprintf(stderr, "kiln: bad option %s %s\n", flag.c_str(), value);
      usage();
      return 2;
    }
  }
  return kiln::cli::serve(o);
}
