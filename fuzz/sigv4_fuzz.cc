// Fuzzes SigV4 verification (src/api/sigv4.h) with requests that may hold any bytes,
// including ones no HTTP parser lets through. Input, as text:
//   METHOD TARGET\n
//   Name: value\n      (any number; "\r\n" also ends a line)
//   \n
//   body
// Each request is verified as it is, then signed with the fixed key and verified again
// (see sigv4_check.h).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "sigv4_check.h"

namespace {

std::string_view next_line(std::string_view& in) {
  size_t nl = in.find('\n');
  std::string_view line = in.substr(0, nl);
  in.remove_prefix(nl == std::string_view::npos ? in.size() : nl + 1);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  return line;
}

kiln::fuzz::OwnedRequest parse(std::string_view in) {
  kiln::fuzz::OwnedRequest r;
  std::string_view first = next_line(in);
  size_t space = first.find(' ');
  r.method = first.substr(0, space);
  if (space != std::string_view::npos) r.target = first.substr(space + 1);
  while (!in.empty()) {
    std::string_view line = next_line(in);
    if (line.empty()) break;
    size_t colon = line.find(':');
    std::string_view value = colon == std::string_view::npos ? std::string_view() : line.substr(colon + 1);
    while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
    r.headers.emplace_back(line.substr(0, colon), value);
  }
  r.body = in;
  return r;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  kiln::fuzz::OwnedRequest request = parse(std::string_view(reinterpret_cast<const char*>(data), size));
  std::string authorization;
  for (const auto& [name, value] : request.headers) {
    if (kiln::fuzz::iequals(name, "authorization")) authorization = value;
  }
  std::string service = kiln::api::credential_scope_service(authorization) == "logs" ? "logs" : "lambda";
  kiln::fuzz::check_verify(request, service);
  kiln::fuzz::check_signed(std::move(request), service);
  return 0;
}
