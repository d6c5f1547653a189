// HttpServer on 127.0.0.1:0 driven by a blocking Beast client: round trips, keep-alive,
// late answers from another thread, the body limit, stop(), and the bounds on what a
// peer can make it hold (connections, buffered bytes, idle and slow requests).
#include "net/http_server.h"

#include <gtest/gtest.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <future>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace kiln::net {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;

constexpr auto kWait = 10s;  // generous bound on anything that should be immediate

// Runs an io_context on its own thread for the life of the fixture.
class HttpServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    thread_ = std::thread([this] { io_.run(); });
  }
  void TearDown() override {
    if (server_) server_->stop();
    work_.reset();
    io_.stop();
    thread_.join();
  }

  void start(Handler handler, ServerOptions options = {}) {
    tcp::acceptor acceptor(io_, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    server_ = std::make_shared<HttpServer>(io_, std::move(acceptor), std::move(handler), std::move(options));
    server_->start();
    ASSERT_NE(server_->port(), 0);
  }

  // A connected blocking client socket (its own io_context: never runs handlers).
  tcp::socket connect() {
    tcp::socket s(client_io_);
    s.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), server_->port()));
    return s;
  }

  // Reads one response; sets `ec` on failure. A receive timeout keeps a bug from hanging.
  static std::optional<Response> read_response(tcp::socket& s, beast::flat_buffer& buf, beast::error_code& ec) {
    timeval tv{10, 0};
    ::setsockopt(s.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    Response r;
    http::read(s, buf, r, ec);
    if (ec) return std::nullopt;
    return r;
  }

  static Request make_request(const std::string& target, std::string body = "") {
    Request req(body.empty() ? http::verb::get : http::verb::post, target, 11);
    req.set(http::field::host, "127.0.0.1");
    req.body() = std::move(body);
    req.prepare_payload();
    return req;
  }

  // Echoes method, target and body.
  static Handler echo() {
    return [](Request&& req, ResponderPtr responder) {
      Response r(http::status::ok, 11);
      r.set("X-Target", std::string(req.target()));
      r.body() = std::string(req.method_string()) + " " + req.body();
      responder->respond(std::move(r));
    };
  }

  asio::io_context io_;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work_{io_.get_executor()};
  asio::io_context client_io_;
  std::thread thread_;
  std::shared_ptr<HttpServer> server_;
};

TEST_F(HttpServerTest, RoundTripDeliversRequestAndResponse) {
  start(echo());
  tcp::socket s = connect();
  http::write(s, make_request("/hello?x=1", "payload"));
  beast::flat_buffer buf;
  beast::error_code ec;
  auto r = read_response(s, buf, ec);
  ASSERT_TRUE(r) << ec.message();
  EXPECT_EQ(r->result(), http::status::ok);
  EXPECT_EQ(r->at("X-Target"), "/hello?x=1");
  EXPECT_EQ(r->body(), "POST payload");
  EXPECT_TRUE(r->keep_alive());
}

TEST_F(HttpServerTest, KeepAliveServesManyRequestsOnOneConnection) {
  std::atomic<int> calls{0};
  std::mutex mu;
  std::vector<std::string> peers;
  start([&](Request&& req, ResponderPtr responder) {
    calls++;
    {
      std::lock_guard lock(mu);
      peers.push_back(responder->peer());
    }
    Response r(http::status::ok, 11);
    r.body() = req.body();
    responder->respond(std::move(r));
  });
  tcp::socket s = connect();
  beast::flat_buffer buf;
  for (int i = 0; i < 5; ++i) {
    http::write(s, make_request("/n", "req" + std::to_string(i)));
    beast::error_code ec;
    auto r = read_response(s, buf, ec);
    ASSERT_TRUE(r) << "request " << i << ": " << ec.message();
    EXPECT_EQ(r->body(), "req" + std::to_string(i));
  }
  EXPECT_EQ(calls.load(), 5);
  std::lock_guard lock(mu);
  const std::string local = "127.0.0.1:" + std::to_string(s.local_endpoint().port());
  for (const auto& p : peers) EXPECT_EQ(p, local) << "all on the same connection";
}

