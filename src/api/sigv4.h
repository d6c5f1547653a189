// AWS Signature Version 4: verifying the requests Kiln receives (header-signed, as
// every AWS SDK and the AWS CLI send them) and signing requests (tests, benchmarks).
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"

namespace kiln::api {

// A request as it arrived on the wire. Views borrow from the caller for the call.
struct SignedRequest {
  std::string_view method;  // "GET", "POST", ...
  std::string_view target;  // request-target exactly as received: path and ?query
  std::vector<std::pair<std::string_view, std::string_view>> headers;  // names any case
  std::string_view body;
};

struct Credential {
  std::string access_key_id;
  std::string secret_access_key;
  std::string account_id;
};

// Where verification finds secrets. Implementations must be thread-safe.
class CredentialLookup {
 public:
  virtual ~CredentialLookup() = default;
  virtual std::optional<Credential> find(std::string_view access_key_id) const = 0;
};

struct Principal {
  std::string account_id;
  std::string access_key_id;
};

// Verifies an "Authorization: AWS4-HMAC-SHA256 ..." request for `service` (e.g.
// "lambda"). The region in the credential scope must equal `region`. The request date
// (X-Amz-Date) must be within 15 minutes of `now`. On failure the Status is the error
// AWS answers with: 403 MissingAuthenticationTokenException (no Authorization header),
// 403 UnrecognizedClientException (unknown key), 403 InvalidSignatureException (bad
// signature, wrong scope, stale date), 400 IncompleteSignatureException (malformed
// header). Thread-safe.
StatusOr<Principal> verify_sigv4(const SignedRequest& request, const CredentialLookup& keys,
                                 std::string_view region, std::string_view service,
                                 std::chrono::system_clock::time_point now);

// The service named by a SigV4 Authorization header's credential scope ("lambda" when
// it cannot be read: verification then refuses the request). Any bytes.
std::string credential_scope_service(std::string_view authorization);

// Signs a request: returns the headers to add (Authorization, X-Amz-Date,
// X-Amz-Content-Sha256). `request.headers` must include Host. For clients Kiln owns
// (benchmarks, tests, the kiln CLI); real compatibility is proven with real SDKs.
std::vector<std::pair<std::string, std::string>> sign_sigv4(
    const SignedRequest& request, const Credential& key, std::string_view region,
    std::string_view service, std::chrono::system_clock::time_point now);

}  // namespace kiln::api
