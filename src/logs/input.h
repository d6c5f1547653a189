// Reading Logs API request fields with the model's constraints; a violation is
// InvalidParameterException, as CloudWatch Logs answers.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "logs/logs_service.h"

namespace kiln::logs::input {

inline Status bad(const std::string& field, const std::string& why) {
  return InvalidParameter("1 validation error detected: Value at '" + field + "' failed to satisfy constraint: " + why);
}

// Sets *out when the field is present. Returns an error for a wrong type or range.
inline Status optional_int(const nlohmann::json& in, const char* field, int64_t min, int64_t max,
                           std::optional<int64_t>* out) {
  auto it = in.find(field);
  if (it == in.end() || it->is_null()) return {};
  if (!it->is_number_integer()) return bad(field, "Member must be an integer");
  int64_t v = it->get<int64_t>();
  if (v < min || v > max) {
    return bad(field, "Member must have value between " + std::to_string(min) + " and " + std::to_string(max));
  }
  *out = v;
  return {};
}

inline Status optional_string(const nlohmann::json& in, const char* field, size_t min_len, size_t max_len,
                              std::optional<std::string>* out) {
  auto it = in.find(field);
  if (it == in.end() || it->is_null()) return {};
  if (!it->is_string()) return bad(field, "Member must be a string");
  std::string v = it->get<std::string>();
  if (v.size() < min_len || v.size() > max_len) {
    return bad(field, "Member must have length between " + std::to_string(min_len) + " and " +
                          std::to_string(max_len));
  }
  *out = std::move(v);
  return {};
}

inline Status optional_bool(const nlohmann::json& in, const char* field, std::optional<bool>* out) {
  auto it = in.find(field);
  if (it == in.end() || it->is_null()) return {};
  if (!it->is_boolean()) return bad(field, "Member must be a boolean");
  *out = it->get<bool>();
  return {};
}

}  // namespace kiln::logs::input