TEST_F(HttpServerTest, ConnectionCloseRequestGetsAnswerThenEof) {
  start(echo());
  tcp::socket s = connect();
  Request req = make_request("/bye");
  req.keep_alive(false);
  http::write(s, req);
  beast::flat_buffer buf;
  beast::error_code ec;
  auto r = read_response(s, buf, ec);
  ASSERT_TRUE(r) << ec.message();
  EXPECT_FALSE(r->keep_alive());
  Response again;
  http::read(s, buf, again, ec);
  EXPECT_EQ(ec, http::error::end_of_stream);
}

TEST_F(HttpServerTest, ResponderCalledLaterFromAnotherThread) {
  std::promise<ResponderPtr> parked;
  start([&](Request&&, ResponderPtr responder) { parked.set_value(std::move(responder)); });
  tcp::socket s = connect();
  http::write(s, make_request("/next"));
  auto fut = parked.get_future();
  ASSERT_EQ(fut.wait_for(kWait), std::future_status::ready);
  ResponderPtr responder = fut.get();
  std::thread other([responder] {
    Response r(http::status::accepted, 11);
    r.body() = "late";
    responder->respond(std::move(r));
  });
  other.join();
  beast::flat_buffer buf;
  beast::error_code ec;
  auto r = read_response(s, buf, ec);
  ASSERT_TRUE(r) << ec.message();
  EXPECT_EQ(r->result(), http::status::accepted);
  EXPECT_EQ(r->body(), "late");
}

TEST_F(HttpServerTest, ParkedRequestsOnTwoConnectionsAnswerIndependently) {
  std::mutex mu;
  std::vector<std::pair<std::string, ResponderPtr>> parked;
  std::promise<void> both;
  start([&](Request&& req, ResponderPtr responder) {
    std::lock_guard lock(mu);
    parked.emplace_back(std::string(req.target()), std::move(responder));
    if (parked.size() == 2) both.set_value();
  });
  tcp::socket a = connect();
  tcp::socket b = connect();
  http::write(a, make_request("/a"));
  http::write(b, make_request("/b"));
  ASSERT_EQ(both.get_future().wait_for(kWait), std::future_status::ready);
  for (auto& [target, responder] : parked) {
    Response r(http::status::ok, 11);
    r.body() = target;
    responder->respond(std::move(r));
  }
  beast::flat_buffer buf_a, buf_b;
  beast::error_code ec;
  auto ra = read_response(a, buf_a, ec);
  ASSERT_TRUE(ra) << ec.message();
  auto rb = read_response(b, buf_b, ec);
  ASSERT_TRUE(rb) << ec.message();
  EXPECT_EQ(ra->body(), "/a");
  EXPECT_EQ(rb->body(), "/b");
}

TEST_F(HttpServerTest, RespondAfterPeerHungUpIsHarmless) {
  std::promise<ResponderPtr> parked;
  start([&](Request&&, ResponderPtr responder) { parked.set_value(std::move(responder)); });
  {
    tcp::socket s = connect();
    http::write(s, make_request("/next"));
    auto fut = parked.get_future();
    ASSERT_EQ(fut.wait_for(kWait), std::future_status::ready);
    ResponderPtr responder = fut.get();
    s.close();
    responder->respond(Response(http::status::ok, 11));
  }
  // The server still serves.
  tcp::socket s2 = connect();
  s2.close();
  SUCCEED();
}

