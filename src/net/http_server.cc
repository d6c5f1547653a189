#include "net/http_server.h"

#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>

#include <atomic>
#include <exception>
#include <mutex>
#include <optional>
#include <unordered_set>

#include "common/log.h"

namespace kiln::net {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

class Connection;

// Lambda's ServiceException, the answer to a request whose handler threw. Built by hand:
// it must not depend on anything that could throw again.
Response internal_error_response() {
  Response r(http::status::internal_server_error, 11);
  r.set(http::field::content_type, "application/json");
  r.set("x-amzn-ErrorType", "ServiceException");
  r.body() = R"({"Type":"Service","message":"Kiln failed to handle the request."})";
  return r;
}

}  // namespace

// What connections share with their server; kept alive by both.
struct HttpServer::Connections {
  Handler handler;
  ServerOptions options;
  std::mutex mu;
  std::unordered_set<std::shared_ptr<Connection>> open;  // guarded by mu
  bool stopped = false;                                  // guarded by mu
};

namespace {

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(tcp::socket socket, std::shared_ptr<HttpServer::Connections> shared)
      : stream_(std::move(socket)), shared_(std::move(shared)),
        handler_(shared_->handler), options_(shared_->options) {
    boost::system::error_code ec;
    auto ep = stream_.socket().remote_endpoint(ec);
    if (!ec) peer_ = ep.address().to_string() + ":" + std::to_string(ep.port());
    stream_.socket().set_option(tcp::no_delay(true), ec);
  }

  void start() {
    asio::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->read(); });
  }

  void close() {
    asio::post(stream_.get_executor(), [self = shared_from_this()] { self->shutdown(); });
  }

  void write(Response response) {
    asio::post(stream_.get_executor(),
               [self = shared_from_this(), r = std::move(response)]() mutable {
                 self->do_write(std::move(r));
               });
  }

  const std::string& peer() const { return peer_; }

 private:
  void read() {
    parser_.emplace();
    parser_->body_limit(options_.body_limit);
    parser_->header_limit(64 * 1024);
    http::async_read(stream_, buffer_, *parser_,
                     [self = shared_from_this()](beast::error_code ec, size_t) {
                       self->on_read(ec);
                     });
  }

  void on_read(beast::error_code ec) {
    if (ec == http::error::body_limit) {
      Response r = options_.too_large ? options_.too_large() : Response(http::status::payload_too_large, 11);
      r.keep_alive(false);
      do_write(std::move(r));
      return;
    }
    if (ec) return shutdown();
    Request request = parser_->release();
    keep_alive_ = request.keep_alive();
    auto responder = std::make_shared<ConnectionResponder>(shared_from_this());
    // Exception boundary: input must never stop the process. A handler that throws
    // answers 500 (unless it already answered) and the connection reads on.
    try {
      handler_(std::move(request), responder);
    } catch (const std::exception& e) {
      handler_failed(*responder, e.what());
    } catch (...) {
      handler_failed(*responder, "unknown exception");
    }
  }

  void handler_failed(Responder& responder, std::string_view what) {
    log::error("http: request handler threw (" + std::string(what) + "); answered 500 to " + peer_);
    responder.respond(internal_error_response());
  }

  void do_write(Response response) {
    if (closed_) return;
    if (!keep_alive_) response.keep_alive(false);
    response.prepare_payload();
    auto owned = std::make_shared<Response>(std::move(response));
    http::async_write(stream_, *owned,
                      [self = shared_from_this(), owned](beast::error_code ec, size_t) {
                        if (ec || owned->need_eof()) return self->shutdown();
                        self->read();
                      });
  }

  void shutdown() {
    if (closed_) return;
    closed_ = true;
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
    stream_.socket().close(ec);
    if (options_.on_close) options_.on_close();
    std::lock_guard lock(shared_->mu);
    shared_->open.erase(shared_from_this());
  }

  class ConnectionResponder : public Responder {
   public:
    explicit ConnectionResponder(std::shared_ptr<Connection> c) : conn_(std::move(c)) {}
    // Only the first answer is written (a handler that threw after handing the
    // responder on may still answer later: that answer is dropped).
    void respond(Response response) override {
      if (answered_.exchange(true)) return;
      conn_->write(std::move(response));
    }
    std::string peer() const override { return conn_->peer(); }

   private:
    std::shared_ptr<Connection> conn_;
    std::atomic<bool> answered_{false};
  };

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::shared_ptr<HttpServer::Connections> shared_;
  const Handler& handler_;        // owned by shared_
  const ServerOptions& options_;  // owned by shared_
  std::string peer_;
  bool keep_alive_ = true;
  bool closed_ = false;
};

}  // namespace

HttpServer::HttpServer(asio::io_context& io, tcp::acceptor acceptor, Handler handler,
                       ServerOptions options)
    : io_(io), acceptor_(std::move(acceptor)), connections_(std::make_shared<Connections>()) {
  connections_->handler = std::move(handler);
  connections_->options = std::move(options);
  boost::system::error_code ec;
  port_ = acceptor_.local_endpoint(ec).port();
}

void HttpServer::start() { accept(); }

void HttpServer::accept() {
  acceptor_.async_accept(asio::make_strand(io_),
                         [self = shared_from_this()](beast::error_code ec, tcp::socket socket) {
                           if (ec == asio::error::operation_aborted || !self->acceptor_.is_open()) return;
                           if (!ec) {
                             auto conn = std::make_shared<Connection>(std::move(socket),
                                                                      self->connections_);
                             {
                               std::lock_guard lock(self->connections_->mu);
                               if (self->connections_->stopped) return;  // accepted as stop() ran
                               self->connections_->open.insert(conn);
                             }
                             conn->start();
                           }
                           self->accept();
                         });
}

void HttpServer::stop() {
  asio::post(acceptor_.get_executor(), [self = shared_from_this()] {
    boost::system::error_code ec;
    self->acceptor_.close(ec);
  });
  std::unordered_set<std::shared_ptr<Connection>> open;
  {
    std::lock_guard lock(connections_->mu);
    connections_->stopped = true;
    open.swap(connections_->open);
  }
  for (auto& c : open) c->close();
}

}  // namespace kiln::net
