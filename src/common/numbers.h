// Numbers from text Kiln does not control. Contract: never throws; nullopt unless the
// whole of s is a decimal number (digits only, optional leading '-' for signed types)
// that fits T.
#pragma once

#include <charconv>
#include <optional>
#include <string_view>
#include <type_traits>

namespace kiln {

template <typename T>
std::optional<T> parse_number(std::string_view s) {
  static_assert(std::is_integral_v<T>);
  if (s.empty() || s.front() == '+') return std::nullopt;
  T v{};
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v, 10);
  if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return v;
}

}  // namespace kiln
