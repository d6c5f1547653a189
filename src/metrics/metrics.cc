#include "metrics/metrics.h"

#include <boost/beast/http/field.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <tuple>

#include "api/frontend.h"

namespace kiln::metrics {

namespace http = boost::beast::http;

void Histogram::observe_ms(double ms) {
  if (!(ms >= 0)) ms = 0;
  double s = ms / 1000.0;
  size_t i = 0;
  while (i < kBuckets && s > kBounds[i]) ++i;
  buckets_[i].fetch_add(1, std::memory_order_relaxed);
  sum_us_.fetch_add(static_cast<uint64_t>(ms * 1000.0), std::memory_order_relaxed);
}

void Histogram::snapshot(std::vector<uint64_t>* cumulative, uint64_t* count, double* sum_seconds) const {
  cumulative->assign(kBuckets, 0);
  uint64_t running = 0;
  for (size_t i = 0; i < kBuckets; ++i) {
    running += buckets_[i].load(std::memory_order_relaxed);
    (*cumulative)[i] = running;
  }
  *count = running + buckets_[kBuckets].load(std::memory_order_relaxed);
  *sum_seconds = static_cast<double>(sum_us_.load(std::memory_order_relaxed)) / 1e6;
}

size_t Metrics::KeyHash::operator()(const KeyView& k) const {
  std::hash<std::string_view> h;
  return h(k.account) ^ (h(k.function) * 31) ^ (h(k.version) * 1000003);
}

Metrics::Series& Metrics::series(const registry::FunctionVersion& f) {
  KeyView view{f.account_id, f.name, f.version};
  {
    std::shared_lock lock(mu_);
    auto it = series_.find(view);
    if (it != series_.end()) return *it->second;
  }
  // First invoke of this version since start: allocate its series once.
  std::unique_lock lock(mu_);
  auto& slot = series_[Key{f.account_id, f.name, f.version}];
  if (!slot) {
    slot = std::make_unique<Series>();
    slot->account = f.account_id;
    slot->function = f.name;
    slot->version = f.version;
  }
  return *slot;
}

void Metrics::on_invoke_start(const registry::FunctionVersion& f) {
  series(f).concurrent.fetch_add(1, std::memory_order_relaxed);
}

void Metrics::on_invoke_end(const registry::FunctionVersion& f, const worker::InvokeResult& r) {
  Series& s = series(f);
  s.concurrent.fetch_sub(1, std::memory_order_relaxed);
  if (r.status.http_status() == 429) return;  // counted by on_throttle, not an invocation
  s.invocations.fetch_add(1, std::memory_order_relaxed);
  if (!r.status.ok() || !r.function_error.empty()) s.errors.fetch_add(1, std::memory_order_relaxed);
  if (!r.status.ok()) return;  // never ran in a sandbox: no duration, no start
  (r.cold_start ? s.cold : s.warm).fetch_add(1, std::memory_order_relaxed);
  s.duration.observe_ms(r.duration_ms);
  if (r.cold_start && r.init_ms > 0) s.init.observe_ms(r.init_ms);
}

void Metrics::on_throttle(const registry::FunctionVersion& f) {
  series(f).throttles.fetch_add(1, std::memory_order_relaxed);
}

void Metrics::add_gauge(const std::string& name, const std::string& help, std::function<double()> read) {
  gauges_.push_back({name, help, [read = std::move(read)] {
                       return std::vector<std::pair<Labels, double>>{{Labels{}, read()}};
                     }});
}

void Metrics::add_gauge_family(const std::string& name, const std::string& help,
                               std::function<std::vector<std::pair<Labels, double>>()> read) {
  gauges_.push_back({name, help, std::move(read)});
}

std::vector<Metrics::GaugeValue> Metrics::read_gauges() const {
  std::vector<GaugeValue> out;
  for (const auto& g : gauges_) {
    for (auto& [l, v] : g.read()) out.push_back({g.name, l, v});
  }
  return out;
}

std::string escape_label_value(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

std::string format_value(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (v == std::floor(v) && std::fabs(v) < 1e15) return std::to_string(static_cast<long long>(v));
  char buf[32];
  for (int precision : {15, 16, 17}) {  // the shortest text that reads back as v
    std::snprintf(buf, sizeof buf, "%.*g", precision, v);
    if (std::strtod(buf, nullptr) == v) break;
  }
  return buf;
}

namespace {

std::string labels_text(const Labels& labels, const std::string& extra_name = "", const std::string& extra = "") {
  if (labels.empty() && extra_name.empty()) return "";
  std::string out = "{";
  bool first = true;
  for (const auto& [k, v] : labels) {
    if (!first) out += ",";
    first = false;
    out += k + "=\"" + escape_label_value(v) + "\"";
  }
  if (!extra_name.empty()) out += std::string(first ? "" : ",") + extra_name + "=\"" + extra + "\"";
  return out + "}";
}

void header(std::string* out, const std::string& name, const char* type, const std::string& help) {
  *out += "# HELP " + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
}

}  // namespace

std::string Metrics::render() const {
  std::vector<const Series*> all;
  {
    std::shared_lock lock(mu_);
    for (const auto& [k, s] : series_) all.push_back(s.get());
  }
  std::sort(all.begin(), all.end(), [](const Series* a, const Series* b) {
    return std::tie(a->account, a->function, a->version) < std::tie(b->account, b->function, b->version);
  });
  auto labels = [](const Series* s) {
    return Labels{{"account", s->account}, {"function", s->function}, {"version", s->version}};
  };
  std::string out;
  struct Counter {
    const char* name;
    const char* help;
    const std::atomic<uint64_t> Series::*field;
  };
  const Counter counters[] = {
      {"kiln_invocations_total", "Invocations run (throttled ones excluded).", &Series::invocations},
      {"kiln_errors_total", "Invocations that ended in a function or platform error.", &Series::errors},
      {"kiln_throttles_total", "Invocations refused with 429 for lack of capacity.", &Series::throttles},
      {"kiln_cold_starts_total", "Invocations that initialized a new sandbox.", &Series::cold},
      {"kiln_warm_starts_total", "Invocations served by a warm sandbox.", &Series::warm},
  };
  for (const auto& c : counters) {
    header(&out, c.name, "counter", c.help);
    for (const Series* s : all) {
      out += c.name + labels_text(labels(s)) + " " + std::to_string((s->*c.field).load()) + "\n";
    }
  }
  header(&out, "kiln_concurrent_executions", "gauge", "Invocations running now.");
  for (const Series* s : all) {
    out += "kiln_concurrent_executions" + labels_text(labels(s)) + " " + std::to_string(s->concurrent.load()) + "\n";
  }
  struct Hist {
    const char* name;
    const char* help;
    const Histogram Series::*field;
  };
  const Hist hists[] = {
      {"kiln_invocation_duration_seconds", "Function run time per invocation (REPORT Duration).", &Series::duration},
      {"kiln_init_duration_seconds", "Sandbox initialization time of cold starts (REPORT Init Duration).",
       &Series::init},
  };
  std::vector<uint64_t> cumulative;
  for (const auto& h : hists) {
    std::string name = h.name;
    header(&out, name, "histogram", h.help);
    for (const Series* s : all) {
      uint64_t count = 0;
      double sum = 0;
      (s->*h.field).snapshot(&cumulative, &count, &sum);
      Labels l = labels(s);
      for (size_t i = 0; i < Histogram::kBuckets; ++i) {
        out += name + "_bucket" + labels_text(l, "le", format_value(Histogram::kBounds[i])) + " " +
               std::to_string(cumulative[i]) + "\n";
      }
      out += name + "_bucket" + labels_text(l, "le", "+Inf") + " " + std::to_string(count) + "\n";
      out += name + "_sum" + labels_text(l) + " " + format_value(sum) + "\n";
      out += name + "_count" + labels_text(l) + " " + std::to_string(count) + "\n";
    }
  }
  for (const auto& g : gauges_) {
    header(&out, g.name, "gauge", g.help);
    for (const auto& [l, v] : g.read()) out += g.name + labels_text(l) + " " + format_value(v) + "\n";
  }
  return out;
}

void Metrics::attach(api::Frontend& frontend) {
  frontend.add_public_path("/metrics", [this](net::Request&& request, net::ResponderPtr responder) {
    net::Response r(http::status::ok, request.version());
    r.set(http::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
    r.body() = render();
    r.prepare_payload();
    responder->respond(std::move(r));
  });
}

}  // namespace kiln::metrics