TEST_F(HttpServerTest, BodyOverLimitGetsTooLargeAnswerAndNeverReachesHandler) {
  std::atomic<int> calls{0};
  ServerOptions options;
  options.body_limit = 1024;
  options.too_large = [] {
    Response r(http::status::payload_too_large, 11);
    r.body() = "too big";
    return r;
  };
  start([&](Request&&, ResponderPtr responder) {
    calls++;
    responder->respond(Response(http::status::ok, 11));
  }, std::move(options));

  // Headers only: the declared Content-Length alone passes the limit.
  tcp::socket s = connect();
  std::string head = "POST /big HTTP/1.1\r\nHost: x\r\nContent-Length: 4096\r\n\r\n";
  asio::write(s, asio::buffer(head));
  beast::flat_buffer buf;
  beast::error_code ec;
  auto r = read_response(s, buf, ec);
  ASSERT_TRUE(r) << ec.message();
  EXPECT_EQ(r->result(), http::status::payload_too_large);
  EXPECT_EQ(r->body(), "too big");
  EXPECT_FALSE(r->keep_alive());
  Response again;
  http::read(s, buf, again, ec);
  EXPECT_TRUE(ec == http::error::end_of_stream || ec == asio::error::connection_reset) << ec.message();
  EXPECT_EQ(calls.load(), 0);
}

TEST_F(HttpServerTest, BodyOverLimitSentInFullStillGetsTheAnswer) {
  // A client (or runtime) that writes its whole oversized body before reading: the
  // answer must not be lost to a TCP reset from closing with unread data.
  ServerOptions options;
  options.body_limit = 1024;
  start(echo(), std::move(options));
  tcp::socket s = connect();
  http::write(s, make_request("/big", std::string(64 * 1024, 'x')));
  beast::flat_buffer buf;
  beast::error_code ec;
  auto r = read_response(s, buf, ec);
  ASSERT_TRUE(r) << "response lost: " << ec.message();
  EXPECT_EQ(r->result(), http::status::payload_too_large);
}

TEST_F(HttpServerTest, BodyAtLimitIsAccepted) {
  ServerOptions options;
  options.body_limit = 1024;
  start(echo(), std::move(options));
  tcp::socket s = connect();
  http::write(s, make_request("/ok", std::string(1024, 'y')));
  beast::flat_buffer buf;
  beast::error_code ec;
  auto r = read_response(s, buf, ec);
  ASSERT_TRUE(r) << ec.message();
  EXPECT_EQ(r->result(), http::status::ok);
  EXPECT_EQ(r->body().size(), 5 + 1024u);
}

TEST_F(HttpServerTest, MalformedRequestClosesTheConnection) {
  std::atomic<int> calls{0};
  start([&](Request&&, ResponderPtr r) {
    calls++;
    r->respond(Response(http::status::ok, 11));
  });
  tcp::socket s = connect();
  asio::write(s, asio::buffer(std::string("NOT HTTP AT ALL\r\n\r\n")));
  beast::flat_buffer buf;
  beast::error_code ec;
  auto r = read_response(s, buf, ec);
  EXPECT_FALSE(r);
  EXPECT_TRUE(ec == http::error::end_of_stream || ec == asio::error::connection_reset) << ec.message();
  EXPECT_EQ(calls.load(), 0);
}

TEST_F(HttpServerTest, StopClosesOpenConnectionsAndCallsOnClose) {
  std::promise<void> parked_promise;
  ResponderPtr parked;
  std::mutex mu;
  std::condition_variable cv;
  int closes = 0;  // guarded by mu
  ServerOptions options;
  options.on_close = [&] {
    std::lock_guard lock(mu);
    closes++;
    cv.notify_all();
  };
  start([&](Request&& req, ResponderPtr responder) {
    if (req.target() == "/ping") return responder->respond(Response(http::status::ok, 11));
    parked = std::move(responder);
    parked_promise.set_value();
  }, std::move(options));
  // A keep-alive connection between requests, and one with a request parked.
  tcp::socket idle = connect();
  http::write(idle, make_request("/ping"));
  beast::flat_buffer idle_buf;
  beast::error_code ec;
  ASSERT_TRUE(read_response(idle, idle_buf, ec)) << ec.message();
  tcp::socket waiting = connect();
  http::write(waiting, make_request("/next"));
  ASSERT_EQ(parked_promise.get_future().wait_for(kWait), std::future_status::ready);

  server_->stop();

  beast::flat_buffer waiting_buf;
  for (auto [s, buf] : {std::pair{&idle, &idle_buf}, std::pair{&waiting, &waiting_buf}}) {
    auto r = read_response(*s, *buf, ec);
    EXPECT_FALSE(r);
    EXPECT_TRUE(ec == http::error::end_of_stream || ec == asio::error::connection_reset) << ec.message();
  }
  {
    std::unique_lock lock(mu);
    EXPECT_TRUE(cv.wait_for(lock, kWait, [&] { return closes >= 2; })) << "on_close calls: " << closes;
  }
  // Answering after stop is harmless.
  parked->respond(Response(http::status::ok, 11));
}

