// Fuzzes the router (src/api/router.h). Input: METHOD, one space, then the
// request-target (any bytes).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "api/router.h"

namespace {

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "fuzz check failed: %s\n", what);
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  size_t space = in.find(' ');
  std::string_view method = in.substr(0, space);
  std::string_view target = space == std::string_view::npos ? std::string_view() : in.substr(space + 1);

  auto match = kiln::api::route(method, target);
  if (match) {
    if (match->operation.empty()) fail("a route without an operation");
    if (match->success_code < 200 || match->success_code > 299) fail("a success code that is not 2xx");
    for (const auto& [name, value] : match->params) {
      if (name.empty() || value.empty()) fail("an empty path parameter");
    }
    if (match->query_list.size() < match->query.size()) fail("query parameters lost");
  }

  std::string decoded;
  if (kiln::api::percent_decode(target, &decoded) && decoded.size() > target.size()) {
    fail("percent_decode grew its input");
  }
  return 0;
}
