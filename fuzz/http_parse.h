// Parses bytes the way Kiln's HTTP server does (src/net/http_server.cc): Boost.Beast's
// request_parser with a string body, the server's header limit and the given body
// limit. Shared by the fuzz targets that start from raw HTTP.
#pragma once

#include <boost/asio/buffer.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>

namespace kiln::fuzz {

using Request = boost::beast::http::request<boost::beast::http::string_body>;

// The request the server would hand its handler, or nullopt where it would answer
// 413 or drop the connection. The input is the whole connection: what follows the
// first request is ignored (one request per read).
inline std::optional<Request> parse_request(const uint8_t* data, size_t size, uint64_t body_limit) {
  namespace http = boost::beast::http;
  http::request_parser<http::string_body> parser;
  parser.body_limit(body_limit);
  parser.header_limit(64 * 1024);
  boost::asio::const_buffer rest(data, size);
  boost::beast::error_code ec;
  while (!parser.is_done()) {
    size_t used = parser.put(rest, ec);
    rest += used;
    if (ec && ec != http::error::need_more) return std::nullopt;
    ec = {};
    if (used == 0) break;  // it needs bytes past the end: the peer hung up
  }
  if (!parser.is_done()) {
    parser.put_eof(ec);  // a body that runs to the end of the connection
    if (ec || !parser.is_done()) return std::nullopt;
  }
  return parser.release();
}

}  // namespace kiln::fuzz
