// Lambda's invocation record: what a destination function receives about an
// asynchronous invocation's outcome (version "1.0").
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace kiln::async {

struct AttemptResponse {
  int status_code = 200;          // HTTP status of the last attempt (200 when the function ran)
  std::string executed_version;   // "" when the function did not run
  std::string function_error;     // "" or "Unhandled"
  std::optional<std::string> payload;  // the function's response or error document
};

struct RecordInput {
  int64_t now_ms = 0;
  std::string request_id;
  std::string qualified_function_arn;  // arn:...:function:NAME:QUALIFIER
  std::string condition;               // "Success", "RetriesExhausted", "EventAgeExceeded"
  int approximate_invoke_count = 0;
  std::string request_payload;         // JSON text (validated on enqueue)
  std::optional<AttemptResponse> response;  // nullopt when no attempt has a result
};

// The record as JSON text (always valid JSON, whatever the payloads hold). A payload
// that is valid JSON is embedded as its own bytes, at any depth; anything else is
// embedded as a JSON string, invalid UTF-8 replaced by U+FFFD. Never throws.
std::string invocation_record(const RecordInput& in);

// "2019-11-14T18:16:05.568Z"
std::string iso8601_ms(int64_t epoch_ms);

}  // namespace kiln::async
