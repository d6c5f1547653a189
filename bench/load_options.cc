#include "load_options.h"

#include <arpa/inet.h>
#include <strings.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "api/sigv4.h"

namespace kiln::bench {

const char kLoadgenUsage[] =
    "usage: kiln_loadgen --url http://127.0.0.1:PORT/PATH [--method POST] [--body JSON | "
    "--body-file F]\n"
    "                    [--header 'Name: value']... [--connections N] [--threads T]\n"
    "                    [--duration SECONDS] [--warmup SECONDS]\n"
    "                    [--sign | --sign-key AKID --sign-secret SECRET] [--region R] "
    "[--service S]\n"
    "Closed loop: each connection sends the next request when the previous response is\n"
    "complete. Prints one JSON object (throughput, latency p50/p90/p99/max) on stdout.\n"
    "--sign takes the key from KILN_ACCESS_KEY_ID / KILN_SECRET_ACCESS_KEY.\n";

namespace {

bool parse_url(const std::string& url, LoadOptions* o, std::string* error) {
  const std::string scheme = "http://";
  if (url.rfind(scheme, 0) != 0) {
    *error = "only http:// URLs are supported: " + url;
    return false;
  }
  std::string rest = url.substr(scheme.size());
  size_t slash = rest.find('/');
  std::string authority = rest.substr(0, slash);
  o->target = slash == std::string::npos ? "/" : rest.substr(slash);
  size_t colon = authority.rfind(':');
  o->host = authority.substr(0, colon);
  if (colon != std::string::npos) {
    char* end = nullptr;
    long port = std::strtol(authority.c_str() + colon + 1, &end, 10);
    if (*end != '\0' || port <= 0 || port > 65535) {
      *error = "bad port in " + url;
      return false;
    }
    o->port = static_cast<int>(port);
  }
  if (o->host == "localhost") o->host = "127.0.0.1";
  in_addr ignored{};
  if (inet_pton(AF_INET, o->host.c_str(), &ignored) != 1) {
    *error = "host must be an IPv4 address or localhost (no DNS lookups): " + url;
    return false;
  }
  return true;
}

bool parse_number(const char* s, double* out) {
  char* end = nullptr;
  *out = std::strtod(s, &end);
  return end != s && *end == '\0' && *out >= 0;
}

}  // namespace

std::optional<LoadOptions> parse_load_options(int argc, char** argv, std::string* error) {
  LoadOptions o;
  bool sign_from_env = false;
  for (int i = 1; i < argc; ++i) {
    std::string flag = argv[i];
    if (flag == "--sign") {
      sign_from_env = true;
      continue;
    }
    if (i + 1 >= argc) {
      *error = "missing value for " + flag;
      return std::nullopt;
    }
    const char* value = argv[++i];
    double number = 0;
    if (flag == "--url") {
      o.url = value;
      if (!parse_url(o.url, &o, error)) return std::nullopt;
    } else if (flag == "--method") {
      o.method = value;
    } else if (flag == "--body") {
      o.body = value;
    } else if (flag == "--body-file") {
      std::ifstream in(value, std::ios::binary);
      if (!in) {
        *error = std::string("cannot read ") + value;
        return std::nullopt;
      }
      std::ostringstream ss;
      ss << in.rdbuf();
      o.body = ss.str();
    } else if (flag == "--header") {
      std::string h = value;
      size_t colon = h.find(':');
      if (colon == std::string::npos || colon == 0) {
        *error = "header must be 'Name: value': " + h;
        return std::nullopt;
      }
      size_t v = h.find_first_not_of(' ', colon + 1);
      o.headers.emplace_back(h.substr(0, colon), v == std::string::npos ? "" : h.substr(v));
    } else if ((flag == "--connections" || flag == "--threads") && parse_number(value, &number) &&
               number >= 1 && number <= 10000) {
      (flag == "--connections" ? o.connections : o.threads) = static_cast<int>(number);
    } else if (flag == "--duration" && parse_number(value, &number) && number > 0) {
      o.duration_s = number;
    } else if (flag == "--warmup" && parse_number(value, &number)) {
      o.warmup_s = number;
    } else if (flag == "--sign-key") {
      o.access_key_id = value;
    } else if (flag == "--sign-secret") {
      o.secret_access_key = value;
    } else if (flag == "--region") {
      o.region = value;
    } else if (flag == "--service") {
      o.service = value;
    } else {
      *error = "bad option " + flag + " " + value;
      return std::nullopt;
    }
  }
  if (o.url.empty()) {
    *error = "--url is required";
    return std::nullopt;
  }
  if (sign_from_env) {
    const char* akid = std::getenv("KILN_ACCESS_KEY_ID");
    const char* secret = std::getenv("KILN_SECRET_ACCESS_KEY");
    if (!akid || !secret) {
      *error = "--sign needs KILN_ACCESS_KEY_ID and KILN_SECRET_ACCESS_KEY";
      return std::nullopt;
    }
    o.access_key_id = akid;
    o.secret_access_key = secret;
  }
  if (o.access_key_id.empty() != o.secret_access_key.empty()) {
    *error = "--sign-key and --sign-secret go together";
    return std::nullopt;
  }
  if (o.threads > o.connections) o.threads = o.connections;
  return o;
}

std::shared_ptr<const std::string> build_request(const LoadOptions& o,
                                                 std::chrono::system_clock::time_point now) {
  std::string host = o.host + ":" + std::to_string(o.port);
  std::string length = std::to_string(o.body.size());
  std::vector<std::pair<std::string, std::string>> headers = {{"Host", host}};
  bool has_type = false;
  for (const auto& h : o.headers) {
    headers.push_back(h);
    if (h.first.size() == 12 && strncasecmp(h.first.c_str(), "content-type", 12) == 0)
      has_type = true;
  }
  if (!has_type && !o.body.empty()) headers.emplace_back("Content-Type", "application/json");
  if (!o.access_key_id.empty()) {
    api::SignedRequest req{o.method, o.target, {}, o.body};
    for (const auto& h : headers) req.headers.emplace_back(h.first, h.second);
    api::Credential key{o.access_key_id, o.secret_access_key, ""};
    auto added = api::sign_sigv4(req, key, o.region, o.service, now);
    headers.insert(headers.end(), added.begin(), added.end());
  }
  std::string out = o.method + " " + o.target + " HTTP/1.1\r\n";
  for (const auto& h : headers) out += h.first + ": " + h.second + "\r\n";
  out += "Content-Length: " + length + "\r\n\r\n";
  out += o.body;
  return std::make_shared<const std::string>(std::move(out));
}

}  // namespace kiln::bench
