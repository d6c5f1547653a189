// The frontend: the Lambda API over HTTP. Authenticates every request (SigV4), routes it
// to its operation, answers control operations from a separate thread pool (so that
// zip extraction never delays an invoke) and runs invokes through assignment,
// placement and the worker.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/thread_pool.hpp>

#include <functional>
#include <map>
#include <memory>
#include <string>

#include "api/async_sink.h"
#include "api/control_operations.h"
#include "api/invoke_observer.h"
#include "api/router.h"
#include "api/sigv4.h"
#include "assignment/assignment.h"
#include "concurrency/limiter.h"
#include "net/http_server.h"
#include "placement/placement.h"
#include "registry/registry.h"
#include "worker/worker.h"

namespace kiln::api {

struct FrontendDeps {
  registry::Registry& registry;
  registry::CodeStore& code;
  assignment::AssignmentService& assignment;
  placement::PlacementService& placement;
  const CredentialLookup& keys;
  std::string region;
  std::string url_secret;  // signs Code.Location download links
  uint64_t concurrency_limit = 1000;
};

// A new request id (UUID v4 form), cheap enough for every request.
std::string request_id();

// Everything borrowed in deps, and `io`, must outlive the frontend.
class Frontend {
 public:
  Frontend(boost::asio::io_context& io, FrontendDeps deps, unsigned control_threads = 2);
  ~Frontend();
  // The HTTP handler: call for every request (any thread).
  void handle(net::Request&& request, net::ResponderPtr responder);
  // Stops control work; blocks until in-flight control operations finish.
  void shutdown();

  // Extension points, for components that serve part of the API (set before serving).
  // A Lambda operation of the model, run on the control pool.
  void add_control_operation(const std::string& operation, ControlHandler handler);
  // Another AWS service on the same endpoint (e.g. "logs"), chosen by the SigV4
  // credential scope; the handler runs on the event loop and must not block.
  using ServiceHandler = std::function<void(net::Request&&, const Principal&, const std::string& request_id,
                                            net::ResponderPtr)>;
  void add_service(const std::string& service, ServiceHandler handler);
  // An unauthenticated GET path (e.g. "/metrics"); must not block.
  using PathHandler = std::function<void(net::Request&&, net::ResponderPtr)>;
  void add_public_path(const std::string& path, PathHandler handler);
  // Runs blocking work on the control pool (never on the event loop).
  void post_control(std::function<void()> work);
  // Where InvocationType Event and InvokeAsync go. Borrowed; must outlive the frontend.
  void set_async_sink(AsyncSink* sink) { async_ = sink; }
  // Told about every executed invoke (metrics). Borrowed; must outlive the frontend.
  void set_invoke_observer(InvokeObserver* observer) { observer_ = observer; }
  // Admits every executed invoke (concurrency limits); none = unlimited. Borrowed; must
  // outlive the frontend.
  void set_concurrency_limiter(concurrency::Limiter* limiter) { limiter_ = limiter; }

  // Runs a synchronous invoke from inside Kiln (async poller, destinations): resolves
  // FunctionName + Qualifier and runs it as Invoke would. `done` runs on any thread.
  using InternalInvokeDone = std::function<void(worker::InvokeResult, const std::string& executed_version)>;
  void invoke_function(const std::string& account, const std::string& function_name, const std::string& qualifier,
                       std::string payload, std::string request_id, InternalInvokeDone done);

 private:
  struct Call;
  void dispatch(std::shared_ptr<Call> call);
  void control(std::shared_ptr<Call> call);
  // Runs work(call) on the control pool; an exception it throws answers the call 500.
  void post_call(std::shared_ptr<Call> call, std::function<void(const std::shared_ptr<Call>&)> work);
  void invoke(std::shared_ptr<Call> call);
  void invoke_async(std::shared_ptr<Call> call);
  void run_invoke(std::shared_ptr<Call> call, registry::FunctionVersionPtr f, std::string request_id,
                  bool tail);
  void enqueue_event(std::shared_ptr<Call> call, registry::FunctionVersionPtr f, bool legacy);
  void execute(registry::FunctionVersionPtr f, worker::InvokeRequest ir,
               std::function<void(worker::InvokeResult)> done);
  void download_code(std::shared_ptr<Call> call);
  std::string code_url(const std::string& host, const registry::FunctionVersion& f) const;

  boost::asio::io_context& io_;
  FrontendDeps deps_;
  std::unique_ptr<boost::asio::thread_pool> control_pool_;
  std::map<std::string, ControlHandler> control_ops_;   // written before serving only
  std::map<std::string, ServiceHandler> services_;      // same
  std::map<std::string, PathHandler> public_paths_;     // same
  AsyncSink* async_ = nullptr;
  InvokeObserver* observer_ = nullptr;
  concurrency::Limiter* limiter_ = nullptr;
};

}  // namespace kiln::api
