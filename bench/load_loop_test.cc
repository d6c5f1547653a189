// The closed loop against a tiny in-process HTTP server on a port chosen by the kernel:
// it counts what the server answered, classifies errors, and survives a server that
// hangs up. Runs are short (0.3 s measured); assertions are on counts, not on speed.
#include "load_loop.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

namespace kiln::bench {
namespace {

// Answers every request on every connection with `response`; if `close_after_each`,
// hangs up after each answer (without saying Connection: close).
class FakeServer {
 public:
  FakeServer(std::string response, bool close_after_each)
      : response_(std::move(response)), close_after_each_(close_after_each) {
    listener_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    EXPECT_EQ(bind(listener_, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    EXPECT_EQ(listen(listener_, 64), 0);
    getsockname(listener_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    acceptor_ = std::thread([this] { accept_loop(); });
  }

  ~FakeServer() {
    stop_ = true;
    acceptor_.join();
    for (std::thread& t : connections_) t.join();
    close(listener_);
  }

  int port() const { return port_; }
  uint64_t answered() const { return answered_; }

 private:
  void accept_loop() {
    while (!stop_) {
      pollfd p{listener_, POLLIN, 0};
      if (poll(&p, 1, 20) <= 0) continue;
      int fd = accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd >= 0) connections_.emplace_back([this, fd] { serve(fd); });
    }
  }

  void serve(int fd) {
    std::string in;
    char buf[4096];
    while (!stop_) {
      pollfd p{fd, POLLIN, 0};
      if (poll(&p, 1, 20) <= 0) continue;
      ssize_t n = read(fd, buf, sizeof buf);
      if (n <= 0) break;
      in.append(buf, static_cast<size_t>(n));
      size_t head_end = in.find("\r\n\r\n");
      if (head_end == std::string::npos) continue;
      size_t cl = in.find("Content-Length: ");
      size_t body = cl == std::string::npos ? 0 : std::stoul(in.substr(cl + 16));
      if (in.size() < head_end + 4 + body) continue;
      in.erase(0, head_end + 4 + body);
      if (write(fd, response_.data(), response_.size()) < 0) break;
      ++answered_;
      if (close_after_each_) break;
    }
    close(fd);
  }

  std::string response_;
  bool close_after_each_;
  int listener_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> answered_{0};
  std::thread acceptor_;
  std::vector<std::thread> connections_;  // touched by the acceptor thread only
};

LoadOptions options_for(int port, int connections) {
  LoadOptions o;
  o.host = "127.0.0.1";
  o.port = port;
  o.url = "http://127.0.0.1:" + std::to_string(port) + "/";
  o.body = "{}";
  o.connections = connections;
  o.threads = connections > 1 ? 2 : 1;
  o.warmup_s = 0.1;
  o.duration_s = 0.3;
  return o;
}

TEST(RunLoad, CountsResponsesOnKeepAliveConnections) {
  FakeServer server("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}", false);
  RunResult r = run_load(options_for(server.port(), 4));
  EXPECT_GT(r.responses, 10u);
  EXPECT_LE(r.responses, server.answered());  // warm-up responses are not counted
  EXPECT_EQ(r.non_2xx, 0u);
  EXPECT_EQ(r.function_errors, 0u);
  EXPECT_EQ(r.socket_errors, 0u);
  EXPECT_EQ(r.latency.count, r.responses);
  EXPECT_GT(r.latency.p50_us, 0);
  EXPECT_LE(r.latency.p50_us, r.latency.p99_us);
  EXPECT_LE(r.latency.p99_us, r.latency.max_us);
  EXPECT_EQ(r.first_status_line, "HTTP/1.1 200 OK");
}

TEST(RunLoad, ClassifiesErrorStatusesAndFunctionErrors) {
  FakeServer server(
      "HTTP/1.1 200 OK\r\nX-Amz-Function-Error: Unhandled\r\nContent-Length: 0\r\n\r\n", false);
  RunResult r = run_load(options_for(server.port(), 1));
  EXPECT_GT(r.responses, 0u);
  EXPECT_EQ(r.function_errors, r.responses);
  EXPECT_EQ(r.non_2xx, 0u);

  FakeServer failing("HTTP/1.1 503 Busy\r\nContent-Length: 0\r\n\r\n", false);
  RunResult f = run_load(options_for(failing.port(), 1));
  EXPECT_GT(f.responses, 0u);
  EXPECT_EQ(f.non_2xx, f.responses);
}

TEST(RunLoad, ReconnectsWhenTheServerHangsUp) {
  FakeServer server("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}", true);
  RunResult r = run_load(options_for(server.port(), 2));
  EXPECT_GT(r.responses, 2u);      // answers keep coming on reopened connections
  EXPECT_GT(r.socket_errors, 0u);  // each hang-up is counted
}

TEST(RunLoad, NothingListeningMeasuresNothing) {
  int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  bind(s, reinterpret_cast<sockaddr*>(&addr), sizeof addr);  // bound, never listening
  getsockname(s, reinterpret_cast<sockaddr*>(&addr), &len);
  RunResult r = run_load(options_for(ntohs(addr.sin_port), 1));
  close(s);
  EXPECT_EQ(r.responses, 0u);
  EXPECT_GT(r.socket_errors, 0u);
}

}  // namespace
}  // namespace kiln::bench
