// JSON text from and to input that Kiln does not control (request fields, runtime
// answers, stored records). Contract: nothing here throws on any input and nothing
// recurses on input depth, except dump() which recurses on the depth of its argument
// (only call it on values Kiln built, or parsed with parse_bounded()).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace kiln::json_text {

// j as compact JSON text; invalid UTF-8 in strings becomes U+FFFD instead of throwing.
std::string dump(const nlohmann::json& j);

// s with every invalid UTF-8 sequence replaced by U+FFFD.
std::string valid_utf8(std::string_view s);

// True when text is exactly one JSON value (whitespace around allowed). Iterative:
// any nesting depth is fine.
bool is_json(std::string_view text);

// Parses text unless it is invalid or nests deeper than max_depth; then the result is
// discarded (is_discarded()). The result is safe to dump().
nlohmann::json parse_bounded(std::string_view text, size_t max_depth = 64);

// text as a JSON value to splice into a document: itself when is_json(text), else a
// JSON string of it (invalid UTF-8 replaced). Never parses into a DOM.
std::string embed(std::string_view text);

}  // namespace kiln::json_text
