#include "snapshot/test_sandbox.h"

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <linux/capability.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstring>
#include <fstream>
#include <thread>

#ifndef KILN_RESTORE_STUB
#error "KILN_RESTORE_STUB must name the built kiln-restore"
#endif

namespace kiln::snapshot::testing {

namespace fs = std::filesystem;

std::filesystem::path stub_path() { return KILN_RESTORE_STUB; }

TestRoot TestRoot::make() {
  char tmpl[] = "/tmp/kiln-snap-XXXXXX";
  TestRoot r;
  r.base = ::mkdtemp(tmpl);
  r.root = r.base / "root";
  r.data = r.base / "data";
  r.images = r.base / "images";
  for (const char* d : {"usr", "etc", "dev", "proc", "snapdata", "tmp"}) fs::create_directories(r.root / d);
  fs::create_directories(r.data);
  fs::create_directories(r.images);
  fs::create_symlink("usr/lib", r.root / "lib");
  fs::create_symlink("usr/lib64", r.root / "lib64");
  fs::create_symlink("usr/bin", r.root / "bin");
  return r;
}

void TestRoot::remove() const {
  std::error_code ec;
  fs::remove_all(base, ec);
}

std::optional<std::string> Sandboxed::read_line(std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    size_t nl = pending.find('\n');
    if (nl != std::string::npos) {
      std::string line = pending.substr(0, nl);
      pending.erase(0, nl + 1);
      return line;
    }
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return std::nullopt;
    pollfd p{stdout_r.get(), POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
    char buf[4096];
    ssize_t n = ::read(stdout_r.get(), buf, sizeof(buf));
    if (n <= 0) return std::nullopt;
    pending.append(buf, static_cast<size_t>(n));
  }
}

bool Sandboxed::send(const std::string& s) {
  return ::write(stdin_w.get(), s.data(), s.size()) == static_cast<ssize_t>(s.size());
}

void Sandboxed::kill_and_reap() {
  if (pid <= 0) return;
  ::kill(pid, SIGKILL);
  int st;
  ::waitpid(pid, &st, 0);
  pid = -1;
}

namespace {

struct ChildPlan {
  std::string root, data, usr, etc, dev;
  int in_r, out_w;
  int fds[3] = {-1, -1, -1};  // plan, pages, ready -> 3, 4, 5 (stub only)
  int exec_fd = -1;           // stub: fexecve
  bool eager = false;
  std::vector<std::string> argv;
};

[[noreturn]] void child(const ChildPlan& p) {
  auto at = [&](const char* d) { return p.root + d; };
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0 ||
      ::mount("/usr", at("/usr").c_str(), nullptr, MS_BIND | MS_REC, nullptr) != 0 ||
      ::mount("/etc", at("/etc").c_str(), nullptr, MS_BIND | MS_REC, nullptr) != 0 ||
      ::mount("/dev", at("/dev").c_str(), nullptr, MS_BIND | MS_REC, nullptr) != 0 ||
      ::mount(p.data.c_str(), at("/snapdata").c_str(), nullptr, MS_BIND, nullptr) != 0 ||
      ::mount("proc", at("/proc").c_str(), "proc", 0, nullptr) != 0 || ::chroot(p.root.c_str()) != 0 ||
      ::chdir("/snapdata") != 0) {
    ::_exit(90);
  }
  ::dup2(p.in_r, 0);
  ::dup2(p.out_w, 1);
  ::dup2(p.out_w, 2);
  if (p.exec_fd >= 0) {
    // Move the image fds to 3, 4, 5 without clobbering one another.
    int tmp[3];
    for (int i = 0; i < 3; ++i) tmp[i] = ::fcntl(p.fds[i], F_DUPFD_CLOEXEC, 100);
    for (int i = 0; i < 3; ++i) ::dup2(tmp[i], 3 + i);
    int exe = ::fcntl(p.exec_fd, F_DUPFD_CLOEXEC, 100);  // the stub closes every other fd itself
    // As in Kiln's jail: the stub runs with no capabilities at all (and no new privileges).
    __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
    __user_cap_data_struct none[2] = {};
    if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 || ::syscall(SYS_capset, &hdr, none) != 0) ::_exit(93);
    char* argv[] = {const_cast<char*>("kiln-restore"), p.eager ? const_cast<char*>("--eager") : nullptr, nullptr};
    char* envp[] = {nullptr};
    ::fexecve(exe, argv, envp);
    ::_exit(91);
  }
  ::syscall(SYS_close_range, 3, ~0u, 0);
  std::vector<char*> argv;
  for (const std::string& a : p.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  char* envp[] = {const_cast<char*>("PATH=/usr/bin"), const_cast<char*>("HOME=/tmp"), nullptr};
  ::execve(argv[0], argv.data(), envp);
  ::_exit(92);
}

Sandboxed spawn(ChildPlan& p, const TestRoot& r) {
  int in[2], out[2];
  ::pipe2(in, O_CLOEXEC);
  ::pipe2(out, O_CLOEXEC);
  p.root = r.root.string();
  p.data = r.data.string();
  p.in_r = in[0];
  p.out_w = out[1];
  Sandboxed s;
  s.pid = static_cast<pid_t>(::syscall(SYS_clone, CLONE_NEWPID | CLONE_NEWNS | SIGCHLD, 0, 0, 0, 0));
  if (s.pid == 0) child(p);
  ::close(in[0]);
  ::close(out[1]);
  s.stdin_w.reset(in[1]);
  s.stdout_r.reset(out[0]);
  return s;
}

}  // namespace

