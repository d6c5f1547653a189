// Small helpers shared by the files that implement Lambda control operations
// (*_operations.cc). Include only from those files: it pulls in nlohmann/json.hpp.
#pragma once

#include <nlohmann/json.hpp>

#include <string>

#include "api/control_operations.h"
#include "common/json_text.h"

namespace kiln::api {

inline ControlResult ok_json(int status, const nlohmann::json& body) { return {Status::Ok(), status, json_text::dump(body)}; }
inline ControlResult failed(Status s) { return {std::move(s), 0, ""}; }

// A query parameter, or "" when absent.
inline std::string query(const RouteMatch& m, const char* key) {
  auto it = m.query.find(key);
  return it == m.query.end() ? std::string() : it->second;
}

// The request body as a JSON object (an empty body is {}), or Lambda's parse error.
inline StatusOr<nlohmann::json> parse_body(const std::string& body) {
  if (body.empty()) return nlohmann::json::object();
  nlohmann::json j = nlohmann::json::parse(body, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    return InvalidRequestContent("Could not parse request body into json: the body is not a JSON object");
  }
  return j;
}

}  // namespace kiln::api
