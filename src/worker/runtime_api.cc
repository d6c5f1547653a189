#include "worker/runtime_api.h"

#include <nlohmann/json.hpp>

#include "common/json_text.h"

namespace kiln::worker {

namespace {

constexpr std::string_view kPrefix = "/2018-06-01/runtime/";
constexpr std::string_view kInvocation = "invocation/";

// The inside of a JSON string for s, through the one JSON writer (invalid UTF-8
// replaced by U+FFFD).
std::string json_escape(std::string_view s) {
  std::string quoted = json_text::dump(nlohmann::json(std::string(s)));
  return quoted.substr(1, quoted.size() - 2);
}

}  // namespace

RuntimeRoute route_runtime_request(std::string_view method, std::string_view target) {
  RuntimeRoute route;
  if (target.substr(0, kPrefix.size()) != kPrefix) return route;
  target.remove_prefix(kPrefix.size());
  if (target == "invocation/next" && method == "GET") {
    route.call = RuntimeCall::kNext;
  } else if (target == "init/error" && method == "POST") {
    route.call = RuntimeCall::kInitError;
  } else if (target == "restore/next" && method == "GET") {
    route.call = RuntimeCall::kRestoreNext;
  } else if (target == "restore/error" && method == "POST") {
    route.call = RuntimeCall::kRestoreError;
  } else if (target.substr(0, kInvocation.size()) == kInvocation && method == "POST") {
    std::string_view rest = target.substr(kInvocation.size());
    size_t slash = rest.find('/');
    if (slash == std::string_view::npos) return route;
    std::string_view what = rest.substr(slash + 1);
    if (what == "response") route.call = RuntimeCall::kResponse;
    if (what == "error") route.call = RuntimeCall::kError;
    if (route.call != RuntimeCall::kUnknown) route.request_id = rest.substr(0, slash);
  }
  return route;
}

std::string error_document(std::string_view type, std::string_view message) {
  return R"({"errorType":")" + json_escape(type) + R"(","errorMessage":")" + json_escape(message) + R"("})";
}

std::string posted_error(std::string body, std::string_view error_type_header, std::string_view default_type,
                         std::string_view message) {
  if (!body.empty()) return body;
  return error_document(error_type_header.empty() ? default_type : error_type_header, message);
}

}  // namespace kiln::worker
