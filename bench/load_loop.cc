#include "load_loop.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <thread>

#include "http_response_parser.h"

namespace kiln::bench {
namespace {

constexpr uint64_t kRetryDelayNs = 10'000'000;       // reopen a failed connection after 10 ms
constexpr uint64_t kResignEveryNs = 60'000'000'000;  // signatures last 15 min; renew each minute

uint64_t now_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000 + static_cast<uint64_t>(ts.tv_nsec);
}

struct Connection {
  int fd = -1;
  bool connecting = false;
  std::shared_ptr<const std::string> request;  // what is being sent; kept alive while sending
  size_t sent = 0;
  std::string received;  // bytes of the current response so far
  uint64_t started_ns = 0;
  uint64_t retry_at_ns = 0;  // nonzero: closed, reopen at this time
};

struct ThreadResult {
  std::vector<uint64_t> samples_ns;
  uint64_t responses = 0, non_2xx = 0, function_errors = 0, socket_errors = 0;
  std::string first_status_line;
};

// One thread's epoll loop over its share of the connections.
class LoopThread {
 public:
  LoopThread(const LoadOptions& o, int connections, uint64_t warm_end, uint64_t end)
      : options_(o), conns_(connections), warm_end_(warm_end), end_(end) {}

  ThreadResult run() {
    // SAFETY: a fresh epoll fd owned by this object and closed at the end of run().
    epfd_ = epoll_create1(EPOLL_CLOEXEC);
    if (epfd_ < 0) {
      std::perror("epoll_create1");
      return std::move(result_);
    }
    request_ = build_request(options_, std::chrono::system_clock::now());
    signed_at_ = now_ns();
    for (uint32_t i = 0; i < conns_.size(); ++i) open(i);
    epoll_event events[256];
    for (uint64_t now = now_ns(); now < end_; now = now_ns()) {
      int timeout_ms = static_cast<int>(std::min<uint64_t>((end_ - now) / 1'000'000 + 1, 10));
      int n = epoll_wait(epfd_, events, 256, timeout_ms);
      for (int k = 0; k < n; ++k) on_event(events[k].data.u32, events[k].events);
      now = now_ns();
      if (pending_retries_ > 0) reopen_due(now);
      if (now - signed_at_ > kResignEveryNs) {
        request_ = build_request(options_, std::chrono::system_clock::now());
        signed_at_ = now;
      }
    }
    for (Connection& c : conns_)
      if (c.fd >= 0) close(c.fd);
    close(epfd_);
    return std::move(result_);
  }

 private:
  bool in_window(uint64_t t) const { return t >= warm_end_ && t < end_; }

  void open(uint32_t i) {
    Connection& c = conns_[i];
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(options_.port));
    inet_pton(AF_INET, options_.host.c_str(), &addr.sin_addr);
    // SAFETY: a new non-blocking socket owned by conns_[i] until close in fail()/run().
    c.fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    int rc = connect(c.fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    if (rc < 0 && errno != EINPROGRESS) {
      fail(i);
      return;
    }
    c.connecting = true;
    epoll_event ev{};
    ev.events = EPOLLOUT;
    ev.data.u32 = i;
    epoll_ctl(epfd_, EPOLL_CTL_ADD, c.fd, &ev);
  }

  void fail(uint32_t i) {
    Connection& c = conns_[i];
    uint64_t now = now_ns();
    if (in_window(now)) ++result_.socket_errors;
    if (c.fd >= 0) close(c.fd);  // also removes it from the epoll set
    c = Connection{};
    c.retry_at_ns = now + kRetryDelayNs;
    ++pending_retries_;
  }

  void reopen_due(uint64_t now) {
    for (uint32_t i = 0; i < conns_.size(); ++i) {
      if (conns_[i].retry_at_ns != 0 && conns_[i].retry_at_ns <= now) {
        conns_[i].retry_at_ns = 0;
        --pending_retries_;
        open(i);
      }
    }
  }

  void set_interest(uint32_t i, uint32_t events) {
    epoll_event ev{};
    ev.events = events;
    ev.data.u32 = i;
    epoll_ctl(epfd_, EPOLL_CTL_MOD, conns_[i].fd, &ev);
  }

  void start_request(uint32_t i) {
    Connection& c = conns_[i];
    c.request = request_;
    c.sent = 0;
    c.received.clear();
    c.started_ns = now_ns();
    continue_send(i);
  }

