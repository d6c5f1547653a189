// The invoke path: Invoke (RequestResponse, DryRun) through the registry cache, the
// assignment service, placement and the worker.
#include <boost/beast/http/field.hpp>
#include <nlohmann/json.hpp>

#include "api/call.h"
#include "common/crypto.h"

namespace kiln::api {

namespace http = boost::beast::http;

namespace {
constexpr size_t kMaxRequestBytes = 6291456;  // Lambda's sync invoke request limit
}

void Frontend::invoke(std::shared_ptr<Call> call) {
  auto& req = call->request;
  std::string type(req["X-Amz-Invocation-Type"]);
  if (type.empty()) type = "RequestResponse";
  std::string log_type(req["X-Amz-Log-Type"]);
  if (type != "RequestResponse" && type != "Event" && type != "DryRun") {
    return call->fail({400, "ValidationException",
                       "1 validation error detected: Value '" + type +
                           "' at 'invocationType' failed to satisfy constraint: Member must satisfy enum value set: "
                           "[Event, RequestResponse, DryRun]"});
  }
  if (!log_type.empty() && log_type != "None" && log_type != "Tail") {
    return call->fail({400, "ValidationException",
                       "1 validation error detected: Value '" + log_type +
                           "' at 'logType' failed to satisfy constraint: Member must satisfy enum value set: [None, Tail]"});
  }
  if (req.body().size() > kMaxRequestBytes) {
    return call->fail(RequestTooLarge("Request must be smaller than " + std::to_string(kMaxRequestBytes) +
                                      " bytes for the InvokeFunction operation"));
  }
  auto qualifier = call->match.query.find("Qualifier");
  auto f = deps_.registry.resolve(call->principal.account_id, call->match.params["FunctionName"],
                                  qualifier == call->match.query.end() ? "" : qualifier->second);
  if (!f.ok()) return call->fail(f.status());
  if (type == "DryRun") return call->reply(empty_response(204, call->request_id));
  if (type == "Event") {
    return call->fail({501, "NotImplementedException",
                       "Kiln does not implement asynchronous invocation (InvocationType Event) yet."});
  }
  if (!req.body().empty() && !nlohmann::json::accept(req.body())) {
    return call->fail(InvalidRequestContent("Could not parse request body into json: Could not parse payload into json"));
  }
  std::string request_id = call->request_id;
  run_invoke(std::move(call), std::move(f).value(), std::move(request_id), log_type == "Tail");
}

void Frontend::run_invoke(std::shared_ptr<Call> call, registry::FunctionVersionPtr f, std::string request_id,
                          bool tail) {
  worker::InvokeRequest ir;
  ir.request_id = request_id;
  ir.payload = call->request.body().empty() ? std::string("{}") : std::move(call->request.body());
  ir.invoked_function_arn = f->arn();
  ir.tail_log = tail;
  ir.trace_id = "Root=1-" + crypto::hex(crypto::random_bytes(4)) + "-" + crypto::hex(crypto::random_bytes(12)) +
                ";Sampled=0";
  std::string client_context(call->request["X-Amz-Client-Context"]);
  if (!client_context.empty()) {
    std::string decoded;
    if (client_context.size() > 3583 || !crypto::base64_decode(client_context, &decoded)) {
      return call->fail(InvalidRequestContent("Client context must be a valid Base64-encoded JSON object."));
    }
    ir.client_context = std::move(decoded);
  }
  std::string version = f->version;
  auto on_done = [this, call, version](const std::shared_ptr<worker::Environment>& env, worker::InvokeResult r) {
    if (!r.status.ok()) {
      call->fail(r.status);
    } else {
      net::Response resp = json_response(200, std::move(r.payload), call->request_id);
      resp.set("X-Amz-Executed-Version", version);
      if (!r.function_error.empty()) resp.set("X-Amz-Function-Error", r.function_error);
      if (call->request["X-Amz-Log-Type"] == "Tail") resp.set("X-Amz-Log-Result", crypto::base64(r.log_tail));
      call->reply(std::move(resp));
    }
    deps_.assignment.release(env);
  };

  auto leased = deps_.assignment.acquire(f->sandbox_key());
  if (leased) {
    auto env = std::static_pointer_cast<worker::Environment>(leased);
    env->invoke(std::move(ir), [env, on_done](worker::InvokeResult r) { on_done(env, std::move(r)); });
    return;
  }
  auto* slot = deps_.placement.pick();
  auto* w = dynamic_cast<worker::Worker*>(slot);
  if (!w) {
    return call->fail(TooManyRequests("Rate Exceeded. No worker has room for a new execution environment."));
  }
  auto& assignment = deps_.assignment;
  w->create(
      f, [&assignment](const std::shared_ptr<worker::Environment>& env) { assignment.remove(env); },
      [this, call, f, ir = std::move(ir), on_done](StatusOr<std::shared_ptr<worker::Environment>> env) mutable {
        if (!env.ok()) {
          const Status& s = env.status();
          if (s.type().rfind("Runtime.", 0) != 0) return call->fail(s);
          // The function's own fault (e.g. no bootstrap): a function error, as Lambda answers.
          nlohmann::json doc = {{"errorType", s.type()},
                                {"errorMessage", "RequestId: " + call->request_id + " Error: " + s.message()}};
          net::Response resp = json_response(200, doc.dump(), call->request_id);
          resp.set("X-Amz-Executed-Version", f->version);
          resp.set("X-Amz-Function-Error", "Unhandled");
          return call->reply(std::move(resp));
        }
        auto e = *env;
        deps_.assignment.add_busy(e);
        e->invoke(std::move(ir), [e, on_done](worker::InvokeResult r) { on_done(e, std::move(r)); });
      });
}

}  // namespace kiln::api
