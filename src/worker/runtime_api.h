// The Runtime API as a sandbox's runtime calls it, without the sandbox: which call a
// request is, and the error documents Kiln records. Pure functions of their input, so
// they can be tested and fuzzed alone; Environment serves the calls.
#pragma once

#include <string>
#include <string_view>

namespace kiln::worker {

enum class RuntimeCall {
  kUnknown,    // not a Runtime API call: 404 UnknownPath
  kNext,       // GET  /2018-06-01/runtime/invocation/next
  kResponse,   // POST /2018-06-01/runtime/invocation/{id}/response
  kError,      // POST /2018-06-01/runtime/invocation/{id}/error
  kInitError,  // POST /2018-06-01/runtime/init/error
  // SnapStart: the runtime is initialized and its before-snapshot hooks have run; the
  // answer comes after a restore (the runtime then runs its after-restore hooks).
  kRestoreNext,   // GET  /2018-06-01/runtime/restore/next
  kRestoreError,  // POST /2018-06-01/runtime/restore/error (an after-restore hook failed)
};

struct RuntimeRoute {
  RuntimeCall call = RuntimeCall::kUnknown;
  // kResponse and kError: the id in the path, as sent (any bytes, possibly empty); the
  // caller matches it against the invocation it delivered.
  std::string request_id;
};

// Routes a request by its method (as on the wire, e.g. "GET") and request-target (as
// received). Any bytes.
RuntimeRoute route_runtime_request(std::string_view method, std::string_view target);

// {"errorType":"<type>","errorMessage":"<message>"}: valid JSON for any bytes.
std::string error_document(std::string_view type, std::string_view message);

// What Kiln records for an error a runtime posts (/invocation/{id}/error, /init/error,
// /restore/error):
// the body as sent (bytes, never parsed) or, when it is empty, an error document whose
// type is the Lambda-Runtime-Function-Error-Type header (default_type when that is
// empty) and whose message is `message`.
std::string posted_error(std::string body, std::string_view error_type_header, std::string_view default_type,
                         std::string_view message);

}  // namespace kiln::worker