Sandboxed start_process(const TestRoot& r, const std::vector<std::string>& argv) {
  ChildPlan p;
  p.argv = argv;
  return spawn(p, r);
}

Sandboxed start_stub(const TestRoot& r, RestoreFds& fds, bool eager) {
  UniqueFd exe(::open(stub_path().c_str(), O_RDONLY | O_CLOEXEC));
  ChildPlan p;
  p.fds[0] = fds.plan.get();
  p.fds[1] = fds.pages.get();
  p.fds[2] = fds.ready_write.get();
  p.exec_fd = exe.get();
  p.eager = eager;
  Sandboxed s = spawn(p, r);
  fds.plan.reset();
  fds.pages.reset();
  fds.ready_write.reset();
  return s;
}

Status restore_into(const TestRoot& r, const std::filesystem::path& image, std::string_view replay, Sandboxed& out,
                    bool eager) {
  auto fds = open_image(image);
  if (!fds.ok()) return fds.status();
  out = start_stub(r, *fds, eager);
  Status s = complete_restore(out.pid, image, replay, fds->ready_read.get());
  if (!s.ok()) {
    int st;
    ::kill(out.pid, SIGKILL);
    ::waitpid(out.pid, &st, 0);
    out.pid = -1;
  }
  return s;
}

TestApi TestApi::make() {
  TestApi api;
  api.listener.reset(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(api.listener.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a));
  ::listen(api.listener.get(), 256);
  socklen_t len = sizeof(a);
  ::getsockname(api.listener.get(), reinterpret_cast<sockaddr*>(&a), &len);
  api.port = ntohs(a.sin_port);
  return api;
}

UniqueFd TestApi::accept_one(std::chrono::milliseconds timeout) {
  pollfd p{listener.get(), POLLIN, 0};
  if (::poll(&p, 1, static_cast<int>(timeout.count())) <= 0) return UniqueFd();
  return UniqueFd(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
}

std::optional<std::string> TestApi::read_request(int fd, std::chrono::milliseconds timeout) {
  std::string buf;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  size_t need = std::string::npos;
  for (;;) {
    size_t head_end = buf.find("\r\n\r\n");
    if (head_end != std::string::npos && need == std::string::npos) {
      size_t cl = buf.find("Content-Length: ");
      size_t body = cl != std::string::npos && cl < head_end ? std::stoul(buf.substr(cl + 16)) : 0;
      need = head_end + 4 + body;
    }
    if (need != std::string::npos && buf.size() >= need) return buf;
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    pollfd p{fd, POLLIN, 0};
    if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) <= 0) return std::nullopt;
    char tmp[65536];
    ssize_t n = ::read(fd, tmp, sizeof(tmp));
    if (n <= 0) return std::nullopt;
    buf.append(tmp, static_cast<size_t>(n));
  }
}

bool TestApi::respond(int fd, int status, const std::string& body) {
  std::string r = "HTTP/1.1 " + std::to_string(status) + " OK\r\nContent-Type: application/json\r\nContent-Length: " +
                  std::to_string(body.size()) + "\r\n\r\n" + body;
  return ::write(fd, r.data(), r.size()) == static_cast<ssize_t>(r.size());
}

bool wait_in_syscall(pid_t pid, long nr, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  const std::string want = std::to_string(nr) + " ";
  while (std::chrono::steady_clock::now() < deadline) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/syscall");
    std::string line;
    std::getline(in, line);
    if (line.rfind(want, 0) == 0) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return false;
}

}  // namespace kiln::snapshot::testing
