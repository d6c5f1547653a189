#include "api/admin.h"

#include <boost/asio/post.hpp>
#include <nlohmann/json.hpp>

#include "api/frontend.h"
#include "api/responses.h"

namespace kiln::api {

using nlohmann::json;

void AdminApi::add_action(const std::string& name, Action action) { actions_[name] = std::move(action); }

StatusOr<json> AdminApi::run(const std::string& name, const json& args, const Principal& caller) const {
  if (caller.account_id != root_account_) {
    return Status(403, "AccessDeniedException", "The admin API is for the root account's keys only.");
  }
  auto it = actions_.find(name);
  if (it == actions_.end()) return Status(404, "UnknownOperationException", "No admin action " + name);
  return it->second(args, caller);
}

void AdminApi::attach(Frontend& frontend, std::string root_account) {
  root_account_ = std::move(root_account);
  frontend.add_service("kiln", [this, &frontend](net::Request&& request, const Principal& caller,
                                                 const std::string& request_id, net::ResponderPtr responder) {
    std::string target(request.target());
    target = target.substr(0, target.find('?'));
    if (request.method() != boost::beast::http::verb::post || target.rfind("/admin/", 0) != 0) {
      return responder->respond(error_response(
          {404, "UnknownOperationException", "The admin API is POST /admin/<Action>"}, request_id));
    }
    std::string name = target.substr(7);
    json args = request.body().empty() ? json::object() : json::parse(request.body(), nullptr, false);
    if (args.is_discarded() || !args.is_object()) {
      return responder->respond(error_response(InvalidRequestContent("The body must be a JSON object"), request_id));
    }
    frontend.post_control([this, name, args = std::move(args), caller, request_id, responder] {
      auto result = run(name, args, caller);
      if (!result.ok()) return responder->respond(error_response(result.status(), request_id));
      responder->respond(json_response(200, result->dump(), request_id));
    });
  });
}

}  // namespace kiln::api
