#include "metrics/metrics.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <thread>

namespace kiln::metrics {
namespace {

registry::FunctionVersion fn(const std::string& name, const std::string& version = "$LATEST") {
  registry::FunctionVersion f;
  f.account_id = "123456789012";
  f.name = name;
  f.version = version;
  return f;
}

worker::InvokeResult result(double duration_ms, bool cold, double init_ms = 0, const char* error = "") {
  worker::InvokeResult r;
  r.duration_ms = duration_ms;
  r.cold_start = cold;
  r.init_ms = init_ms;
  r.function_error = error;
  return r;
}

bool contains(const std::string& text, const std::string& line) {
  return text.find("\n" + line + "\n") != std::string::npos || text.rfind(line + "\n", 0) == 0;
}

TEST(Metrics, CountsInvocationsErrorsStartsAndDurations) {
  Metrics m;
  auto f = fn("hello");
  m.on_invoke_start(f);
  m.on_invoke_end(f, result(3.5, true, 120));
  m.on_invoke_start(f);
  m.on_invoke_end(f, result(0.4, false, 0, "Unhandled"));
  std::string text = m.render();
  std::string l = R"({account="123456789012",function="hello",version="$LATEST"})";
  EXPECT_TRUE(contains(text, "kiln_invocations_total" + l + " 2")) << text;
  EXPECT_TRUE(contains(text, "kiln_errors_total" + l + " 1"));
  EXPECT_TRUE(contains(text, "kiln_cold_starts_total" + l + " 1"));
  EXPECT_TRUE(contains(text, "kiln_warm_starts_total" + l + " 1"));
  EXPECT_TRUE(contains(text, "kiln_concurrent_executions" + l + " 0"));
  std::string lb = R"({account="123456789012",function="hello",version="$LATEST",)";
  EXPECT_TRUE(contains(text, "kiln_invocation_duration_seconds_bucket" + lb + "le=\"0.001\"} 1"));
  EXPECT_TRUE(contains(text, "kiln_invocation_duration_seconds_bucket" + lb + "le=\"0.0025\"} 1"));
  EXPECT_TRUE(contains(text, "kiln_invocation_duration_seconds_bucket" + lb + "le=\"0.005\"} 2"));
  EXPECT_TRUE(contains(text, "kiln_invocation_duration_seconds_bucket" + lb + "le=\"+Inf\"} 2"));
  EXPECT_TRUE(contains(text, "kiln_invocation_duration_seconds_count" + l + " 2"));
  EXPECT_TRUE(contains(text, "kiln_init_duration_seconds_count" + l + " 1"));
  EXPECT_TRUE(contains(text, "kiln_init_duration_seconds_sum" + l + " 0.12"));
}

TEST(Metrics, ThrottlesAreNotInvocationsAndConcurrencyReturnsToZero) {
  Metrics m;
  auto f = fn("busy", "3");
  m.on_invoke_start(f);
  m.on_throttle(f);
  worker::InvokeResult r;
  r.status = TooManyRequests("no room");
  m.on_invoke_end(f, r);
  std::string text = m.render();
  std::string l = R"({account="123456789012",function="busy",version="3"})";
  EXPECT_TRUE(contains(text, "kiln_throttles_total" + l + " 1")) << text;
  EXPECT_TRUE(contains(text, "kiln_invocations_total" + l + " 0"));
  EXPECT_TRUE(contains(text, "kiln_concurrent_executions" + l + " 0"));
}

TEST(Metrics, PlatformErrorsCountAsErrorsWithoutDuration) {
  Metrics m;
  auto f = fn("broken");
  m.on_invoke_start(f);
  worker::InvokeResult r;
  r.status = ServiceError("sandbox failed");
  m.on_invoke_end(f, r);
  std::string text = m.render();
  std::string l = R"({account="123456789012",function="broken",version="$LATEST"})";
  EXPECT_TRUE(contains(text, "kiln_errors_total" + l + " 1"));
  EXPECT_TRUE(contains(text, "kiln_invocation_duration_seconds_count" + l + " 0"));
}

TEST(Metrics, GaugesAreReadAtScrapeTimeAndLabelValuesEscaped) {
  Metrics m;
  int depth = 3;
  m.add_gauge("kiln_async_queue_depth", "Events waiting.", [&] { return static_cast<double>(depth); });
  m.add_gauge_family("kiln_sandboxes", "Sandboxes by state.", [] {
    return std::vector<std::pair<Labels, double>>{{{{"state", "idle"}}, 2}, {{{"state", "we\"ird\\\n"}}, 1.5}};
  });
  depth = 7;
  std::string text = m.render();
  EXPECT_TRUE(contains(text, "# TYPE kiln_async_queue_depth gauge"));
  EXPECT_TRUE(contains(text, "kiln_async_queue_depth 7")) << text;
  EXPECT_TRUE(contains(text, "kiln_sandboxes{state=\"idle\"} 2"));
  EXPECT_TRUE(contains(text, "kiln_sandboxes{state=\"we\\\"ird\\\\\\n\"} 1.5")) << text;
}

TEST(Metrics, ConcurrentInvokesFromManyThreadsAreAllCounted) {
  Metrics m;
  auto a = fn("a"), b = fn("b");
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 5000; ++i) {
        auto& f = (i + t) % 2 ? a : b;
        m.on_invoke_start(f);
        m.on_invoke_end(f, result(1, false));
      }
    });
  }
  for (auto& t : threads) t.join();
  std::string text = m.render();
  EXPECT_TRUE(contains(text, R"(kiln_invocations_total{account="123456789012",function="a",version="$LATEST"} 10000)"));
  EXPECT_TRUE(contains(text, R"(kiln_invocations_total{account="123456789012",function="b",version="$LATEST"} 10000)"));
}

TEST(Metrics, FormatsValuesAsPrometheusDoes) {
  EXPECT_EQ(format_value(3), "3");
  EXPECT_EQ(format_value(0.25), "0.25");
  EXPECT_EQ(format_value(std::numeric_limits<double>::infinity()), "+Inf");
  EXPECT_EQ(format_value(std::nan("")), "NaN");
}

}  // namespace
}  // namespace kiln::metrics
