// AWS Signature Version 4, header form, as botocore's SigV4Auth computes it for
// non-S3 services (botocore/auth.py): the canonical URI is the wire path with dot
// segments and empty segments removed and then percent-encoded once more (so "%3A"
// on the wire is "%253A" in the canonical request), the canonical query is each
// key=value decoded and re-encoded with RFC 3986 unreserved characters kept, sorted.
#include "api/sigv4.h"

#include <algorithm>
#include <array>
#include <cstdio>
#include <mutex>
#include <unordered_map>

#include "common/crypto.h"

namespace kiln::api {
namespace {

using Clock = std::chrono::system_clock;
using Header = std::pair<std::string_view, std::string_view>;
// Request dates in whole seconds: a Clock::time_point (nanoseconds in 64 bits) cannot
// hold the years past 2262 that a request may name.
using Seconds = std::chrono::sys_seconds;

constexpr std::string_view kAlgorithm = "AWS4-HMAC-SHA256";
constexpr std::string_view kTerminator = "aws4_request";
constexpr std::string_view kUnsignedPayload = "UNSIGNED-PAYLOAD";
constexpr auto kMaxSkew = std::chrono::minutes(15);

// ---- Errors, worded as AWS words them. ----

Status MissingToken() {
  return {403, "MissingAuthenticationTokenException", "Missing Authentication Token"};
}
Status UnrecognizedClient() {
  return {403, "UnrecognizedClientException",
          "The security token included in the request is invalid."};
}
Status InvalidSignature(std::string message) {
  return {403, "InvalidSignatureException", std::move(message)};
}
Status SignatureMismatch() {
  return InvalidSignature(
      "The request signature we calculated does not match the signature you provided. "
      "Check your AWS Secret Access Key and signing method. Consult the service "
      "documentation for details.");
}
Status IncompleteSignature(std::string message) {
  return {400, "IncompleteSignatureException", std::move(message)};
}

// ---- Small text helpers. ----

char lower(char c) { return (c >= 'A' && c <= 'Z') ? char(c - 'A' + 'a') : c; }

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (lower(a[i]) != lower(b[i])) return false;
  return true;
}

// Python's str.split() whitespace, ASCII part (botocore trims header values with it).
bool is_space(char c) {
  return c == ' ' || (c >= '\t' && c <= '\r') || (c >= '\x1c' && c <= '\x1f');
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

bool is_unreserved(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
         c == '-' || c == '_' || c == '.' || c == '~';
}

void append_encoded(std::string& out, std::string_view s, bool keep_slash) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  for (unsigned char c : s) {
    if (is_unreserved(c) || (keep_slash && c == '/')) {
      out.push_back(char(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Percent-decodes valid escapes; anything else (a lone '%', '+') stays literal.
std::string percent_decode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    int hi = 0, lo = 0;
    if (s[i] == '%' && i + 2 < s.size() && (hi = hex_value(s[i + 1])) >= 0 &&
        (lo = hex_value(s[i + 2])) >= 0) {
      out.push_back(char(hi * 16 + lo));
      i += 2;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

const std::string_view* find_header(const SignedRequest& r, std::string_view name) {
  for (const auto& h : r.headers)
    if (iequals(h.first, name)) return &h.second;
  return nullptr;
}

// ---- Canonical request pieces. ----

// botocore's remove_dot_segments: drops empty and "." segments, resolves "..", keeps a
// trailing slash only when something remains; then quote(path, safe='/~').
void append_canonical_uri(std::string& out, std::string_view path) {
  if (path.empty()) {
    out.push_back('/');
    return;
  }
  bool plain = path.front() == '/';
  for (size_t i = 1; plain && i < path.size(); ++i) {
    if (path[i - 1] != '/') continue;
    std::string_view rest = path.substr(i);
    std::string_view seg = rest.substr(0, rest.find('/'));
    if (seg == "." || seg == ".." || (seg.empty() && i != path.size())) plain = false;
  }
  if (plain) {  // The common case: nothing to normalize.
    append_encoded(out, path, true);
    return;
  }
  std::vector<std::string_view> kept;
  for (size_t pos = 0; pos <= path.size();) {
    size_t end = std::min(path.find('/', pos), path.size());
    std::string_view seg = path.substr(pos, end - pos);
    if (seg == "..") {
      if (!kept.empty()) kept.pop_back();
    } else if (!seg.empty() && seg != ".") {
      kept.push_back(seg);
    }
    pos = end + 1;
  }
  if (path.front() == '/') out.push_back('/');
  for (size_t i = 0; i < kept.size(); ++i) {
    if (i) out.push_back('/');
    append_encoded(out, kept[i], true);
  }
  if (path.back() == '/' && !kept.empty()) out.push_back('/');
}

void append_canonical_query(std::string& out, std::string_view query) {
  if (query.empty()) return;
  std::vector<std::pair<std::string, std::string>> pairs;
  for (size_t pos = 0; pos <= query.size();) {
    size_t end = std::min(query.find('&', pos), query.size());
    std::string_view pair = query.substr(pos, end - pos);
    pos = end + 1;
    if (pair.empty()) continue;
    size_t eq = pair.find('=');
    std::string_view key = pair.substr(0, eq);
    std::string_view value = eq == std::string_view::npos ? "" : pair.substr(eq + 1);
    auto& p = pairs.emplace_back();
    append_encoded(p.first, percent_decode(key), false);
    append_encoded(p.second, percent_decode(value), false);
  }
  std::sort(pairs.begin(), pairs.end());
  for (size_t i = 0; i < pairs.size(); ++i) {
    if (i) out.push_back('&');
    out += pairs[i].first;
    out.push_back('=');
    out += pairs[i].second;
  }
}

// Appends "name:value,value\n" for each name of `signed_headers` (';'-separated), the
// values of every header of that name trimmed and with whitespace runs collapsed.
void append_canonical_headers(std::string& out, std::string_view signed_headers,
                              const std::vector<Header>& headers) {
  for (size_t pos = 0; pos <= signed_headers.size();) {
    size_t end = std::min(signed_headers.find(';', pos), signed_headers.size());
    std::string_view name = signed_headers.substr(pos, end - pos);
    pos = end + 1;
    for (char c : name) out.push_back(lower(c));
    out.push_back(':');
    bool first_value = true;
    for (const auto& h : headers) {
      if (!iequals(h.first, name)) continue;
      if (!first_value) out.push_back(',');
      first_value = false;
      bool in_space = false;
      for (char c : trim(h.second)) {
        if (is_space(c)) {
          in_space = true;
          continue;
        }
        if (in_space) out.push_back(' ');
        in_space = false;
        out.push_back(c);
      }
    }
    out.push_back('\n');
  }
}

// The request-target split into path and query; an absolute-form target
// ("http://host/path") is reduced to its path.
std::pair<std::string_view, std::string_view> split_target(std::string_view target) {
  if (!target.empty() && target.front() != '/') {
    size_t scheme = target.find("://");
    if (scheme != std::string_view::npos) {
      size_t slash = target.find_first_of("/?", scheme + 3);
      target = slash == std::string_view::npos ? std::string_view() : target.substr(slash);
    }
  }
  target = target.substr(0, target.find('#'));
  size_t q = target.find('?');
  if (q == std::string_view::npos) return {target, {}};
  return {target.substr(0, q), target.substr(q + 1)};
}

// ---- Dates. ----

std::string format_amz_date(Seconds t) {
  auto day = std::chrono::floor<std::chrono::days>(t);
  std::chrono::year_month_day ymd(day);
  std::chrono::hh_mm_ss hms(std::chrono::floor<std::chrono::seconds>(t - day));
  char buf[32];
  std::snprintf(buf, sizeof buf, "%04d%02u%02uT%02d%02d%02dZ", int(ymd.year()),
                unsigned(ymd.month()), unsigned(ymd.day()), int(hms.hours().count()),
                int(hms.minutes().count()), int(hms.seconds().count()));
  return buf;
}

bool parse_digits(std::string_view s, int* out) {
  int v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  *out = v;
  return !s.empty();
}

std::optional<Seconds> make_time(int y, int mo, int d, int h, int mi, int s) {
  std::chrono::year_month_day ymd{std::chrono::year(y), std::chrono::month(unsigned(mo)),
                                  std::chrono::day(unsigned(d))};
  if (!ymd.ok() || h > 23 || mi > 59 || s > 60) return std::nullopt;
  return std::chrono::sys_days(ymd) + std::chrono::hours(h) + std::chrono::minutes(mi) +
         std::chrono::seconds(s);
}

// "20150830T123600Z".
std::optional<Seconds> parse_amz_date(std::string_view s) {
  int y, mo, d, h, mi, sec;
  if (s.size() != 16 || s[8] != 'T' || s[15] != 'Z' || !parse_digits(s.substr(0, 4), &y) ||
      !parse_digits(s.substr(4, 2), &mo) || !parse_digits(s.substr(6, 2), &d) ||
      !parse_digits(s.substr(9, 2), &h) || !parse_digits(s.substr(11, 2), &mi) ||
      !parse_digits(s.substr(13, 2), &sec))
    return std::nullopt;
  return make_time(y, mo, d, h, mi, sec);
}

// RFC 1123 in UTC: "Sun, 30 Aug 2015 12:36:00 GMT", or "... -0000" as botocore
// (email.utils.formatdate) writes it.
std::optional<Seconds> parse_http_date(std::string_view s) {
  static constexpr std::string_view kMonths = "JanFebMarAprMayJunJulAugSepOctNovDec";
  int y, d, h, mi, sec;
  std::string_view zone = s.size() > 25 ? s.substr(25) : std::string_view();
  if (zone != " GMT" && zone != " UTC" && zone != " -0000" && zone != " +0000") {
    return std::nullopt;
  }
  if (s.substr(3, 2) != ", " ||
      !parse_digits(s.substr(5, 2), &d) || !parse_digits(s.substr(12, 4), &y) ||
      !parse_digits(s.substr(17, 2), &h) || !parse_digits(s.substr(20, 2), &mi) ||
      !parse_digits(s.substr(23, 2), &sec) || s[19] != ':' || s[22] != ':')
    return std::nullopt;
  size_t m = kMonths.find(s.substr(8, 3));
  if (m == std::string_view::npos || m % 3 != 0) return std::nullopt;
  return make_time(y, int(m / 3) + 1, d, h, mi, sec);
}

// ---- Signing keys: kSigning = HMAC chain over date, region, service; cached. ----

using SigningKey = std::array<char, 32>;

SigningKey derive_signing_key(std::string_view secret, std::string_view date,
                              std::string_view region, std::string_view service) {
  std::string k_secret = "AWS4";
  k_secret += secret;
  std::string k = crypto::hmac_sha256(k_secret, date);
  k = crypto::hmac_sha256(k, region);
  k = crypto::hmac_sha256(k, service);
  k = crypto::hmac_sha256(k, kTerminator);
  SigningKey out;
  std::copy_n(k.data(), out.size(), out.data());
  return out;
}

// Derived keys change once a day per credential; the cache is bounded and simply
// emptied when full. Thread-safe.
class SigningKeyCache {
 public:
  SigningKey get(std::string_view secret, std::string_view date, std::string_view region,
                 std::string_view service) {
    thread_local std::string id;
    id.clear();
    for (std::string_view part : {secret, date, region, service}) {
      id += part;
      id.push_back('\0');
    }
    {
      std::lock_guard lock(mu_);
      auto it = keys_.find(id);
      if (it != keys_.end()) return it->second;
    }
    SigningKey key = derive_signing_key(secret, date, region, service);
    std::lock_guard lock(mu_);
    if (keys_.size() >= kCapacity) keys_.clear();
    keys_.emplace(id, key);
    return key;
  }

 private:
  static constexpr size_t kCapacity = 1024;
  std::mutex mu_;
  std::unordered_map<std::string, SigningKey> keys_;  // guarded by mu_
};

SigningKeyCache& signing_keys() {
  static SigningKeyCache cache;
  return cache;
}

// The hex signature of a request whose canonical pieces are given.
std::string compute_signature(std::string_view method, std::string_view target,
                              std::string_view signed_headers,
                              const std::vector<Header>& headers,
                              std::string_view payload_hash, std::string_view amz_date,
                              std::string_view secret, std::string_view region,
                              std::string_view service) {
  thread_local std::string text;  // reused: no allocation on the warm path
  text.clear();
  auto [path, query] = split_target(target);
  text += method;
  text.push_back('\n');
  append_canonical_uri(text, path);
  text.push_back('\n');
  append_canonical_query(text, query);
  text.push_back('\n');
  append_canonical_headers(text, signed_headers, headers);
  text.push_back('\n');
  text += signed_headers;
  text.push_back('\n');
  text += payload_hash;
  std::string canonical_hash = crypto::hex(crypto::sha256(text));

  std::string_view date = amz_date.substr(0, 8);
  text.clear();
  text += kAlgorithm;
  text.push_back('\n');
  text += amz_date;
  text.push_back('\n');
  for (std::string_view part : {date, region, service}) {
    text += part;
    text.push_back('/');
  }
  text += kTerminator;
  text.push_back('\n');
  text += canonical_hash;
  SigningKey key = signing_keys().get(secret, date, region, service);
  return crypto::hex(crypto::hmac_sha256({key.data(), key.size()}, text));
}

// ---- Verification. ----

struct Authorization {
  std::string_view access_key_id, date, region, service, terminator;
  std::string_view signed_headers;
  std::string_view signature;
};

StatusOr<Authorization> parse_authorization(std::string_view header) {
  std::string_view value = trim(header);
  if (value.substr(0, kAlgorithm.size()) != kAlgorithm ||
      (value.size() > kAlgorithm.size() && !is_space(value[kAlgorithm.size()]))) {
    return IncompleteSignature("Unsupported AWS 'algorithm': expected AWS4-HMAC-SHA256. "
                               "Authorization=" + std::string(value));
  }
  Authorization auth;
  std::string_view credential;
  bool has_credential = false, has_signed = false, has_signature = false;
  std::string_view params = value.substr(kAlgorithm.size());
  for (size_t pos = 0; pos <= params.size();) {
    size_t end = std::min(params.find(',', pos), params.size());
    std::string_view param = trim(params.substr(pos, end - pos));
    pos = end + 1;
    if (param.empty()) continue;
    size_t eq = param.find('=');
    if (eq == std::string_view::npos) {
      return IncompleteSignature("Invalid key=value pair (missing equal-sign) in "
                                 "Authorization header: '" + std::string(param) + "'.");
    }
    std::string_view key = param.substr(0, eq), val = param.substr(eq + 1);
    if (key == "Credential") {
      credential = val, has_credential = true;
    } else if (key == "SignedHeaders") {
      auth.signed_headers = val, has_signed = true;
    } else if (key == "Signature") {
      auth.signature = val, has_signature = true;
    }
  }
  std::string missing;
  if (!has_credential) missing += "Authorization header requires 'Credential' parameter. ";
  if (!has_signature) missing += "Authorization header requires 'Signature' parameter. ";
  if (!has_signed) missing += "Authorization header requires 'SignedHeaders' parameter. ";
  if (!missing.empty()) return IncompleteSignature(missing + "Authorization=" + std::string(value));

  std::string_view* parts[] = {&auth.access_key_id, &auth.date, &auth.region, &auth.service,
                               &auth.terminator};
  size_t pos = 0, n = 0;
  for (; n < 5 && pos <= credential.size(); ++n) {
    size_t end = n == 4 ? credential.size() : std::min(credential.find('/', pos), credential.size());
    *parts[n] = credential.substr(pos, end - pos);
    pos = end + 1;
  }
  bool empty_part = std::any_of(std::begin(parts), std::end(parts),
                                [](std::string_view* p) { return p->empty(); });
  if (n != 5 || empty_part) {
    return IncompleteSignature("Credential should be of the form "
                               "AKID/YYYYMMDD/REGION/SERVICE/aws4_request, not '" +
                               std::string(credential) + "'.");
  }
  if (auth.signed_headers.empty()) {
    return IncompleteSignature("Authorization header requires 'SignedHeaders' parameter. "
                               "Authorization=" + std::string(value));
  }
  bool signs_host = false;
  for (size_t p = 0; p <= auth.signed_headers.size();) {
    size_t end = std::min(auth.signed_headers.find(';', p), auth.signed_headers.size());
    if (iequals(auth.signed_headers.substr(p, end - p), "host")) signs_host = true;
    p = end + 1;
  }
  if (!signs_host) {
    return IncompleteSignature(
        "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.");
  }
  return auth;
}

// AWS's wording: "Signature expired: 20150830T123600Z is now earlier than
// 20150830T125100Z (20150830T130600Z - 15 min.)".
Status check_skew(std::string_view amz_date, Seconds date, Seconds now) {
  if (date < now - kMaxSkew) {
    return InvalidSignature("Signature expired: " + std::string(amz_date) +
                            " is now earlier than " + format_amz_date(now - kMaxSkew) + " (" +
                            format_amz_date(now) + " - 15 min.)");
  }
  if (date > now + kMaxSkew) {
    return InvalidSignature("Signature not yet current: " + std::string(amz_date) +
                            " is still later than " + format_amz_date(now + kMaxSkew) + " (" +
                            format_amz_date(now) + " + 15 min.)");
  }
  return Status::Ok();
}

bool is_hex_sha256(std::string_view s) {
  return s.size() == 64 &&
         std::all_of(s.begin(), s.end(), [](char c) { return hex_value(c) >= 0; });
}

}  // namespace

StatusOr<Principal> verify_sigv4(const SignedRequest& request, const CredentialLookup& keys,
                                 std::string_view region, std::string_view service,
                                 Clock::time_point now) {
  const std::string_view* authorization = find_header(request, "authorization");
  if (authorization == nullptr) return MissingToken();
  StatusOr<Authorization> parsed = parse_authorization(*authorization);
  if (!parsed.ok()) return parsed.status();
  const Authorization& auth = *parsed;

  // The date: X-Amz-Date, else an RFC 1123 Date header (botocore sends either).
  std::string amz_date;
  std::optional<Seconds> date;
  if (const std::string_view* x_amz_date = find_header(request, "x-amz-date")) {
    amz_date = trim(*x_amz_date);
    date = parse_amz_date(amz_date);
    if (!date) {
      return IncompleteSignature("Date must be in ISO-8601 'basic format'. Got '" + amz_date +
                                 "'. See http://en.wikipedia.org/wiki/ISO_8601");
    }
  } else if (const std::string_view* http_date = find_header(request, "date")) {
    date = parse_http_date(trim(*http_date));
    if (!date) {
      return IncompleteSignature("Date must be in RFC 1123 format (UTC). Got '" +
                                 std::string(trim(*http_date)) + "'.");
    }
    amz_date = format_amz_date(*date);
  } else {
    return IncompleteSignature(
        "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' "
        "header. Authorization=" + std::string(trim(*authorization)));
  }

  std::optional<Credential> credential = keys.find(auth.access_key_id);
  if (!credential) return UnrecognizedClient();

  if (auth.terminator != kTerminator) {
    return InvalidSignature("Credential should be scoped with a valid terminator: "
                            "'aws4_request', not '" + std::string(auth.terminator) + "'. ");
  }
  if (auth.service != service) {
    return InvalidSignature("Credential should be scoped to correct service: '" +
                            std::string(service) + "'. ");
  }
  if (auth.region != region) {
    return InvalidSignature("Credential should be scoped to a valid region, not '" +
                            std::string(auth.region) + "'. ");
  }
  if (auth.date != std::string_view(amz_date).substr(0, 8)) {
    return InvalidSignature(
        "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date "
        "from HTTP: '" + std::string(auth.date) + "' != '" + amz_date.substr(0, 8) +
        "', from '" + amz_date + "'.");
  }
  if (Status s = check_skew(amz_date, *date, std::chrono::floor<std::chrono::seconds>(now)); !s.ok()) return s;

  // The payload hash the client signed: its X-Amz-Content-Sha256 (which must then be
  // the body's, or UNSIGNED-PAYLOAD), else the body's own.
  std::string payload_hash;
  if (const std::string_view* declared = find_header(request, "x-amz-content-sha256")) {
    std::string_view value = trim(*declared);
    if (value != kUnsignedPayload) {
      if (!is_hex_sha256(value)) {
        return IncompleteSignature("Unsupported x-amz-content-sha256 value: '" +
                                   std::string(value) + "'.");
      }
      payload_hash = crypto::hex(crypto::sha256(request.body));
      if (!iequals(payload_hash, value)) {
        return InvalidSignature(
            "The provided 'x-amz-content-sha256' header does not match what was computed.");
      }
    }
    payload_hash = value;
  } else {
    payload_hash = crypto::hex(crypto::sha256(request.body));
  }

  std::string expected = compute_signature(request.method, request.target, auth.signed_headers,
                                           request.headers, payload_hash, amz_date,
                                           credential->secret_access_key, region, service);
  if (!crypto::equal_constant_time(expected, auth.signature)) return SignatureMismatch();
  return Principal{credential->account_id, credential->access_key_id};
}

std::string credential_scope_service(std::string_view authorization) {
  // "AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1/lambda/aws4_request, ..."
  size_t c = authorization.find("Credential=");
  if (c == std::string_view::npos) return "lambda";
  std::string_view scope = authorization.substr(c + 11);
  scope = scope.substr(0, scope.find_first_of(", "));
  size_t end = scope.rfind('/');
  if (end == std::string_view::npos || end == 0) return "lambda";
  size_t start = scope.rfind('/', end - 1);
  if (start == std::string_view::npos) return "lambda";
  return std::string(scope.substr(start + 1, end - start - 1));
}

std::vector<std::pair<std::string, std::string>> sign_sigv4(
    const SignedRequest& request, const Credential& key, std::string_view region,
    std::string_view service, Clock::time_point now) {
  // botocore's SIGNED_HEADERS_BLACKLIST, plus the headers this function (re)writes.
  static constexpr std::string_view kUnsigned[] = {
      "connection", "expect", "keep-alive", "proxy-authenticate", "proxy-authorization",
      "te", "trailer", "transfer-encoding", "upgrade", "user-agent", "x-amzn-trace-id",
      "authorization", "x-amz-date", "x-amz-content-sha256"};
  std::string amz_date = format_amz_date(std::chrono::floor<std::chrono::seconds>(now));
  std::string payload_hash = crypto::hex(crypto::sha256(request.body));

  std::vector<Header> headers;
  std::vector<std::string> names;
  for (const auto& h : request.headers) {
    if (std::any_of(std::begin(kUnsigned), std::end(kUnsigned),
                    [&](std::string_view u) { return iequals(u, h.first); }))
      continue;
    headers.push_back(h);
    std::string name(h.first);
    for (char& c : name) c = lower(c);
    names.push_back(std::move(name));
  }
  headers.emplace_back("x-amz-content-sha256", payload_hash);
  headers.emplace_back("x-amz-date", amz_date);
  names.insert(names.end(), {"x-amz-content-sha256", "x-amz-date"});
  std::sort(names.begin(), names.end());
  names.erase(std::unique(names.begin(), names.end()), names.end());
  std::string signed_headers;
  for (const std::string& name : names) {
    if (!signed_headers.empty()) signed_headers.push_back(';');
    signed_headers += name;
  }

  std::string signature = compute_signature(request.method, request.target, signed_headers,
                                            headers, payload_hash, amz_date,
                                            key.secret_access_key, region, service);
  std::string authorization = std::string(kAlgorithm) + " Credential=" + key.access_key_id +
                              "/" + amz_date.substr(0, 8) + "/" + std::string(region) + "/" +
                              std::string(service) + "/aws4_request, SignedHeaders=" +
                              signed_headers + ", Signature=" + signature;
  return {{"Authorization", std::move(authorization)},
          {"X-Amz-Date", std::move(amz_date)},
          {"X-Amz-Content-Sha256", std::move(payload_hash)}};
}

}  // namespace kiln::api
