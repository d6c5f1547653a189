#include "worker/capacity.h"

#include <sys/resource.h>

#include <algorithm>
#include <filesystem>

#include "worker/worker.h"

namespace kiln::worker {

ScaleRate::ScaleRate(uint64_t rate, std::chrono::steady_clock::duration window, Clock clock)
    : rate_(rate), window_(window.count() > 0 ? window : std::chrono::seconds(10)), clock_(std::move(clock)) {}

bool ScaleRate::try_start(const std::string& function) {
  if (rate_ == 0) return true;
  auto now = clock_();
  std::lock_guard lock(mu_);
  auto [it, fresh] = buckets_.try_emplace(function);
  Bucket& b = it->second;
  if (fresh) {
    b.tokens = static_cast<double>(rate_);
  } else if (now > b.at) {
    double refill = static_cast<double>(rate_) * std::chrono::duration<double>(now - b.at).count() /
                    std::chrono::duration<double>(window_).count();
    b.tokens = std::min(static_cast<double>(rate_), b.tokens + refill);
  }
  b.at = std::max(b.at, now);
  if (b.tokens < 1.0) return false;
  b.tokens -= 1.0;
  return true;
}

uint64_t fds_per_sandbox() { return kFdsPerSandboxBase + kRuntimeApiMaxConnections - 1; }

uint64_t fd_headroom(uint64_t fd_limit) { return std::max<uint64_t>(64, fd_limit / 8); }

uint64_t sandboxes_by_fds(uint64_t fd_limit, uint64_t open_now) {
  const uint64_t kept = open_now + fd_headroom(fd_limit);
  return fd_limit > kept ? (fd_limit - kept) / fds_per_sandbox() : 0;
}

uint64_t fd_soft_limit() {
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY) return UINT64_MAX;
  return rl.rlim_cur;
}

uint64_t open_fd_count() {
  std::error_code ec;
  uint64_t n = 0;
  for (std::filesystem::directory_iterator it("/proc/self/fd", ec), end; !ec && it != end; it.increment(ec)) n++;
  return n;
}

bool make_room(Worker& w, assignment::AssignmentService& assignment, const std::string& spare_key,
               uint64_t memory_mb) {
  while (!w.memory_fits(memory_mb) || !w.fds_fit()) {
    if (!assignment.reclaim_oldest_idle(spare_key)) return false;
  }
  return true;
}

Status admit_new_sandbox(Worker& w, assignment::AssignmentService& assignment, const registry::FunctionVersion& f,
                         std::string* reason) {
  if (!w.scale_rate().try_start(f.account_id + ":" + f.name)) {
    *reason = kScaleRateReason;
    return TooManyRequests("Rate Exceeded. Function " + f.name +
                           " is scaling faster than its limit of new execution environments.");
  }
  if (!make_room(w, assignment, f.sandbox_key(), f.memory_mb)) {
    if (!w.fds_fit()) {
      *reason = kHostFdReason;
      return TooManyRequests(Worker::kNoFdsMessage);
    }
    *reason = kHostMemoryReason;
    return TooManyRequests("Rate Exceeded. The host has no memory left for a new execution environment of " +
                           std::to_string(f.memory_mb) + " MB.");
  }
  return Status::Ok();
}

}  // namespace kiln::worker
