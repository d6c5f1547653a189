// Fuzzes the invocation record (src/async/invocation_record.h), which embeds a
// function's payloads in the document a destination receives; the record must be
// valid JSON whatever the payloads hold. Input:
//   flags byte (bit 0: an attempt has a response; bit 1: it has a payload;
//               bits 2-3: the condition)
//   request payload [SEP response payload [SEP request id]]   with SEP = "\n--kiln--\n"
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "async/invocation_record.h"

namespace {

constexpr std::string_view kSeparator = "\n--kiln--\n";

std::string_view take(std::string_view& in) {
  size_t at = in.find(kSeparator);
  std::string_view part = in.substr(0, at);
  in.remove_prefix(at == std::string_view::npos ? in.size() : at + kSeparator.size());
  return part;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  uint8_t flags = data[0];
  std::string_view in(reinterpret_cast<const char*>(data) + 1, size - 1);

  static constexpr const char* kConditions[] = {"Success", "RetriesExhausted", "EventAgeExceeded", "Success"};
  kiln::async::RecordInput record;
  record.now_ms = 1767225600123;
  record.qualified_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:fuzz:$LATEST";
  record.condition = kConditions[(flags >> 2) & 3];
  record.approximate_invoke_count = 1 + (flags >> 4);
  record.request_payload = take(in);
  std::string_view response = take(in);
  record.request_id = in.empty() ? "c0ffee00-0000-4000-8000-000000000000" : std::string(take(in));
  if (flags & 1) {
    kiln::async::AttemptResponse attempt;
    attempt.status_code = 200;
    attempt.executed_version = "$LATEST";
    if (flags & 2) attempt.payload = std::string(response);
    if (flags & 0x80) attempt.function_error = "Unhandled";
    record.response = std::move(attempt);
  }

  std::string text = kiln::async::invocation_record(record);
  if (!nlohmann::json::accept(text)) {
    std::fprintf(stderr, "fuzz check failed: the invocation record is not JSON: %s\n", text.c_str());
    std::abort();
  }
  return 0;
}
