// Fuzzes Kiln's request path up to dispatch, without a server: the bytes of a
// connection parsed as src/net/http_server.cc parses them (Boost.Beast, Kiln's limits),
// then what src/api/frontend.cc does with the request before any operation runs: the
// credential scope's service, SigV4 verification (fixed key ring and clock, and the
// request re-signed so that verification succeeds; see sigv4_check.h) and the router.
#include <cstddef>
#include <cstdint>
#include <string>

#include <boost/beast/http/field.hpp>

#include "api/router.h"
#include "http_parse.h"
#include "sigv4_check.h"

namespace {

constexpr uint64_t kMaxRequestBody = 70167211;  // as src/cli/server.cc configures the frontend

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto parsed = kiln::fuzz::parse_request(data, size, kMaxRequestBody);
  if (!parsed) return 0;
  const kiln::fuzz::Request& request = *parsed;

  kiln::fuzz::OwnedRequest owned;
  owned.method = request.method_string();
  owned.target = request.target();
  for (const auto& field : request) owned.headers.emplace_back(field.name_string(), field.value());
  owned.body = request.body();

  std::string service =
      kiln::api::credential_scope_service(request[boost::beast::http::field::authorization]);
  if (service != "logs") service = "lambda";  // the services Kiln serves
  kiln::fuzz::check_verify(owned, service);

  auto match = kiln::api::route(owned.method, owned.target);
  if (match && match->operation.empty()) kiln::fuzz::fail("a route without an operation");

  kiln::fuzz::check_signed(std::move(owned), service);
  return 0;
}
