#include "worker/runtime_api.h"

#include <cstdint>
#include <cstdio>

namespace kiln::worker {

namespace {

constexpr std::string_view kPrefix = "/2018-06-01/runtime/";
constexpr std::string_view kInvocation = "invocation/";
constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD

// Length of the valid UTF-8 sequence starting at s[i], or 0 when there is none there
// (RFC 3629: no overlong forms, no surrogates, nothing above U+10FFFF).
size_t utf8_length(std::string_view s, size_t i) {
  auto byte = [&](size_t at) { return static_cast<uint8_t>(s[at]); };
  auto cont = [&](size_t at) { return at < s.size() && (byte(at) & 0xC0) == 0x80; };
  uint8_t b = byte(i);
  if (b < 0x80) return 1;
  if (b >= 0xC2 && b <= 0xDF) return cont(i + 1) ? 2 : 0;
  if (b >= 0xE0 && b <= 0xEF) {
    if (!cont(i + 1) || !cont(i + 2)) return 0;
    uint8_t b1 = byte(i + 1);
    if (b == 0xE0 && b1 < 0xA0) return 0;   // overlong
    if (b == 0xED && b1 >= 0xA0) return 0;  // surrogate
    return 3;
  }
  if (b >= 0xF0 && b <= 0xF4) {
    if (!cont(i + 1) || !cont(i + 2) || !cont(i + 3)) return 0;
    uint8_t b1 = byte(i + 1);
    if (b == 0xF0 && b1 < 0x90) return 0;   // overlong
    if (b == 0xF4 && b1 >= 0x90) return 0;  // above U+10FFFF
    return 4;
  }
  return 0;
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

std::string json_escape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(c));
          out += buf;
        } else if (size_t n = utf8_length(s, i); n == 0) {
          out += kReplacement;
        } else {
          out.append(s.substr(i, n));
          i += n;
          continue;
        }
    }
    ++i;
  }
  return out;
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
