// A small HTTP/1.1 server on Boost.Beast, shared by the Lambda API frontend and each
// sandbox's Runtime API. One request at a time per connection (no pipelining); the
// handler answers through a Responder that may be called later, from any thread.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

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

struct ServerOptions {
  uint64_t body_limit = 8 * 1024 * 1024;
  TooLargeHandler too_large;  // optional; default answers 413 with an empty body
  // Called when a connection closes (e.g. a runtime hung up), on its strand.
  std::function<void()> on_close;
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

  struct Connections;  // state shared with open connections (private to the .cc)

 private:
  void accept();

  boost::asio::io_context& io_;
  boost::asio::ip::tcp::acceptor acceptor_;
  uint16_t port_ = 0;
  std::shared_ptr<Connections> connections_;
};

}  // namespace kiln::net