TEST_F(HttpServerTest, StopRefusesNewConnections) {
  start(echo());
  const uint16_t port = server_->port();
  std::promise<void> stopped;
  server_->stop();
  // stop() posts the acceptor close; a marker posted after it runs once it is done.
  asio::post(io_, [&] { stopped.set_value(); });
  ASSERT_EQ(stopped.get_future().wait_for(kWait), std::future_status::ready);
  tcp::socket s(client_io_);
  beast::error_code ec;
  s.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port), ec);
  EXPECT_EQ(ec, asio::error::connection_refused);
}

// The exception boundary: a handler that throws answers Lambda's ServiceException and
// the same connection goes on serving.
TEST_F(HttpServerTest, HandlerThatThrowsGets500AndConnectionKeepsWorking) {
  start([](Request&& req, ResponderPtr responder) {
    if (req.target() == "/throw") throw std::out_of_range("stoll");
    if (req.target() == "/throw-int") throw 42;
    echo()(std::move(req), std::move(responder));
  });
  tcp::socket s = connect();
  beast::flat_buffer buf;
  for (const char* target : {"/throw", "/ok", "/throw-int", "/ok"}) {
    http::write(s, make_request(target, "x"));
    beast::error_code ec;
    auto r = read_response(s, buf, ec);
    ASSERT_TRUE(r) << target << ": " << ec.message();
    if (std::string_view(target).substr(0, 6) == "/throw") {
      EXPECT_EQ(r->result(), http::status::internal_server_error);
      EXPECT_EQ(r->at("x-amzn-ErrorType"), "ServiceException");
      EXPECT_NE(r->body().find("\"Type\":\"Service\""), std::string::npos) << r->body();
    } else {
      EXPECT_EQ(r->result(), http::status::ok);
      EXPECT_EQ(r->body(), "POST x");
    }
  }
}

// A handler that answered and then threw is answered once: the next response on the
// connection belongs to the next request.
TEST_F(HttpServerTest, HandlerThatAnsweredThenThrewIsAnsweredOnce) {
  start([](Request&& req, ResponderPtr responder) {
    std::string target(req.target());
    echo()(std::move(req), responder);
    if (target == "/answer-then-throw") throw std::runtime_error("late");
  });
  tcp::socket s = connect();
  beast::flat_buffer buf;
  beast::error_code ec;
  http::write(s, make_request("/answer-then-throw", "a"));
  auto r1 = read_response(s, buf, ec);
  ASSERT_TRUE(r1) << ec.message();
  EXPECT_EQ(r1->result(), http::status::ok);
  http::write(s, make_request("/next", "b"));
  auto r2 = read_response(s, buf, ec);
  ASSERT_TRUE(r2) << ec.message();
  EXPECT_EQ(r2->result(), http::status::ok);
  EXPECT_EQ(r2->at("X-Target"), "/next");
  EXPECT_EQ(r2->body(), "POST b");
}

// Polls `done` until it holds or kWait passes.
template <typename F>
bool eventually(F done) {
  auto deadline = std::chrono::steady_clock::now() + kWait;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(5ms);
  }
  return true;
}