  void continue_send(uint32_t i) {
    Connection& c = conns_[i];
    while (c.sent < c.request->size()) {
      ssize_t n = send(c.fd, c.request->data() + c.sent, c.request->size() - c.sent, MSG_NOSIGNAL);
      if (n < 0 && errno == EAGAIN) {
        set_interest(i, EPOLLIN | EPOLLOUT);
        return;
      }
      if (n <= 0) {
        fail(i);
        return;
      }
      c.sent += static_cast<size_t>(n);
    }
  }

  void on_event(uint32_t i, uint32_t events) {
    Connection& c = conns_[i];
    if (c.fd < 0) return;
    if (c.connecting) {
      int err = 0;
      socklen_t len = sizeof err;
      getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &err, &len);
      if (err != 0 || (events & (EPOLLERR | EPOLLHUP))) {
        fail(i);
        return;
      }
      c.connecting = false;
      set_interest(i, EPOLLIN);
      if (now_ns() < end_) start_request(i);
      return;
    }
    if ((events & EPOLLOUT) && c.sent < c.request->size()) {
      continue_send(i);
      if (c.fd < 0) return;
      if (c.sent == c.request->size()) set_interest(i, EPOLLIN);
    }
    if (events & (EPOLLIN | EPOLLERR | EPOLLHUP)) on_readable(i);
  }

  void on_readable(uint32_t i) {
    Connection& c = conns_[i];
    char buf[65536];
    for (;;) {
      ssize_t n = recv(c.fd, buf, sizeof buf, 0);
      if (n < 0 && errno == EAGAIN) break;
      if (n <= 0) {
        fail(i);
        return;
      }
      c.received.append(buf, static_cast<size_t>(n));
      if (static_cast<size_t>(n) < sizeof buf) break;
    }
    ParsedResponse r = parse_http_response(c.received);
    if (r.state == ParsedResponse::State::kNeedMore) return;
    if (r.state == ParsedResponse::State::kMalformed) {
      std::fprintf(stderr, "kiln_loadgen: malformed response: %.200s\n", c.received.c_str());
      fail(i);
      return;
    }
    uint64_t done = now_ns();
    if (result_.first_status_line.empty())
      result_.first_status_line = c.received.substr(0, c.received.find("\r\n"));
    if (in_window(done)) {
      result_.samples_ns.push_back(done - c.started_ns);
      ++result_.responses;
      if (r.status < 200 || r.status > 299) ++result_.non_2xx;
      if (r.function_error) ++result_.function_errors;
    }
    if (r.connection_close) {
      close(c.fd);
      c = Connection{};
      open(i);
      return;
    }
    if (done < end_) start_request(i);
  }

  const LoadOptions& options_;
  std::vector<Connection> conns_;
  uint64_t warm_end_, end_;
  int epfd_ = -1;
  std::shared_ptr<const std::string> request_;
  uint64_t signed_at_ = 0;
  int pending_retries_ = 0;
  ThreadResult result_;
};

}  // namespace

RunResult run_load(const LoadOptions& options) {
  uint64_t start = now_ns();
  uint64_t warm_end = start + static_cast<uint64_t>(options.warmup_s * 1e9);
  uint64_t end = warm_end + static_cast<uint64_t>(options.duration_s * 1e9);
  std::vector<ThreadResult> results(options.threads);
  std::vector<std::thread> threads;
  for (int t = 0; t < options.threads; ++t) {
    int share = options.connections / options.threads + (t < options.connections % options.threads);
    threads.emplace_back(
        [&, t, share] { results[t] = LoopThread(options, share, warm_end, end).run(); });
  }
  for (std::thread& t : threads) t.join();

  RunResult out;
  out.url = options.url;
  out.signed_request = !options.access_key_id.empty();
  out.connections = options.connections;
  out.threads = options.threads;
  out.warmup_s = options.warmup_s;
  out.duration_s = static_cast<double>(end - warm_end) / 1e9;
  std::vector<uint64_t> all;
  for (ThreadResult& r : results) {
    all.insert(all.end(), r.samples_ns.begin(), r.samples_ns.end());
    out.responses += r.responses;
    out.non_2xx += r.non_2xx;
    out.function_errors += r.function_errors;
    out.socket_errors += r.socket_errors;
    if (out.first_status_line.empty()) out.first_status_line = r.first_status_line;
  }
  out.latency = summarize(all);
  return out;
}

}  // namespace kiln::bench
