#include "net/http_server.h"

#include <boost/asio/basic_waitable_timer.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core/flat_buffer.hpp>
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

// Each connection runs on its own strand, named by its concrete type (not through
// any_io_executor, whose type erasure costs on every operation).
using Strand = asio::strand<asio::io_context::executor_type>;
using Socket = asio::basic_stream_socket<tcp, Strand>;
using Clock = std::chrono::steady_clock;
using Timer = asio::basic_waitable_timer<Clock, asio::wait_traits<Clock>, Strand>;

// The shortest enabled timeout: how far ahead a connection's timer is ever armed.
std::chrono::milliseconds timer_step(const ServerOptions& o) {
  auto a = o.idle_timeout, b = o.read_timeout;
  if (a.count() == 0) return b;
  if (b.count() == 0) return a;
  return std::min(a, b);
}

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(Socket socket, std::shared_ptr<HttpServer::Connections> shared)
      : socket_(std::move(socket)), timer_(socket_.get_executor()), shared_(std::move(shared)),
        handler_(shared_->handler), options_(shared_->options), step_(timer_step(options_)) {
    boost::system::error_code ec;
    auto ep = socket_.remote_endpoint(ec);
    if (!ec) peer_ = ep.address().to_string() + ":" + std::to_string(ep.port());
    socket_.set_option(tcp::no_delay(true), ec);
  }

  void start() {
    asio::dispatch(socket_.get_executor(), [self = shared_from_this()] { self->read(); });
  }

  void close() {
    asio::post(socket_.get_executor(), [self = shared_from_this()] { self->shutdown(); });
  }

  // Inline when called on the connection's strand (a handler answering at once, e.g.
  // the Runtime API's 202), else posted to it.
  void write(Response response) {
    asio::dispatch(socket_.get_executor(),
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
    set_deadline(options_.idle_timeout);
    socket_.async_read_some(buffer_.prepare(kFirstRead),
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
    set_deadline(options_.read_timeout);
    parse_buffered();
  }

  // Parses what is already in buffer_ (usually the whole request, from the first read)
  // here, rather than through http::async_read_some, which would post its completion
  // before reading anything; then reads on only if the request is incomplete.
  void parse_buffered() {
    beast::error_code ec;
    while (buffer_.size() > 0 && !parser_->is_done()) {
      const size_t used = parser_->put(buffer_.data(), ec);
      buffer_.consume(used);
      if (ec == http::error::need_more) {
        ec = {};
        break;
      }
      if (ec || used == 0) break;
    }
    on_read_some(ec);
  }

  void read_some() {
    http::async_read_some(socket_, buffer_, *parser_,
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
    deadline_ = kNoDeadline;
    on_read(ec);
  }

  // Deadlines cost no timer operation per request: moving one only stores a time. The
  // timer is armed at most step_ ahead (the shortest timeout), so a deadline set later
  // is never before the pending wait's expiry and no wait is ever cancelled; when the
  // wait ends early it re-arms towards the current deadline. A connection with a
  // deadline thus wakes at most once per step_ besides its requests.
  void set_deadline(std::chrono::milliseconds timeout) {
    if (timeout.count() == 0) {
      deadline_ = kNoDeadline;
      return;
    }
    deadline_ = Clock::now() + timeout;
    if (!timer_waiting_) wait_deadline(Clock::now());
  }

  void wait_deadline(Clock::time_point now) {
    timer_waiting_ = true;
    timer_.expires_at(std::min(deadline_, now + step_));
    timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) { self->on_timer(ec); });
  }

  void on_timer(boost::system::error_code ec) {
    timer_waiting_ = false;
    if (ec || closed_ || deadline_ == kNoDeadline) return;  // no read running: its start re-arms
    const Clock::time_point now = Clock::now();
    if (now >= deadline_) return shutdown();  // the pending read ends with operation_aborted
    wait_deadline(now);
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
    deadline_ = kNoDeadline;
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

  // One response at a time: the next request is read only once this one is written.
  void do_write(Response response) {
    if (closed_) return;
    if (!keep_alive_) response.keep_alive(false);
    response.prepare_payload();
    response_ = std::move(response);
    http::async_write(socket_, response_, [self = shared_from_this()](beast::error_code ec, size_t) {
      if (ec || self->response_.need_eof()) return self->shutdown();
      self->response_ = Response();
      self->read();
    });
  }

  void shutdown() {
    if (closed_) return;
    closed_ = true;
    release();
    deadline_ = kNoDeadline;
    timer_.cancel();  // its wait holds this connection
    beast::error_code ec;
    socket_.shutdown(tcp::socket::shutdown_both, ec);
    socket_.close(ec);
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

  static constexpr Clock::time_point kNoDeadline = Clock::time_point::max();

  Socket socket_;
  Timer timer_;  // waits towards deadline_ (see set_deadline)
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  Response response_;  // being written
  std::shared_ptr<HttpServer::Connections> shared_;
  const Handler& handler_;        // owned by shared_
  const ServerOptions& options_;  // owned by shared_
  const std::chrono::milliseconds step_;
  Clock::time_point deadline_ = kNoDeadline;  // reading must end by then
  bool timer_waiting_ = false;
  std::string peer_;
  bool keep_alive_ = true;
  bool closed_ = false;
  bool budget_capped_ = false;  // this request's body limit is what was left of the budget
  uint64_t charged_ = 0;        // bytes this connection has charged to the budget
};

// A connection for an accepted socket, registered as open; null (socket closed, unread)
// when the server is at max_connections or stopped (*stopped set).
std::shared_ptr<Connection> admit(const std::shared_ptr<HttpServer::Connections>& shared, Socket socket,
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
                         [self = shared_from_this()](beast::error_code ec, Socket socket) {
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
