#include "http_response_parser.h"

#include <charconv>
#include <cstdint>

namespace kiln::bench {
namespace {

using State = ParsedResponse::State;

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Walks chunks starting at `pos`; returns the offset just past the final CRLF, 0 if
// more bytes are needed, or SIZE_MAX if the framing is malformed.
size_t chunked_end(std::string_view data, size_t pos) {
  for (;;) {
    size_t eol = data.find("\r\n", pos);
    if (eol == std::string_view::npos) return 0;
    std::string_view size_line = data.substr(pos, eol - pos);
    size_t semi = size_line.find(';');
    if (semi != std::string_view::npos) size_line = size_line.substr(0, semi);
    size_line = trim(size_line);
    uint64_t size = 0;
    auto [end, ec] =
        std::from_chars(size_line.data(), size_line.data() + size_line.size(), size, 16);
    if (ec != std::errc() || end != size_line.data() + size_line.size() || size_line.empty())
      return SIZE_MAX;
    pos = eol + 2;
    if (size == 0) {
      // Trailers (usually none) end with an empty line.
      for (;;) {
        size_t t = data.find("\r\n", pos);
        if (t == std::string_view::npos) return 0;
        if (t == pos) return t + 2;
        pos = t + 2;
      }
    }
    if (size > data.size() || data.size() - pos < size + 2) return 0;
    if (data.substr(pos + size, 2) != "\r\n") return SIZE_MAX;
    pos += size + 2;
  }
}

}  // namespace

ParsedResponse parse_http_response(std::string_view data) {
  ParsedResponse r;
  size_t head_end = data.find("\r\n\r\n");
  if (head_end == std::string_view::npos) {
    if (data.size() > 65536) r.state = State::kMalformed;
    return r;
  }
  std::string_view head = data.substr(0, head_end + 2);
  size_t eol = head.find("\r\n");
  std::string_view status_line = head.substr(0, eol);
  // "HTTP/1.1 200 OK"
  if (status_line.size() < 12 || status_line.substr(0, 5) != "HTTP/" || status_line[8] != ' ') {
    r.state = State::kMalformed;
    return r;
  }
  auto [p, ec] = std::from_chars(status_line.data() + 9, status_line.data() + 12, r.status);
  if (ec != std::errc() || p != status_line.data() + 12) {
    r.state = State::kMalformed;
    return r;
  }

  bool chunked = false;
  bool has_length = false;
  uint64_t length = 0;
  size_t pos = eol + 2;
  while (pos < head.size()) {
    size_t next = head.find("\r\n", pos);
    std::string_view line = head.substr(pos, next - pos);
    pos = next + 2;
    size_t colon = line.find(':');
    if (colon == std::string_view::npos) {
      r.state = State::kMalformed;
      return r;
    }
    std::string_view name = line.substr(0, colon);
    std::string_view value = trim(line.substr(colon + 1));
    if (iequals(name, "content-length")) {
      auto [q, lec] = std::from_chars(value.data(), value.data() + value.size(), length);
      if (lec != std::errc() || q != value.data() + value.size()) {
        r.state = State::kMalformed;
        return r;
      }
      has_length = true;
    } else if (iequals(name, "transfer-encoding")) {
      chunked = value.size() >= 7 && iequals(value.substr(value.size() - 7), "chunked");
    } else if (iequals(name, "x-amz-function-error")) {
      r.function_error = true;
    } else if (iequals(name, "connection")) {
      r.connection_close = iequals(value, "close");
    }
  }

  size_t body_start = head_end + 4;
  if (chunked) {
    size_t end = chunked_end(data, body_start);
    if (end == SIZE_MAX) r.state = State::kMalformed;
    if (end == 0 || end == SIZE_MAX) return r;
    r.consumed = end;
  } else if (has_length) {
    if (data.size() - body_start < length) return r;
    r.consumed = body_start + static_cast<size_t>(length);
  } else if (r.status < 200 || r.status == 204 || r.status == 304) {
    r.consumed = body_start;
  } else {
    r.state = State::kMalformed;
    return r;
  }
  r.state = State::kComplete;
  return r;
}

}  // namespace kiln::bench
