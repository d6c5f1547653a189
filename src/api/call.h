// One Lambda API request on its way through the frontend (private to api/).
#pragma once

#include <string>

#include "api/frontend.h"
#include "api/responses.h"

namespace kiln::api {

struct Frontend::Call {
  net::Request request;
  net::ResponderPtr responder;
  RouteMatch match;
  Principal principal;
  std::string request_id;

  void reply(net::Response r) { responder->respond(std::move(r)); }
  void fail(const Status& s) { reply(error_response(s, request_id)); }
};

}  // namespace kiln::api
