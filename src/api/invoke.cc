// The invoke path: Invoke (RequestResponse, DryRun) through the registry cache, the
// assignment service, placement and the worker.
#include <boost/beast/http/field.hpp>
#include <nlohmann/json.hpp>

#include "api/call.h"
#include "common/crypto.h"
#include "common/json_text.h"
#include "worker/capacity.h"

namespace kiln::api {

namespace http = boost::beast::http;

namespace {
constexpr size_t kMaxRequestBytes = 6291456;       // Lambda's sync invoke request limit
constexpr size_t kMaxAsyncRequestBytes = 1048576;  // Lambda's async limit (1 MB since 2025)

// A concurrency throttle travels as a 429 result whose payload is Lambda's ThrottleReason.
worker::InvokeResult throttled(concurrency::Refusal refusal) {
  worker::InvokeResult r;
  r.status = TooManyRequests("Rate Exceeded.");
  r.payload = concurrency::reason_name(refusal);
  return r;
}

// TooManyRequestsException with the Reason field, as Lambda words it.
net::Response throttle_response(const worker::InvokeResult& r, const std::string& request_id) {
  nlohmann::json body = {{"Reason", r.payload}, {"Type", "User"}, {"message", r.status.message()}};
  net::Response resp = json_response(429, json_text::dump(body), request_id);
  resp.set("x-amzn-ErrorType", r.status.type());
  return resp;
}
}  // namespace

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
  if (Status s = registry::check_invocable(**f); !s.ok()) return call->fail(s);
  if (type == "DryRun") return call->reply(empty_response(204, call->request_id));
  if (!req.body().empty() && !nlohmann::json::accept(req.body())) {
    return call->fail(InvalidRequestContent("Could not parse request body into json: Could not parse payload into json"));
  }
  if (type == "Event") return enqueue_event(std::move(call), std::move(f).value(), /*legacy=*/false);
  std::string request_id = call->request_id;
  run_invoke(std::move(call), std::move(f).value(), std::move(request_id), log_type == "Tail");
}

void Frontend::invoke_async(std::shared_ptr<Call> call) {
  auto f = deps_.registry.resolve(call->principal.account_id, call->match.params["FunctionName"], "");
  if (!f.ok()) return call->fail(f.status());
  if (Status s = registry::check_invocable(**f); !s.ok()) return call->fail(s);
  if (!call->request.body().empty() && !nlohmann::json::accept(call->request.body())) {
    return call->fail(InvalidRequestContent("Could not parse request body into json: Could not parse payload into json"));
  }
  enqueue_event(std::move(call), std::move(f).value(), /*legacy=*/true);
}

void Frontend::enqueue_event(std::shared_ptr<Call> call, registry::FunctionVersionPtr f, bool legacy) {
  if (call->request.body().size() > kMaxAsyncRequestBytes) {
    return call->fail(RequestTooLarge("Request must be smaller than " + std::to_string(kMaxAsyncRequestBytes) +
                                      " bytes for the InvokeFunction operation"));
  }
  if (!async_) {
    return call->fail({501, "NotImplementedException",
                       "Kiln does not implement asynchronous invocation (InvocationType Event) yet."});
  }
  AsyncEvent ev;
  ev.request_id = call->request_id;
  ev.account_id = call->principal.account_id;
  ev.function_arn = f->arn();
  auto q = call->match.query.find("Qualifier");
  ev.qualifier = q == call->match.query.end() ? "" : q->second;
  ev.payload = call->request.body().empty() ? std::string("{}") : std::move(call->request.body());
  ev.received_epoch_ms = worker::epoch_ms_now();
  async_->enqueue(std::move(ev), [call, legacy](Status s) {
    if (!s.ok()) return call->fail(s);
    if (legacy) return call->reply(json_response(202, R"({"Status":202})", call->request_id));
    call->reply(empty_response(202, call->request_id));
  });
}

void Frontend::run_invoke(std::shared_ptr<Call> call, registry::FunctionVersionPtr f, std::string request_id,
                          bool tail) {
  worker::InvokeRequest ir;
  ir.request_id = request_id;
  ir.payload = call->request.body().empty() ? std::string("{}") : std::move(call->request.body());
  // As invoked: with the version or alias the caller named, if any (Lambda's
  // invoked_function_arn / invokedFunctionArn).
  std::string qualifier = call->match.query.count("Qualifier") ? call->match.query["Qualifier"] : "";
  if (qualifier.empty()) {
    auto ref = registry::parse_function_ref(call->match.params["FunctionName"], deps_.region,
                                            call->principal.account_id);
    if (ref.ok()) qualifier = ref->qualifier;
  }
  ir.invoked_function_arn = qualifier.empty() ? f->arn() : f->arn() + ":" + qualifier;
  ir.tail_log = tail;
  ir.trace_id = "Root=1-" + crypto::hex(crypto::fast_random_bytes(4)) + "-" + crypto::hex(crypto::fast_random_bytes(12)) +
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
  execute(std::move(f), std::move(ir), [call, version](worker::InvokeResult r) {
    if (r.status.http_status() == 429 && !r.payload.empty()) return call->reply(throttle_response(r, call->request_id));
    if (!r.status.ok()) return call->fail(r.status);
    net::Response resp = json_response(200, std::move(r.payload), call->request_id);
    resp.set("X-Amz-Executed-Version", version);
    if (!r.function_error.empty()) resp.set("X-Amz-Function-Error", r.function_error);
    if (call->request["X-Amz-Log-Type"] == "Tail") resp.set("X-Amz-Log-Result", crypto::base64(r.log_tail));
    call->reply(std::move(resp));
  });
}

