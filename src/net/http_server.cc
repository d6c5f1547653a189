#include "net/http_server.h"

#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>

#include <algorithm>
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
  std::atomic<uint64_t> buffered{0};  // bytes charged by requests being read

  // Charges `bytes` against options.buffer_budget (which must be set); false (nothing
  // charged) if it would pass it.
  bool try_charge(uint64_t bytes) {
    const uint64_t budget = options.buffer_budget;
    uint64_t cur = buffered.load();
    do {
      if (cur + bytes > budget) return false;
    } while (!buffered.compare_exchange_weak(cur, cur + bytes));
    return true;
  }
  // What is left of the budget now (UINT64_MAX without one).
  uint64_t budget_left() const {
    const uint64_t budget = options.buffer_budget;
    if (budget == 0) return UINT64_MAX;
    const uint64_t cur = buffered.load();
    return cur >= budget ? 0 : budget - cur;
  }
};

namespace {

constexpr uint32_t kHeaderLimit = 64 * 1024;
constexpr size_t kFirstRead = 4096;  // bytes asked for while waiting for a request

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
  // Reading one request has two phases: waiting for its first byte (idle_timeout),
  // then reading it whole (read_timeout from that byte), charging the bytes it holds
  // against the server's buffer budget as they arrive. on_read gets the outcome.
  void read() {
    if (buffer_.size() > 0) return read_request();  // pipelined bytes: already started
    arm(options_.idle_timeout);
    stream_.async_read_some(buffer_.prepare(kFirstRead),
                            [self = shared_from_this()](beast::error_code ec, size_t n) {
                              self->buffer_.commit(n);
                              if (ec) return self->finish_read(ec);
                              self->read_request();
                            });
  }

  void read_request() {
    parser_.emplace();
    parser_->header_limit(kHeaderLimit);
    // Beast reserves a declared Content-Length as soon as the header is parsed: cap it
    // by what is left of the budget so an over-budget body fails before allocation.
    const uint64_t left = shared_->budget_left();
    budget_capped_ = left < options_.body_limit;
    parser_->body_limit(budget_capped_ ? left : options_.body_limit);
    arm(options_.read_timeout);
    read_some();
  }

  void read_some() {
    http::async_read_some(stream_, buffer_, *parser_,
                          [self = shared_from_this()](beast::error_code ec, size_t) {
                            self->on_read_some(ec);
                          });
  }

  void on_read_some(beast::error_code ec) {
    if (ec == http::error::body_limit && budget_capped_ && !declared_over_body_limit()) return refuse_over_budget();
    if (!ec && !charge()) return refuse_over_budget();
    if (ec || parser_->is_done()) return finish_read(ec);
    read_some();
  }

  // The request is read (or reading failed): nothing of it stays charged, and no
  // deadline runs while the handler answers.
  void finish_read(beast::error_code ec) {
    release();
    stream_.expires_never();
    on_read(ec);
  }

  void arm(std::chrono::milliseconds timeout) {
    if (timeout.count() > 0) {
      stream_.expires_after(timeout);
    } else {
      stream_.expires_never();
    }
  }

  // Memory this request holds now: the read buffer and the body (its declared length
  // is reserved up front).
  uint64_t held() const {
    uint64_t body = parser_ ? parser_->get().body().capacity() : 0;
    if (parser_ && parser_->content_length()) body = std::max<uint64_t>(body, *parser_->content_length());
    return buffer_.capacity() + body;
  }

  // Without a budget nothing is counted: no shared counter on the hot path.
  bool charge() {
    if (options_.buffer_budget == 0) return true;
    const uint64_t want = held();
    if (want <= charged_) return true;
    if (!shared_->try_charge(want - charged_)) return false;
    charged_ = want;
    return true;
  }

  void release() {
    if (charged_ == 0) return;
    shared_->buffered -= charged_;
    charged_ = 0;
  }

  bool declared_over_body_limit() const {
    auto length = parser_->content_length();
    return length && *length > options_.body_limit;
  }

  // Frees what the request holds, answers over_budget and closes.
  void refuse_over_budget() {
    parser_.reset();
    buffer_ = beast::flat_buffer();
    release();
    stream_.expires_never();
    keep_alive_ = false;
    Response r = options_.over_budget ? options_.over_budget() : Response(http::status::payload_too_large, 11);
    r.keep_alive(false);
    do_write(std::move(r));
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
    release();
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
  bool budget_capped_ = false;  // this request's body limit is what was left of the budget
  uint64_t charged_ = 0;        // bytes this connection has charged to the budget
};

// A connection for an accepted socket, registered as open; null (socket closed, unread)
// when the server is at max_connections or stopped (*stopped set).
std::shared_ptr<Connection> admit(const std::shared_ptr<HttpServer::Connections>& shared, tcp::socket socket,
                                  bool* stopped) {
  std::lock_guard lock(shared->mu);
  *stopped = shared->stopped;  // accepted as stop() ran
  const uint64_t max = shared->options.max_connections;
  if (*stopped || (max != 0 && shared->open.size() >= max)) {
    boost::system::error_code ignored;
    socket.close(ignored);
    return nullptr;
  }
  auto conn = std::make_shared<Connection>(std::move(socket), shared);
  shared->open.insert(conn);
  return conn;
}

}  // namespace

HttpServer::HttpServer(asio::io_context& io, tcp::acceptor acceptor, Handler handler,
                       ServerOptions options)
    : io_(io), acceptor_(std::move(acceptor)), accept_backoff_(acceptor_.get_executor()),
      connections_(std::make_shared<Connections>()) {
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
                           // Out of fds (EMFILE/ENFILE) or the like: re-arming at once
                           // would spin, so wait a little for descriptors to free up.
                           if (ec) return self->accept_later();
                           bool stopped = false;
                           if (auto conn = admit(self->connections_, std::move(socket), &stopped)) conn->start();
                           if (!stopped) self->accept();
                         });
}

void HttpServer::accept_later() {
  accept_backoff_.expires_after(connections_->options.accept_backoff);
  accept_backoff_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
    if (ec || !self->acceptor_.is_open()) return;
    self->accept();
  });
}

uint64_t HttpServer::open_connections() const {
  std::lock_guard lock(connections_->mu);
  return connections_->open.size();
}

uint64_t HttpServer::buffered_bytes() const { return connections_->buffered.load(); }

void HttpServer::stop() {
  asio::post(acceptor_.get_executor(), [self = shared_from_this()] {
    boost::system::error_code ec;
    self->acceptor_.close(ec);
    self->accept_backoff_.cancel();
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
