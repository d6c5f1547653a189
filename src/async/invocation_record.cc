#include "async/invocation_record.h"

#include <ctime>

#include <nlohmann/json.hpp>

namespace kiln::async {

using nlohmann::json;

namespace {
json embed(const std::string& text) {
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded()) return text;
  return j;
}
}  // namespace

std::string iso8601_ms(int64_t epoch_ms) {
  std::time_t secs = static_cast<std::time_t>(epoch_ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[96];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(epoch_ms % 1000));
  return buf;
}

std::string invocation_record(const RecordInput& in) {
  json record = {
      {"version", "1.0"},
      {"timestamp", iso8601_ms(in.now_ms)},
      {"requestContext",
       {{"requestId", in.request_id},
        {"functionArn", in.qualified_function_arn},
        {"condition", in.condition},
        {"approximateInvokeCount", in.approximate_invoke_count}}},
      {"requestPayload", embed(in.request_payload.empty() ? "{}" : in.request_payload)},
  };
  if (in.response) {
    json rc = {{"statusCode", in.response->status_code}};
    if (!in.response->executed_version.empty()) rc["executedVersion"] = in.response->executed_version;
    if (!in.response->function_error.empty()) rc["functionError"] = in.response->function_error;
    record["responseContext"] = rc;
    if (in.response->payload) record["responsePayload"] = embed(*in.response->payload);
  }
  return record.dump();
}

}  // namespace kiln::async
