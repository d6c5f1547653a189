#include "api/responses.h"
#include "common/json_text.h"

#include <boost/beast/http/field.hpp>
#include <nlohmann/json.hpp>

namespace kiln::api {

namespace http = boost::beast::http;

net::Response json_response(int status, std::string body, const std::string& request_id) {
  net::Response r(static_cast<http::status>(status), 11);
  r.set(http::field::content_type, "application/json");
  r.set("x-amzn-RequestId", request_id);
  r.body() = std::move(body);
  return r;
}

net::Response error_response(const Status& status, const std::string& request_id) {
  nlohmann::json body = {{"Type", status.http_status() < 500 ? "User" : "Service"},
                         {"message", status.message()}};
  net::Response r = json_response(status.http_status(), json_text::dump(body), request_id);
  r.set("x-amzn-ErrorType", status.type());
  return r;
}

net::Response empty_response(int status, const std::string& request_id) {
  net::Response r(static_cast<http::status>(status), 11);
  r.set("x-amzn-RequestId", request_id);
  return r;
}

}  // namespace kiln::api
