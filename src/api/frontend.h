// The frontend: the Lambda API over HTTP. Authenticates every request (SigV4), routes it
// to its operation, answers control operations from a separate thread pool (so that
// zip extraction never delays an invoke) and runs invokes through assignment,
// placement and the worker.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/thread_pool.hpp>

#include <memory>
#include <string>

#include "api/router.h"
#include "api/sigv4.h"
#include "assignment/assignment.h"
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

// Everything borrowed in deps, and `io`, must outlive the frontend.
class Frontend {
 public:
  Frontend(boost::asio::io_context& io, FrontendDeps deps, unsigned control_threads = 2);
  ~Frontend();
  // The HTTP handler: call for every request (any thread).
  void handle(net::Request&& request, net::ResponderPtr responder);
  // Stops control work; blocks until in-flight control operations finish.
  void shutdown();

 private:
  struct Call;
  void dispatch(std::shared_ptr<Call> call);
  void control(std::shared_ptr<Call> call);
  void invoke(std::shared_ptr<Call> call);
  void run_invoke(std::shared_ptr<Call> call, registry::FunctionVersionPtr f, std::string request_id,
                  bool tail);
  void download_code(std::shared_ptr<Call> call);
  std::string code_url(const std::string& host, const registry::FunctionVersion& f) const;

  boost::asio::io_context& io_;
  FrontendDeps deps_;
  std::unique_ptr<boost::asio::thread_pool> control_pool_;
};

}  // namespace kiln::api
