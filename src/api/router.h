// Maps an HTTP request to the Lambda operation it calls, using every operation of the
// Lambda API model (operations.inc), so that an operation Kiln does not implement is
// still recognised and named.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace kiln::api {

struct RouteMatch {
  std::string operation;                        // e.g. "Invoke"
  int success_code = 200;                       // the model's responseCode
  std::map<std::string, std::string> params;    // path parameters, percent-decoded
  std::map<std::string, std::string> query;     // query parameters, percent-decoded (last wins)
  std::vector<std::pair<std::string, std::string>> query_list;  // every one, in order
};

// Percent-decodes s ('+' stays '+'). False on a malformed escape.
bool percent_decode(std::string_view s, std::string* out);

// nullopt when no operation of the model has this method and path.
std::optional<RouteMatch> route(std::string_view method, std::string_view target);

}  // namespace kiln::api
