#include "cli/admin_client.h"
#include "common/json_text.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>

#include <chrono>
#include <cstdlib>
#include <fstream>

namespace kiln::cli {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using nlohmann::json;

namespace {

std::string trim(const std::string& s) {
  size_t a = s.find_first_not_of(" \t\r");
  size_t b = s.find_last_not_of(" \t\r");
  return a == std::string::npos ? "" : s.substr(a, b - a + 1);
}

}  // namespace

StatusOr<AdminEndpoint> resolve_admin_endpoint(const std::string& url, const std::filesystem::path& data_dir,
                                               const std::string& region) {
  AdminEndpoint e;
  std::string rest = url;
  if (rest.rfind("http://", 0) != 0) return InvalidParameterValue("--endpoint-url must be http://HOST:PORT");
  rest = rest.substr(7);
  if (!rest.empty() && rest.back() == '/') rest.pop_back();
  size_t colon = rest.rfind(':');
  if (colon == std::string::npos || colon + 1 >= rest.size() ||
      rest.find_first_not_of("0123456789", colon + 1) != std::string::npos || rest.size() - colon > 6) {
    return InvalidParameterValue("--endpoint-url must be http://HOST:PORT");
  }
  e.host = rest.substr(0, colon);
  unsigned long port = std::stoul(rest.substr(colon + 1));
  if (port == 0 || port > 65535) return InvalidParameterValue("bad port in --endpoint-url");
  e.port = static_cast<uint16_t>(port);
  const char* id = std::getenv("KILN_ACCESS_KEY_ID");
  const char* secret = std::getenv("KILN_SECRET_ACCESS_KEY");
  std::string file_region;
  if (id && secret && *id && *secret) {
    e.key = {id, secret, ""};
  } else {
    std::ifstream in(data_dir / "credentials");
    if (!in) {
      return Status(400, "MissingCredentials",
                    "No credentials: set KILN_ACCESS_KEY_ID and KILN_SECRET_ACCESS_KEY, or --data-dir DIR of the "
                    "server (DIR/credentials)");
    }
    std::string line;
    bool in_kiln = false;
    while (std::getline(in, line)) {
      line = trim(line);
      if (!line.empty() && line[0] == '[') {
        in_kiln = line == "[kiln]";
        continue;
      }
      size_t eq = line.find('=');
      if (!in_kiln || eq == std::string::npos) continue;
      std::string k = trim(line.substr(0, eq)), v = trim(line.substr(eq + 1));
      if (k == "aws_access_key_id") e.key.access_key_id = v;
      if (k == "aws_secret_access_key") e.key.secret_access_key = v;
      if (k == "region") file_region = v;
    }
    if (e.key.access_key_id.empty() || e.key.secret_access_key.empty()) {
      return Status(400, "MissingCredentials", "No [kiln] key in " + (data_dir / "credentials").string());
    }
  }
  e.region = !region.empty() ? region : !file_region.empty() ? file_region : "us-east-1";
  return e;
}

StatusOr<json> call_admin(const AdminEndpoint& e, const std::string& action, const json& args) {
  std::string target = "/admin/" + action;
  std::string body = json_text::dump(args);
  std::string host = e.host + ":" + std::to_string(e.port);
  api::SignedRequest sr;
  sr.method = "POST";
  sr.target = target;
  sr.headers = {{"Host", host}, {"Content-Type", "application/json"}};
  sr.body = body;
  auto signed_headers = api::sign_sigv4(sr, e.key, e.region, "kiln", std::chrono::system_clock::now());

  http::request<http::string_body> req(http::verb::post, target, 11);
  req.set(http::field::host, host);
  req.set(http::field::content_type, "application/json");
  for (const auto& [k, v] : signed_headers) req.set(k, v);
  req.body() = body;
  req.prepare_payload();

  asio::io_context io;
  beast::tcp_stream stream(io);
  stream.expires_after(std::chrono::seconds(30));
  boost::system::error_code ec;
  asio::ip::tcp::resolver resolver(io);
  auto endpoints = resolver.resolve(e.host, std::to_string(e.port), ec);
  if (!ec) stream.connect(endpoints, ec);
  if (ec) return Status(503, "ConnectionError", "cannot reach Kiln at " + host + ": " + ec.message());
  http::write(stream, req, ec);
  beast::flat_buffer buffer;
  http::response<http::string_body> res;
  if (!ec) http::read(stream, buffer, res, ec);
  if (ec) return Status(503, "ConnectionError", "admin call to " + host + " failed: " + ec.message());
  stream.socket().shutdown(asio::ip::tcp::socket::shutdown_both, ec);
  json out = json::parse(res.body(), nullptr, false);
  int status = static_cast<int>(res.result_int());
  if (status / 100 != 2) {
    std::string type(res["x-amzn-ErrorType"]);
    type = type.substr(0, type.find(':'));
    std::string message = out.is_object() ? out.value("message", out.value("Message", res.body())) : res.body();
    return Status(status, type.empty() ? "HTTP" + std::to_string(status) : type, message);
  }
  if (out.is_discarded()) return Status(502, "BadResponse", "the server's answer is not JSON");
  return out;
}

}  // namespace kiln::cli
