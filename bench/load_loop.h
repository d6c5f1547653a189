// The closed loop of kiln_loadgen: N keep-alive connections spread over T threads,
// one epoll loop per thread, each connection sending its next request as soon as the
// previous response is complete.
#pragma once

#include "latency_stats.h"
#include "load_options.h"

namespace kiln::bench {

// Runs warm-up then the measured window and returns what the window saw. Latency is
// measured per request from the first byte written to the last byte of the response
// read (CLOCK_MONOTONIC). Responses that complete during warm-up are discarded;
// requests outstanding at the end of the window are abandoned. A connection that fails
// (refused, reset, malformed response) counts one socket error and is reopened after
// 10 ms. The request is re-signed every 60 s, so runs of any length stay valid.
// Blocks the caller for warmup_s + duration_s.
RunResult run_load(const LoadOptions& options);

}  // namespace kiln::bench