void Frontend::invoke_function(const std::string& account, const std::string& function_name,
                               const std::string& qualifier, std::string payload, std::string request_id,
                               InternalInvokeDone done) {
  auto f = deps_.registry.resolve(account, function_name, qualifier);
  Status invocable = f.ok() ? registry::check_invocable(**f) : f.status();
  if (!invocable.ok()) {
    worker::InvokeResult r;
    r.status = std::move(invocable);
    return done(std::move(r), "");
  }
  worker::InvokeRequest ir;
  ir.request_id = std::move(request_id);
  ir.payload = payload.empty() ? std::string("{}") : std::move(payload);
  ir.invoked_function_arn = (*f)->arn();
  ir.trace_id = "Root=1-" + crypto::hex(crypto::fast_random_bytes(4)) + "-" + crypto::hex(crypto::fast_random_bytes(12)) +
                ";Sampled=0";
  std::string version = (*f)->version;
  execute(std::move(f).value(), std::move(ir),
          [done = std::move(done), version](worker::InvokeResult r) { done(std::move(r), version); });
}

void Frontend::execute(registry::FunctionVersionPtr f, worker::InvokeRequest ir,
                       std::function<void(worker::InvokeResult)> done) {
  if (observer_) {
    observer_->on_invoke_start(*f);
    done = [observer = observer_, f, done = std::move(done)](worker::InvokeResult r) {
      observer->on_invoke_end(*f, r);
      done(std::move(r));
    };
  }
  if (limiter_) {
    concurrency::Permit permit;
    auto refusal = limiter_->try_acquire(f->account_id, f->name, &permit);
    if (refusal != concurrency::Refusal::kNone) {
      if (observer_) observer_->on_throttle(*f);
      return done(throttled(refusal));
    }
    // Every path below ends in exactly one call of `done`: the slot is freed there.
    done = [permit, done = std::move(done)](worker::InvokeResult r) mutable {
      permit.release();
      done(std::move(r));
    };
  }
  auto finish = [this, done](const std::shared_ptr<worker::Environment>& env, worker::InvokeResult r) {
    done(std::move(r));
    deps_.assignment.release(env);
  };
  auto leased = deps_.assignment.acquire(f->sandbox_key());
  if (leased) {
    auto env = std::static_pointer_cast<worker::Environment>(leased);
    env->invoke(std::move(ir), [env, finish](worker::InvokeResult r) { finish(env, std::move(r)); });
    return;
  }
  auto* w = dynamic_cast<worker::Worker*>(deps_.placement.pick());
  if (!w) {
    if (observer_) observer_->on_throttle(*f);
    worker::InvokeResult r;
    r.status = TooManyRequests("Rate Exceeded. No worker has room for a new execution environment.");
    r.payload = worker::kHostMemoryReason;
    return done(std::move(r));
  }
  // Scaling rate and host memory (reclaiming idle sandboxes of other functions first).
  if (std::string reason; true) {
    if (Status s = worker::admit_new_sandbox(*w, deps_.assignment, *f, &reason); !s.ok()) {
      if (observer_) observer_->on_throttle(*f);
      worker::InvokeResult r;
      r.status = std::move(s);
      r.payload = std::move(reason);
      return done(std::move(r));
    }
  }
  auto& assignment = deps_.assignment;
  w->create(
      f, [&assignment](const std::shared_ptr<worker::Environment>& env) { assignment.remove(env); },
      [this, ir = std::move(ir), done, finish](StatusOr<std::shared_ptr<worker::Environment>> env) mutable {
        if (!env.ok()) {
          worker::InvokeResult r;
          const Status& s = env.status();
          if (s.type().rfind("Runtime.", 0) == 0) {
            // The function's own fault (e.g. no bootstrap): a function error, as Lambda answers.
            nlohmann::json doc = {{"errorType", s.type()},
                                  {"errorMessage", "RequestId: " + ir.request_id + " Error: " + s.message()}};
            r.payload = json_text::dump(doc);
            r.function_error = "Unhandled";
          } else {
            r.status = s;
            // Out of room after admission (a concurrent creation took it): a throttle.
            if (s.http_status() == 429) r.payload = worker::kHostMemoryReason;
          }
          return done(std::move(r));
        }
        auto e = *env;
        deps_.assignment.add_busy(e);
        e->invoke(std::move(ir), [e, finish](worker::InvokeResult r) { finish(e, std::move(r)); });
      });
}

}  // namespace kiln::api
