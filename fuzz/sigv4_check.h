// What the SigV4 and HTTP fuzz targets check about one request: verification with a
// fixed key ring and clock never crashes and only ever names the key's own account;
// and the same request signed by sign_sigv4 (so that the fuzzer reaches past the
// signature comparison) verifies, whenever it is a request an SDK could send.
#pragma once

#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "api/sigv4.h"

namespace kiln::fuzz {

using Clock = std::chrono::system_clock;

// The key and clock make_corpus.py signs its seeds with.
inline constexpr char kAccessKey[] = "AKIDKILNFUZZEXAMPLE";
inline constexpr char kSecretKey[] = "kilnFuzzSecretKey/0123456789abcdefghijklm";
inline constexpr char kAccount[] = "123456789012";
inline constexpr char kRegion[] = "us-east-1";

inline Clock::time_point fixed_now() {  // 2026-01-01T00:00:00Z
  using namespace std::chrono;
  return sys_days(year(2026) / 1 / 1);
}

class FixedKeys : public api::CredentialLookup {
 public:
  std::optional<api::Credential> find(std::string_view akid) const override {
    if (akid != kAccessKey) return std::nullopt;
    return key();
  }
  static api::Credential key() { return {kAccessKey, kSecretKey, kAccount}; }
};

// A request that owns its text.
struct OwnedRequest {
  std::string method;
  std::string target;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;

  api::SignedRequest view() const {
    api::SignedRequest r{method, target, {}, body};
    for (const auto& [name, value] : headers) r.headers.emplace_back(name, value);
    return r;
  }
};

[[noreturn]] inline void fail(const char* what) {
  std::fprintf(stderr, "fuzz check failed: %s\n", what);
  std::abort();
}

inline bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i]))) return false;
  }
  return true;
}

// RFC 9110 token: what a header name is on the wire (Beast refuses anything else).
inline bool is_token(std::string_view s) {
  if (s.empty()) return false;
  for (unsigned char c : s) {
    bool ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) != std::string_view::npos;
    if (!ok) return false;
  }
  return true;
}

// Verifies the request as it is, for `service`.
inline void check_verify(const OwnedRequest& request, std::string_view service) {
  FixedKeys keys;
  auto principal = api::verify_sigv4(request.view(), keys, kRegion, service, fixed_now());
  if (std::getenv("KILN_FUZZ_VERBOSE") != nullptr) {
    std::fprintf(stderr, "verify %s %s: %s\n", request.method.c_str(), request.target.c_str(),
                 principal.ok() ? "ok" : principal.status().type().c_str());
  }
  if (principal.ok() && principal.value().account_id != kAccount) fail("verified as another account");
  if (!principal.ok() && principal.status().ok()) fail("failed verification with an OK status");
}

// Signs the request (replacing its signature headers) and verifies it.
inline void check_signed(OwnedRequest request, std::string_view service) {
  bool has_host = false, sdk_like = !request.method.empty();
  std::vector<std::pair<std::string, std::string>> kept;
  for (auto& [name, value] : request.headers) {
    if (iequals(name, "authorization") || iequals(name, "x-amz-date") || iequals(name, "x-amz-content-sha256")) continue;
    has_host = has_host || iequals(name, "host");
    sdk_like = sdk_like && is_token(name);
    kept.emplace_back(std::move(name), std::move(value));
  }
  request.headers = std::move(kept);
  if (!has_host) request.headers.emplace_back("Host", "localhost");
  auto added = api::sign_sigv4(request.view(), FixedKeys::key(), kRegion, service, fixed_now());
  for (auto& header : added) request.headers.push_back(std::move(header));
  FixedKeys keys;
  auto principal = api::verify_sigv4(request.view(), keys, kRegion, service, fixed_now());
  if (principal.ok() && principal.value().account_id != kAccount) fail("verified as another account");
  if (sdk_like && !principal.ok()) {
    std::fprintf(stderr, "%s: %s\n", principal.status().type().c_str(), principal.status().message().c_str());
    fail("a request sign_sigv4 signed does not verify");
  }
}

}  // namespace kiln::fuzz
