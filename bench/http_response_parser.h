// A minimal HTTP/1.1 response framer for the load generator: it finds where one
// response ends in a byte stream so the next request can go out on the same keep-alive
// connection. It understands Content-Length and chunked bodies, nothing more; it never
// copies or decodes the body.
#pragma once

#include <cstddef>
#include <string_view>

namespace kiln::bench {

struct ParsedResponse {
  enum class State { kNeedMore, kComplete, kMalformed };
  State state = State::kNeedMore;
  int status = 0;                 // valid when kComplete
  size_t consumed = 0;            // bytes of `data` the response occupies (when kComplete)
  bool function_error = false;    // an "X-Amz-Function-Error" header was present
  bool connection_close = false;  // "Connection: close": the server will hang up
};

// Frames the first response in `data` (bytes received since the end of the previous
// response). Pure function of its input: calling again with more bytes re-parses from
// the start, which is fine for the small responses a benchmark sees. A response with
// neither Content-Length nor chunked encoding is framed as empty only for 1xx, 204 and
// 304; otherwise it is kMalformed (close-delimited bodies are not supported).
ParsedResponse parse_http_response(std::string_view data);

}  // namespace kiln::bench
