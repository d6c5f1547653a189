// Building Lambda API responses: JSON bodies and errors in the shape botocore parses
// (x-amzn-ErrorType header, {"Type","message"} body).
#pragma once

#include <string>

#include "common/status.h"
#include "net/http_server.h"

namespace kiln::api {

net::Response json_response(int status, std::string body, const std::string& request_id);
net::Response error_response(const Status& status, const std::string& request_id);
net::Response empty_response(int status, const std::string& request_id);

}  // namespace kiln::api
