#include "latency_stats.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace kiln::bench {

uint64_t percentile(const std::vector<uint64_t>& sorted_ns, double p) {
  if (sorted_ns.empty()) return 0;
  double rank = std::ceil(p / 100.0 * static_cast<double>(sorted_ns.size()));
  size_t index = rank < 1 ? 0 : static_cast<size_t>(rank) - 1;
  if (index >= sorted_ns.size()) index = sorted_ns.size() - 1;
  return sorted_ns[index];
}

LatencySummary summarize(std::vector<uint64_t>& samples_ns) {
  LatencySummary s;
  if (samples_ns.empty()) return s;
  std::sort(samples_ns.begin(), samples_ns.end());
  long double total = 0;
  for (uint64_t v : samples_ns) total += v;
  s.count = samples_ns.size();
  s.mean_us = static_cast<double>(total / samples_ns.size()) / 1e3;
  s.p50_us = percentile(samples_ns, 50) / 1e3;
  s.p90_us = percentile(samples_ns, 90) / 1e3;
  s.p99_us = percentile(samples_ns, 99) / 1e3;
  s.max_us = samples_ns.back() / 1e3;
  return s;
}

namespace {

std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(static_cast<char>(c));
    } else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out.push_back(static_cast<char>(c));
    }
  }
  return out + "\"";
}

}  // namespace

std::string to_json(const RunResult& r) {
  double rps = r.duration_s > 0 ? static_cast<double>(r.responses) / r.duration_s : 0;
  char buf[1024];
  std::snprintf(buf, sizeof buf,
                "{\"url\":%s,\"signed\":%s,\"connections\":%d,\"threads\":%d,"
                "\"warmup_s\":%.3f,\"duration_s\":%.3f,\"responses\":%llu,"
                "\"throughput_rps\":%.1f,\"non_2xx\":%llu,\"function_errors\":%llu,"
                "\"socket_errors\":%llu,\"latency_us\":{\"mean\":%.1f,\"p50\":%.1f,"
                "\"p90\":%.1f,\"p99\":%.1f,\"max\":%.1f},\"first_status_line\":%s}",
                json_string(r.url).c_str(), r.signed_request ? "true" : "false", r.connections,
                r.threads, r.warmup_s, r.duration_s, static_cast<unsigned long long>(r.responses),
                rps, static_cast<unsigned long long>(r.non_2xx),
                static_cast<unsigned long long>(r.function_errors),
                static_cast<unsigned long long>(r.socket_errors), r.latency.mean_us,
                r.latency.p50_us, r.latency.p90_us, r.latency.p99_us, r.latency.max_us,
                json_string(r.first_status_line).c_str());
  return buf;
}

}  // namespace kiln::bench