// Whether the server closed `s`: a read returns EOF or a reset (within the receive
// timeout set by read_response) rather than data or a timeout.
bool closed_by_server(tcp::socket& s) {
  timeval tv{20, 0};
  ::setsockopt(s.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  char c;
  beast::error_code ec;
  size_t n = s.read_some(asio::buffer(&c, 1), ec);
  return n == 0 && (ec == asio::error::eof || ec == asio::error::connection_reset);
}

TEST_F(HttpServerTest, ConnectionsBeyondTheLimitAreClosedUnread) {
  std::atomic<int> calls{0};
  ServerOptions options;
  options.max_connections = 3;
  start([&](Request&&, ResponderPtr responder) {
    calls++;
    responder->respond(Response(http::status::ok, 11));
  }, std::move(options));
  std::vector<tcp::socket> held;
  for (int i = 0; i < 3; ++i) held.push_back(connect());
  ASSERT_TRUE(eventually([&] { return server_->open_connections() == 3; })) << server_->open_connections();
  tcp::socket extra = connect();
  http::write(extra, make_request("/refused"));
  EXPECT_TRUE(closed_by_server(extra));
  EXPECT_EQ(calls.load(), 0) << "the refused connection was never read";
  EXPECT_EQ(server_->open_connections(), 3u);
  // The held connections still work, and closing one makes room for another.
  beast::flat_buffer buf;
  beast::error_code ec;
  http::write(held[0], make_request("/ok"));
  ASSERT_TRUE(read_response(held[0], buf, ec)) << ec.message();
  held.pop_back();
  ASSERT_TRUE(eventually([&] { return server_->open_connections() == 2; }));
  tcp::socket again = connect();
  http::write(again, make_request("/ok"));
  beast::flat_buffer buf2;
  ASSERT_TRUE(read_response(again, buf2, ec)) << ec.message();
}

TEST_F(HttpServerTest, UnfinishedBodiesAreBoundedByTheBufferBudget) {
  std::atomic<int> calls{0};
  ServerOptions options;
  options.body_limit = 64 * 1024;
  options.buffer_budget = 160 * 1024;  // room for two unfinished 64 KiB bodies, not three
  options.over_budget = [] {
    Response r(http::status::payload_too_large, 11);
    r.body() = "over budget";
    return r;
  };
  start([&](Request&& req, ResponderPtr responder) {
    calls++;
    Response r(http::status::ok, 11);
    r.body() = std::to_string(req.body().size());
    responder->respond(std::move(r));
  }, std::move(options));
  const std::string head = "POST /response HTTP/1.1\r\nHost: x\r\nContent-Length: 65536\r\n\r\n";
  std::vector<tcp::socket> unfinished;
  for (int i = 0; i < 2; ++i) {
    unfinished.push_back(connect());
    asio::write(unfinished.back(), asio::buffer(head + std::string(1000, 'x')));
    ASSERT_TRUE(eventually([&] { return server_->buffered_bytes() >= (i + 1) * 65536u; })) << i;
  }
  const uint64_t held = server_->buffered_bytes();
  EXPECT_LE(held, 160 * 1024u);
  // A third unfinished body would pass the budget: refused, never buffered.
  tcp::socket third = connect();
  asio::write(third, asio::buffer(head));
  beast::flat_buffer buf;
  beast::error_code ec;
  auto r = read_response(third, buf, ec);
  ASSERT_TRUE(r) << ec.message();
  EXPECT_EQ(r->result(), http::status::payload_too_large);
  EXPECT_EQ(r->body(), "over budget");
  EXPECT_FALSE(r->keep_alive());
  EXPECT_LE(server_->buffered_bytes(), held);
  // A request without a body still gets through, and finishing a body frees its charge.
  tcp::socket get = connect();
  http::write(get, make_request("/next"));
  beast::flat_buffer get_buf;
  ASSERT_TRUE(read_response(get, get_buf, ec)) << ec.message();
  asio::write(unfinished[0], asio::buffer(std::string(65536 - 1000, 'x')));
  beast::flat_buffer done_buf;
  auto done = read_response(unfinished[0], done_buf, ec);
  ASSERT_TRUE(done) << ec.message();
  EXPECT_EQ(done->body(), "65536");
  unfinished[1].close();
  EXPECT_TRUE(eventually([&] { return server_->buffered_bytes() == 0; })) << server_->buffered_bytes();
  EXPECT_EQ(calls.load(), 2);
}

TEST_F(HttpServerTest, ChunkedBodyIsChargedAsItGrows) {
  ServerOptions options;
  options.body_limit = 1024 * 1024;
  options.buffer_budget = 256 * 1024;
  start(echo(), std::move(options));
  tcp::socket s = connect();
  asio::write(s, asio::buffer(std::string("POST /r HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")));
  const std::string chunk = "10000\r\n" + std::string(0x10000, 'c') + "\r\n";  // 64 KiB chunks
  beast::error_code ec;
  for (int i = 0; i < 8 && !ec; ++i) asio::write(s, asio::buffer(chunk), ec);
  beast::flat_buffer buf;
  auto r = read_response(s, buf, ec);
  // The 413 may be lost to the reset of closing with unsent chunks; either way the
  // request was refused and nothing stays charged.
  if (r) {
    EXPECT_EQ(r->result(), http::status::payload_too_large);
  }
  EXPECT_TRUE(r || ec == asio::error::connection_reset || ec == http::error::end_of_stream) << ec.message();
  EXPECT_TRUE(eventually([&] { return server_->buffered_bytes() == 0; })) << server_->buffered_bytes();
}

TEST_F(HttpServerTest, IdleConnectionIsClosedAfterTheIdleTimeout) {
  ServerOptions options;
  options.idle_timeout = 200ms;
  std::mutex mu;
  std::condition_variable cv;
  int closes = 0;  // guarded by mu
  options.on_close = [&] {
    std::lock_guard lock(mu);
    closes++;
    cv.notify_all();
  };
  start(echo(), std::move(options));
  tcp::socket silent = connect();
  EXPECT_TRUE(closed_by_server(silent));
  // Between keep-alive requests too.
  tcp::socket s = connect();
  http::write(s, make_request("/one"));
  beast::flat_buffer buf;
  beast::error_code ec;
  ASSERT_TRUE(read_response(s, buf, ec)) << ec.message();
  EXPECT_TRUE(closed_by_server(s));
  std::unique_lock lock(mu);
  EXPECT_TRUE(cv.wait_for(lock, kWait, [&] { return closes >= 2; })) << closes;
}

TEST_F(HttpServerTest, DribbledRequestIsClosedAfterTheReadTimeout) {
  std::atomic<int> calls{0};
  ServerOptions options;
  options.read_timeout = 300ms;
  start([&](Request&&, ResponderPtr r) {
    calls++;
    r->respond(Response(http::status::ok, 11));
  }, std::move(options));
  tcp::socket header = connect();
  asio::write(header, asio::buffer(std::string("GET /next HTTP/1.1\r\nHo")));
  tcp::socket body = connect();
  asio::write(body, asio::buffer(std::string("POST /r HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc")));
  // Keep dribbling a byte at a time until the server gives up (it must, within kWait).
  auto deadline = std::chrono::steady_clock::now() + kWait;
  bool closed = false;
  while (!closed && std::chrono::steady_clock::now() < deadline) {
    beast::error_code ec;
    asio::write(header, asio::buffer(std::string("s")), ec);
    closed = ec.failed();
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_TRUE(closed || closed_by_server(header));
  EXPECT_TRUE(closed_by_server(body));
  EXPECT_EQ(calls.load(), 0);
}

// Deadlines move without re-arming the timer: a read timeout far shorter than the idle
// timeout (and the reverse) must still apply on time, between keep-alive requests too.
TEST_F(HttpServerTest, ShortReadTimeoutUnderLongIdleTimeoutStillApplies) {
  ServerOptions options;
  options.idle_timeout = 600s;
  options.read_timeout = 100ms;
  start(echo(), std::move(options));
  tcp::socket s = connect();
  http::write(s, make_request("/one"));
  beast::flat_buffer buf;
  beast::error_code ec;
  ASSERT_TRUE(read_response(s, buf, ec)) << ec.message();
  asio::write(s, asio::buffer(std::string("GET /two HTTP/1.1\r\nHo")));  // never finished
  EXPECT_TRUE(closed_by_server(s));
}

TEST_F(HttpServerTest, ShortIdleTimeoutUnderLongReadTimeoutStillApplies) {
  ServerOptions options;
  options.idle_timeout = 100ms;
  options.read_timeout = 600s;
  start(echo(), std::move(options));
  tcp::socket s = connect();
  http::write(s, make_request("/one"));
  beast::flat_buffer buf;
  beast::error_code ec;
  ASSERT_TRUE(read_response(s, buf, ec)) << ec.message();
  EXPECT_TRUE(closed_by_server(s));
}

TEST_F(HttpServerTest, ParkedRequestHasNoTimeout) {
  // The timeouts bound reading a request, never waiting for the handler's answer.
  std::promise<ResponderPtr> parked;
  ServerOptions options;
  options.idle_timeout = 50ms;
  options.read_timeout = 50ms;
  std::atomic<int> closes{0};
  options.on_close = [&] { closes++; };
  start([&](Request&&, ResponderPtr responder) { parked.set_value(std::move(responder)); }, std::move(options));
  tcp::socket s = connect();
  http::write(s, make_request("/next"));
  auto fut = parked.get_future();
  ASSERT_EQ(fut.wait_for(kWait), std::future_status::ready);
  // A silent connection opened now is closed by its idle timeout; once it is, the
  // parked one has outlived several timeouts and must still be open.
  tcp::socket silent = connect();
  ASSERT_TRUE(closed_by_server(silent));
  ASSERT_TRUE(eventually([&] { return closes.load() == 1; }));
  EXPECT_EQ(server_->open_connections(), 1u);
  fut.get()->respond(Response(http::status::ok, 11));
  beast::flat_buffer buf;
  beast::error_code ec;
  auto r = read_response(s, buf, ec);
  ASSERT_TRUE(r) << ec.message();
  EXPECT_EQ(r->result(), http::status::ok);
}

}  // namespace
}  // namespace kiln::net

