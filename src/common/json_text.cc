#include "common/json_text.h"

namespace kiln::json_text {

using nlohmann::json;

namespace {

// Accepts any JSON while counting depth; stops (returns false) past max_depth.
class DepthLimit : public nlohmann::json_sax<json> {
 public:
  explicit DepthLimit(size_t max_depth) : max_(max_depth) {}
  bool null() override { return true; }
  bool boolean(bool) override { return true; }
  bool number_integer(number_integer_t) override { return true; }
  bool number_unsigned(number_unsigned_t) override { return true; }
  bool number_float(number_float_t, const string_t&) override { return true; }
  bool string(string_t&) override { return true; }
  bool binary(binary_t&) override { return true; }
  bool start_object(std::size_t) override { return ++depth_ <= max_; }
  bool key(string_t&) override { return true; }
  bool end_object() override { --depth_; return true; }
  bool start_array(std::size_t) override { return ++depth_ <= max_; }
  bool end_array() override { --depth_; return true; }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) override { return false; }

 private:
  size_t max_;
  size_t depth_ = 0;
};

}  // namespace

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

std::string valid_utf8(std::string_view s) {
  // UTF-8 per RFC 3629: no overlong forms, no surrogates, nothing past U+10FFFF.
  std::string out;
  out.reserve(s.size());
  size_t i = 0;
  const auto byte = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  const auto cont = [&](size_t k) { return k < s.size() && (byte(k) & 0xC0) == 0x80; };
  while (i < s.size()) {
    unsigned char c = byte(i);
    size_t n = 0;
    if (c < 0x80) n = 1;
    else if (c >= 0xC2 && c <= 0xDF && cont(i + 1)) n = 2;
    else if (c >= 0xE0 && c <= 0xEF && cont(i + 1) && cont(i + 2)) {
      unsigned char c1 = byte(i + 1);
      if ((c == 0xE0 && c1 < 0xA0) || (c == 0xED && c1 > 0x9F)) n = 0;  // overlong / surrogate
      else n = 3;
    } else if (c >= 0xF0 && c <= 0xF4 && cont(i + 1) && cont(i + 2) && cont(i + 3)) {
      unsigned char c1 = byte(i + 1);
      if ((c == 0xF0 && c1 < 0x90) || (c == 0xF4 && c1 > 0x8F)) n = 0;  // overlong / past U+10FFFF
      else n = 4;
    }
    if (n == 0) {
      out += "\xEF\xBF\xBD";
      ++i;
    } else {
      out.append(s.substr(i, n));
      i += n;
    }
  }
  return out;
}

bool is_json(std::string_view text) {
  // nlohmann's lexer takes a NUL byte for the end of input, so "0\0junk" would pass;
  // a raw NUL is never valid JSON (inside strings it must be escaped).
  if (text.find('\0') != std::string_view::npos) return false;
  try {
    return json::accept(text);
  } catch (...) {
    return false;
  }
}

json parse_bounded(std::string_view text, size_t max_depth) {
  try {
    DepthLimit limit(max_depth);
    if (!json::sax_parse(text, &limit)) return json(json::value_t::discarded);
    return json::parse(text, nullptr, false);
  } catch (...) {
    return json(json::value_t::discarded);
  }
}

std::string embed(std::string_view text) {
  if (is_json(text)) return std::string(text);
  return dump(json(std::string(text)));
}

}  // namespace kiln::json_text
