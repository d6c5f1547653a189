#include "api/frontend.h"

#include <boost/asio/post.hpp>
#include <boost/beast/http/field.hpp>

#include "api/call.h"
#include "api/control_operations.h"
#include "api/responses.h"
#include "common/crypto.h"
#include "common/log.h"
#include "common/numbers.h"

namespace kiln::api {

namespace asio = boost::asio;
namespace http = boost::beast::http;


Frontend::Frontend(asio::io_context& io, FrontendDeps deps, unsigned control_threads)
    : io_(io), deps_(std::move(deps)), control_pool_(std::make_unique<asio::thread_pool>(control_threads)) {}

Frontend::~Frontend() { shutdown(); }

void Frontend::shutdown() { control_pool_->join(); }

void Frontend::handle(net::Request&& request, net::ResponderPtr responder) {
  auto call = std::make_shared<Call>();
  call->request = std::move(request);
  call->responder = std::move(responder);
  call->request_id = request_id();

  std::string_view target = call->request.target();
  if (call->request.method() == http::verb::get) {
    if (target.substr(0, 11) == "/kiln/code/") return download_code(std::move(call));
    auto pub = public_paths_.find(std::string(target.substr(0, target.find('?'))));
    if (pub != public_paths_.end()) return pub->second(std::move(call->request), std::move(call->responder));
  }

  SignedRequest signed_request;
  signed_request.method = call->request.method_string();
  signed_request.target = target;
  for (const auto& field : call->request) {
    signed_request.headers.emplace_back(field.name_string(), field.value());
  }
  signed_request.body = call->request.body();
  std::string service = credential_scope_service(call->request[http::field::authorization]);
  auto other = service == "lambda" ? services_.end() : services_.find(service);
  auto principal = verify_sigv4(signed_request, deps_.keys, deps_.region,
                                other == services_.end() ? "lambda" : service, std::chrono::system_clock::now());
  if (!principal.ok()) return call->fail(principal.status());
  call->principal = std::move(principal).value();
  if (other != services_.end()) {
    return other->second(std::move(call->request), call->principal, call->request_id, std::move(call->responder));
  }

  auto match = route(call->request.method_string(), target);
  if (!match) {
    return call->fail({404, "UnknownOperationException",
                       "No Lambda operation matches " + std::string(call->request.method_string()) + " " +
                           std::string(target.substr(0, target.find('?')))});
  }
  call->match = std::move(*match);
  dispatch(std::move(call));
}

void Frontend::add_control_operation(const std::string& operation, ControlHandler handler) {
  control_ops_[operation] = std::move(handler);
}

void Frontend::post_control(std::function<void()> work) {
  asio::post(*control_pool_, [work = std::move(work)] {
    // Work posted by services answers its own request; an exception that escapes it
    // is logged and the process goes on (the request then gets no answer from it).
    try {
      work();
    } catch (const std::exception& e) {
      log::error(std::string("control pool: posted work threw: ") + e.what());
    } catch (...) {
      log::error("control pool: posted work threw");
    }
  });
}

void Frontend::post_call(std::shared_ptr<Call> call, std::function<void(const std::shared_ptr<Call>&)> work) {
  asio::post(*control_pool_, [call = std::move(call), work = std::move(work)] {
    // Exception boundary for one request's work off the event loop: it answers
    // ServiceException (the responder drops it if the work already answered).
    const auto failed = [&call](std::string_view what) {
      log::error("frontend: request " + call->request_id + " threw: " + std::string(what));
      if (call->responder) call->fail(ServiceError("Kiln failed to handle the request."));
    };
    try {
      work(call);
    } catch (const std::exception& e) {
      failed(e.what());
    } catch (...) {
      failed("unknown exception");
    }
  });
}

void Frontend::add_service(const std::string& service, ServiceHandler handler) {
  services_[service] = std::move(handler);
}

void Frontend::add_public_path(const std::string& path, PathHandler handler) {
  public_paths_[path] = std::move(handler);
}

std::string request_id() {
  std::string r = crypto::hex(crypto::fast_random_bytes(16));
  r[12] = '4';
  r[16] = "89ab"[r[16] % 4];
  return r.substr(0, 8) + "-" + r.substr(8, 4) + "-" + r.substr(12, 4) + "-" + r.substr(16, 4) + "-" + r.substr(20);
}

void Frontend::dispatch(std::shared_ptr<Call> call) {
  const std::string& op = call->match.operation;
  if (op == "Invoke") return invoke(std::move(call));
  if (op == "InvokeAsync") return invoke_async(std::move(call));
  if (!is_control_operation(op) && !control_ops_.count(op)) {
    return call->fail({501, "NotImplementedException",
                       "Kiln does not implement the Lambda operation " + op + " yet."});
  }
  post_call(std::move(call), [this](const std::shared_ptr<Call>& c) { control(c); });
}

void Frontend::control(std::shared_ptr<Call> call) {
  std::string host(call->request[http::field::host]);
  ControlContext ctx{deps_.registry, deps_.assignment, call->principal.account_id, deps_.region,
                     deps_.concurrency_limit,
                     [this, host](const registry::FunctionVersion& f) { return code_url(host, f); }};
  auto extension = control_ops_.find(call->match.operation);
  ControlResult result = extension != control_ops_.end()
                             ? extension->second(call->match, call->request.body(), ctx)
                             : run_control_operation(call->match, call->request.body(), ctx);
  if (!result.status.ok()) return call->fail(result.status);
  if (result.body.empty()) return call->reply(empty_response(result.http_status, call->request_id));
  call->reply(json_response(result.http_status, std::move(result.body), call->request_id));
}

std::string Frontend::code_url(const std::string& host, const registry::FunctionVersion& f) const {
  int64_t expires = std::chrono::duration_cast<std::chrono::seconds>(
                        std::chrono::system_clock::now().time_since_epoch()).count() + 600;
  std::string path = "/kiln/code/" + f.account_id + "/" + f.code_hex + ".zip";
  std::string sig = crypto::hex(crypto::hmac_sha256(deps_.url_secret, path + "?" + std::to_string(expires)));
  return "http://" + host + path + "?expires=" + std::to_string(expires) + "&signature=" + sig;
}

void Frontend::download_code(std::shared_ptr<Call> call) {
  // Presigned like S3's: the link itself is the credential, valid for 10 minutes.
  std::string_view target = call->request.target();
  size_t q = target.find('?');
  std::string path(target.substr(0, q));
  std::string expires, signature;
  if (q != std::string_view::npos) {
    std::string_view query = target.substr(q + 1);
    while (!query.empty()) {
      size_t amp = query.find('&');
      std::string_view pair = query.substr(0, amp);
      if (pair.substr(0, 8) == "expires=") expires = pair.substr(8);
      if (pair.substr(0, 10) == "signature=") signature = pair.substr(10);
      if (amp == std::string_view::npos) break;
      query.remove_prefix(amp + 1);
    }
  }
  std::string want = crypto::hex(crypto::hmac_sha256(deps_.url_secret, path + "?" + expires));
  int64_t now = std::chrono::duration_cast<std::chrono::seconds>(
                    std::chrono::system_clock::now().time_since_epoch()).count();
  auto expires_at = parse_number<int64_t>(expires);
  bool fresh = expires_at && *expires_at >= now;
  if (!crypto::equal_constant_time(want, signature) || !fresh) {
    return call->fail({403, "AccessDenied", "The code link is invalid or has expired."});
  }
  // /kiln/code/<account>/<hex>.zip
  std::string rest = path.substr(11);
  size_t slash = rest.find('/');
  std::string hex = slash == std::string::npos ? "" : rest.substr(slash + 1);
  if (hex.size() != 68 || hex.substr(64) != ".zip") return call->fail(ResourceNotFound("no such code"));
  hex.resize(64);
  if (hex.find_first_not_of("0123456789abcdef") != std::string::npos || !deps_.code.contains(hex)) {
    return call->fail(ResourceNotFound("no such code"));
  }
  post_call(std::move(call), [this, hex](const std::shared_ptr<Call>& call) {
    std::string zip;
    if (!read_file(deps_.code.zip_path(hex), &zip)) return call->fail(ServiceError("cannot read code"));
    net::Response r(http::status::ok, 11);
    r.set(http::field::content_type, "application/zip");
    r.body() = std::move(zip);
    call->reply(std::move(r));
  });
}

}  // namespace kiln::api