namespace kiln::net {
namespace {

// Event-loop handlers run per keep-alive request: a proxy for the work the server does
// around each request, counted, not timed. With both timeouts on (as every Kiln server
// runs), a request used to cost a first-byte read, a posted parse, a posted write and
// the cancelled timer wait of each of two reads; now it is the read, the write and
// their strand hops, and moving a deadline costs no handler.
TEST(HttpServerCost, KeepAliveRequestRunsFewEventLoopHandlers) {
  asio::io_context io;
  auto work = asio::make_work_guard(io);
  std::atomic<uint64_t> handlers{0};
  std::atomic<bool> done{false};
  std::thread loop([&] {
    while (!done) handlers += io.run_one_for(std::chrono::milliseconds(10));
  });
  ServerOptions options;
  options.idle_timeout = std::chrono::seconds(60);
  options.read_timeout = std::chrono::seconds(60);
  tcp::acceptor acceptor(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  auto server = std::make_shared<HttpServer>(
      io, std::move(acceptor),
      [](Request&& req, ResponderPtr responder) {
        Response r(http::status::ok, 11);
        r.body() = req.body();
        responder->respond(std::move(r));
      },
      std::move(options));
  server->start();
  asio::io_context client_io;
  tcp::socket s(client_io);
  s.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), server->port()));
  timeval tv{10, 0};
  ::setsockopt(s.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  Request req(http::verb::post, "/2018-06-01/runtime/invocation/id/response", 11);
  req.set(http::field::host, "127.0.0.1");
  req.body() = R"({"bench":"echo","n":1})";
  req.prepare_payload();
  beast::flat_buffer buf;
  const auto round_trip = [&] {
    http::write(s, req);
    Response r;
    http::read(s, buf, r);
    ASSERT_EQ(r.body(), req.body());
  };
  for (int i = 0; i < 10; ++i) round_trip();  // accept and first request behind us
  constexpr int kRequests = 200;
  const uint64_t before = handlers.load();
  for (int i = 0; i < kRequests; ++i) round_trip();
  const double per_request = static_cast<double>(handlers.load() - before) / kRequests;
  server->stop();
  done = true;
  work.reset();
  loop.join();
  // Measured with Boost 1.74: 6 to 7 per request before, 3 now. The bound leaves room
  // for one more hop, not for a timer cancel and a post per request.
  EXPECT_LE(per_request, 4.0) << per_request;
}

}  // namespace
}  // namespace kiln::net
