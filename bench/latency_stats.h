// Latency samples of one load-generator run and the summary it reports as JSON.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace kiln::bench {

struct LatencySummary {
  uint64_t count = 0;
  double mean_us = 0;
  double p50_us = 0;
  double p90_us = 0;
  double p99_us = 0;
  double max_us = 0;
};

// Nearest-rank percentiles (p in [0, 100]) over every sample, no bucketing: a run
// holds at most a few million samples, which sort in well under a second. `samples_ns`
// is sorted in place. An empty input gives an all-zero summary.
LatencySummary summarize(std::vector<uint64_t>& samples_ns);

// The value at nearest rank ceil(p/100 * n) of sorted samples (1-based), 0 if empty.
uint64_t percentile(const std::vector<uint64_t>& sorted_ns, double p);

struct RunResult {
  std::string url;
  bool signed_request = false;
  int connections = 0;
  int threads = 0;
  double warmup_s = 0;
  double duration_s = 0;          // measured window, seconds (wall clock)
  uint64_t responses = 0;         // complete responses in the window (any status)
  uint64_t non_2xx = 0;           // of which status was not 2xx
  uint64_t function_errors = 0;   // of which carried X-Amz-Function-Error
  uint64_t socket_errors = 0;     // connects refused, resets, malformed responses
  LatencySummary latency;         // over every response in the window
  std::string first_status_line;  // what the server answered, for a sanity check
};

// One JSON object on one line; throughput_rps = responses / duration_s.
std::string to_json(const RunResult& r);

}  // namespace kiln::bench
