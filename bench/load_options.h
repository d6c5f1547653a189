// Command line of kiln_loadgen and the one request it sends, built (and SigV4-signed
// when a key is given) from it.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace kiln::bench {

struct LoadOptions {
  std::string url;   // http://IPV4-OR-localhost:PORT/path?query
  std::string host;  // parsed from url: "127.0.0.1"
  int port = 80;
  std::string target = "/";  // request-target: path and ?query
  std::string method = "POST";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // extra -H "Name: value"
  int connections = 1;
  int threads = 1;
  double duration_s = 5;
  double warmup_s = 1;
  // SigV4: signs when access_key_id is set.
  std::string access_key_id;
  std::string secret_access_key;
  std::string region = "us-east-1";
  std::string service = "lambda";
};

// Parses argv; on a bad or missing option returns nullopt and writes why to `error`.
// Flags: --url U (required) --method M --body B --body-file F --header "N: V"
// --connections N --threads T --duration S --warmup S --sign-key AKID
// --sign-secret SECRET (or env KILN_ACCESS_KEY_ID / KILN_SECRET_ACCESS_KEY with --sign)
// --region R --service S.
std::optional<LoadOptions> parse_load_options(int argc, char** argv, std::string* error);

// The complete request bytes (head and body). Signed with `now` as X-Amz-Date when
// options.access_key_id is set; a signature stays valid for 15 minutes, so callers
// re-sign well inside that.
std::shared_ptr<const std::string> build_request(const LoadOptions& options,
                                                 std::chrono::system_clock::time_point now);

extern const char kLoadgenUsage[];

}  // namespace kiln::bench
