// Kiln's Prometheus metrics: per function version (invocations, errors, throttles, cold
// and warm starts, concurrent executions, duration and init-duration histograms),
// collected on the invoke path with atomics, plus gauges other components register
// (host sandboxes, memory, async queue) that are read at scrape time. Served as
// GET /metrics in the Prometheus text exposition format 0.0.4.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "api/invoke_observer.h"

namespace kiln::api {
class Frontend;
}

namespace kiln::metrics {

// Label pairs, e.g. {{"state", "idle"}}; names must match [a-zA-Z_][a-zA-Z0-9_]*.
using Labels = std::vector<std::pair<std::string, std::string>>;

// A histogram with fixed bounds (seconds), updated lock-free.
class Histogram {
 public:
  static constexpr double kBounds[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                       1,     2.5,    5,     10,   30,    60,   300, 900};
  static constexpr size_t kBuckets = sizeof(kBounds) / sizeof(kBounds[0]);
  void observe_ms(double ms);
  // Cumulative counts per bound, then the count, and the sum in seconds.
  void snapshot(std::vector<uint64_t>* cumulative, uint64_t* count, double* sum_seconds) const;

 private:
  std::atomic<uint64_t> buckets_[kBuckets + 1] = {};  // last: above every bound
  std::atomic<uint64_t> sum_us_{0};
};

class Metrics : public api::InvokeObserver {
 public:
  void on_invoke_start(const registry::FunctionVersion& f) override;
  void on_invoke_end(const registry::FunctionVersion& f, const worker::InvokeResult& result) override;
  void on_throttle(const registry::FunctionVersion& f) override;

  // Registers a gauge read at every scrape. `read` runs on the scraping thread and must
  // be thread-safe and quick. Register before serving.
  void add_gauge(const std::string& name, const std::string& help, std::function<double()> read);
  // A gauge family with labels: `read` returns one (labels, value) per series.
  void add_gauge_family(const std::string& name, const std::string& help,
                        std::function<std::vector<std::pair<Labels, double>>()> read);

  // Current values of the registered gauges (name, labels, value), for `kiln status`.
  struct GaugeValue {
    std::string name;
    Labels labels;
    double value = 0;
  };
  std::vector<GaugeValue> read_gauges() const;
  // The whole exposition, Prometheus text format. Thread-safe.
  std::string render() const;
  // Serves GET /metrics through the frontend. The Metrics must outlive the serving.
  void attach(api::Frontend& frontend);

 private:
  struct Series {
    std::string account, function, version;
    std::atomic<uint64_t> invocations{0}, errors{0}, throttles{0}, cold{0}, warm{0};
    std::atomic<int64_t> concurrent{0};
    Histogram duration, init;
  };
  struct Key {
    std::string account, function, version;
    bool operator==(const Key&) const = default;
  };
  struct KeyView {
    std::string_view account, function, version;
  };
  struct KeyHash {
    using is_transparent = void;
    size_t operator()(const KeyView& k) const;
    size_t operator()(const Key& k) const { return (*this)(KeyView{k.account, k.function, k.version}); }
  };
  struct KeyEq {
    using is_transparent = void;
    static KeyView view(const Key& k) { return {k.account, k.function, k.version}; }
    static KeyView view(const KeyView& k) { return k; }
    template <typename A, typename B>
    bool operator()(const A& a, const B& b) const {
      KeyView x = view(a), y = view(b);
      return x.account == y.account && x.function == y.function && x.version == y.version;
    }
  };
  struct Gauge {
    std::string name, help;
    std::function<std::vector<std::pair<Labels, double>>()> read;
  };

  Series& series(const registry::FunctionVersion& f);

  mutable std::shared_mutex mu_;
  std::unordered_map<Key, std::unique_ptr<Series>, KeyHash, KeyEq> series_;  // guarded by mu_
  std::vector<Gauge> gauges_;  // written before serving only
};

// Text-format helpers (exposed for tests).
std::string escape_label_value(const std::string& v);
std::string format_value(double v);

}  // namespace kiln::metrics
