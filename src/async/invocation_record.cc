#include "async/invocation_record.h"

#include <ctime>

#include <nlohmann/json.hpp>

#include "common/json_text.h"

namespace kiln::async {

using nlohmann::json;


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
  // Payloads are bytes from callers and functions: spliced in as text, never parsed
  // into a DOM (no recursion on their depth, no throwing on their encoding).
  json context = {{"requestId", in.request_id},
                  {"functionArn", in.qualified_function_arn},
                  {"condition", in.condition},
                  {"approximateInvokeCount", in.approximate_invoke_count}};
  std::string out = R"({"version":"1.0","timestamp":)" + json_text::dump(iso8601_ms(in.now_ms)) +
                    R"(,"requestContext":)" + json_text::dump(context) + R"(,"requestPayload":)" +
                    json_text::embed(in.request_payload.empty() ? "{}" : in.request_payload);
  if (in.response) {
    json rc = {{"statusCode", in.response->status_code}};
    if (!in.response->executed_version.empty()) rc["executedVersion"] = in.response->executed_version;
    if (!in.response->function_error.empty()) rc["functionError"] = in.response->function_error;
    out += R"(,"responseContext":)" + json_text::dump(rc);
    if (in.response->payload) out += R"(,"responsePayload":)" + json_text::embed(*in.response->payload);
  }
  out += "}";
  return out;
}

}  // namespace kiln::async
