// A small HTTP/1.1 server on Boost.Beast, shared by the Lambda API frontend and each
// sandbox's Runtime API. One request at a time per connection (no pipelining); the
// handler answers through a Responder that may be called later, from any thread.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include <chrono>
#include <functional>
#include <memory>

namespace kiln::net {

using Request = boost::beast::http::request<boost::beast::http::string_body>;
using Response = boost::beast::http::response<boost::beast::http::string_body>;

// Answers one request. Call exactly once, from any thread; the write is posted to the
// connection's strand. Calling it after the connection died is harmless.
class Responder {
 public:
  virtual ~Responder() = default;
  virtual void respond(Response response) = 0;
  // Peer address as "ip:port" (for logs).
  virtual std::string peer() const = 0;
};
using ResponderPtr = std::shared_ptr<Responder>;

// Called on the connection's strand for every complete request. A request whose body
// passes body_limit never reaches the handler: too_large answers it, then the
// connection closes.
using Handler = std::function<void(Request&& request, ResponderPtr responder)>;
using TooLargeHandler = std::function<Response()>;

// Bounds on what one peer can make the server hold. 0 disables each bound. The
// timeouts cover reading requests only: a request handed to the handler waits for its
// Responder without any deadline (a parked long poll), and responses are written
// without one.
struct ServerOptions {
  uint64_t body_limit = 8 * 1024 * 1024;
  TooLargeHandler too_large;  // optional; default answers 413 with an empty body
  // Called when a connection closes (e.g. a runtime hung up), on its strand.
  std::function<void()> on_close;
  // Open connections beyond this are closed right after accept, unread.
  uint64_t max_connections = 0;
  // Bytes held across all connections by requests still being read (headers, and each
  // body at its declared Content-Length or received size). A request that would pass
  // it is answered over_budget (connection closed, its buffer freed) and never reaches
  // the handler. Set it at least body_limit, or a lone request at the limit is refused.
  // 0: no budget, and buffered_bytes() stays 0.
  uint64_t buffer_budget = 0;
  TooLargeHandler over_budget;  // optional; default answers 413 with an empty body
  // A connection with no request started (no byte received) for idle_timeout closes;
  // a request not read in full within read_timeout of its first byte closes it.
  std::chrono::milliseconds idle_timeout{0};
  std::chrono::milliseconds read_timeout{0};
  // Backoff before accepting again after accept fails (e.g. EMFILE, out of fds).
  std::chrono::milliseconds accept_backoff{100};
};

// Accepts connections on `acceptor` until stop(). Lifetime: the io_context must outlive
// the server; stop() before destroying it.
class HttpServer : public std::enable_shared_from_this<HttpServer> {
 public:
  HttpServer(boost::asio::io_context& io, boost::asio::ip::tcp::acceptor acceptor,
             Handler handler, ServerOptions options);
  void start();
  // Stops accepting and closes every open connection. Thread-safe.
  void stop();
  uint16_t port() const { return port_; }
  // Open connections and bytes held by requests being read now (tests, operators).
  uint64_t open_connections() const;
  uint64_t buffered_bytes() const;

  struct Connections;  // state shared with open connections (private to the .cc)

 private:
  void accept();
  void accept_later();

  boost::asio::io_context& io_;
  boost::asio::ip::tcp::acceptor acceptor_;
  boost::asio::steady_timer accept_backoff_;  // used on the acceptor's executor only
  uint16_t port_ = 0;
  std::shared_ptr<Connections> connections_;
};

}  // namespace kiln::net
