// Fuzzes the Runtime API's request handling without a sandbox: the bytes a runtime
// sends, parsed as Kiln's HTTP server parses them with the Runtime API's body limit
// (src/worker/environment.cc), routed by route_runtime_request, and the error document
// Kiln records for /error, /init/error and /restore/error posts (src/worker/runtime_api.h), which must
// be valid JSON whenever Kiln writes it (an empty body).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include <nlohmann/json.hpp>

#include "http_parse.h"
#include "worker/runtime_api.h"

namespace {

constexpr uint64_t kRuntimeBodyLimit = 7 * 1024 * 1024;

[[noreturn]] void fail(const std::string& what) {
  std::fprintf(stderr, "fuzz check failed: %s\n", what.c_str());
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using kiln::worker::RuntimeCall;
  auto parsed = kiln::fuzz::parse_request(data, size, kRuntimeBodyLimit);
  if (!parsed) return 0;
  kiln::fuzz::Request& request = *parsed;

  kiln::worker::RuntimeRoute route = kiln::worker::route_runtime_request(request.method_string(), request.target());
  bool result = route.call == RuntimeCall::kResponse || route.call == RuntimeCall::kError;
  if (!result && !route.request_id.empty()) fail("a request id for a call that has none");
  if (route.request_id.find('/') != std::string::npos) fail("a request id with a slash");

  std::string type(request["Lambda-Runtime-Function-Error-Type"]);
  if (route.call == RuntimeCall::kError || route.call == RuntimeCall::kInitError ||
      route.call == RuntimeCall::kRestoreError) {
    bool empty = request.body().empty();
    std::string recorded = kiln::worker::posted_error(std::move(request.body()), type, "Unhandled", "");
    if (empty && !nlohmann::json::accept(recorded)) fail("an error document that is not JSON: " + recorded);
    if (!empty && recorded.empty()) fail("a posted error body lost");
  }
  // Kiln's own documents, whatever the runtime sent.
  std::string doc = kiln::worker::error_document(type, request.target());
  if (!nlohmann::json::accept(doc)) fail("an error document that is not JSON: " + doc);
  return 0;
}
