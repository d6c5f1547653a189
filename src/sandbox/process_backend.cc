// The process backend: the runtime as a plain host child process, no isolation.
// For in-process tests of the worker; never for untrusted code.
#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/close_range.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "sandbox/sandbox.h"
#include "sandbox/unique_fd.h"

namespace kiln::sandbox {
namespace {

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  for (size_t pos = 0; (pos = s.find(from, pos)) != std::string::npos; pos += to.size()) {
    s.replace(pos, from.size(), to);
  }
  return s;
}

std::string to_host(std::string s, const SandboxSpec& spec) {
  s = replace_all(std::move(s), "/var/task", spec.code_dir.string());
  return replace_all(std::move(s), "/var/runtime", spec.runtime_dir.string());
}

Status errno_status(const std::string& what, int err) {
  return ServiceError(what + ": " + std::strerror(err));
}

// Binds a listening TCP socket on 127.0.0.1:0; returns it and its port.
StatusOr<std::pair<UniqueFd, uint16_t>> listen_loopback() {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return errno_status("socket", errno);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(fd.get(), 64) != 0 ||
      ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    return errno_status("runtime api socket", errno);
  }
  return std::make_pair(std::move(fd), ntohs(addr.sin_port));
}

class ProcessSandbox final : public Sandbox {
 public:
  ProcessSandbox(std::string id, pid_t pid, UniqueFd pidfd, UniqueFd api)
      : id_(std::move(id)), pid_(pid), pidfd_(std::move(pidfd)), api_(std::move(api)) {}
  ~ProcessSandbox() override { destroy(); }

  const std::string& id() const override { return id_; }
  int runtime_api_fd() const override { return api_.get(); }
  int exit_fd() const override { return pidfd_.get(); }
  pid_t host_pid() const override { return pid_; }
  uint64_t max_memory_bytes() const override { return 0; }
  bool out_of_memory() const override { return false; }

  void destroy() override {
    if (pid_ <= 0) return;
    // SAFETY: pid_ is our unreaped child and leads its own process group, so the
    // group id cannot have been reused.
    ::kill(-pid_, SIGKILL);
    while (::waitpid(pid_, nullptr, 0) < 0 && errno == EINTR) {
    }
    pid_ = -1;
    pidfd_.reset();
    api_.reset();
  }

 private:
  std::string id_;
  pid_t pid_;
  UniqueFd pidfd_;
  UniqueFd api_;
};

class ProcessBackend final : public SandboxBackend {
 public:
  const char* name() const override { return "process"; }

  StatusOr<std::unique_ptr<Sandbox>> create(const SandboxSpec& spec) override {
    if (!spec.pass_fds.empty() || spec.tmp_archive_fd >= 0) {
      return InvalidParameterValue("the process backend cannot restore snapshots (use the jail)");
    }
    if (spec.argv.empty()) return InvalidParameterValue("sandbox argv is empty");
    auto api = listen_loopback();
    if (!api.ok()) return api.status();
    const std::string api_addr = "127.0.0.1:" + std::to_string(api->second);

    // Everything the child needs is built here: after fork it only makes syscalls.
    std::vector<std::string> argv, env;
    for (const auto& a : spec.argv) argv.push_back(to_host(a, spec));
    bool api_set = false;
    for (const auto& e : spec.env) {
      if (e.rfind("AWS_LAMBDA_RUNTIME_API=", 0) == 0) {
        env.push_back("AWS_LAMBDA_RUNTIME_API=" + api_addr);
        api_set = true;
      } else {
        env.push_back(to_host(e, spec));
      }
    }
    if (!api_set) env.push_back("AWS_LAMBDA_RUNTIME_API=" + api_addr);
    std::vector<char*> argv_p, env_p;
    for (auto& a : argv) argv_p.push_back(a.data());
    for (auto& e : env) env_p.push_back(e.data());
    argv_p.push_back(nullptr);
    env_p.push_back(nullptr);
    const std::string cwd = spec.code_dir.string();

    int report[2];  // CLOEXEC pipe: EOF = exec succeeded, an int = errno of the failure
    if (::pipe2(report, O_CLOEXEC) != 0) return errno_status("pipe2", errno);
    UniqueFd report_r(report[0]), report_w(report[1]);

    pid_t pid = ::fork();
    if (pid < 0) return errno_status("fork", errno);
    if (pid == 0) {
      // SAFETY: the child of a possibly multithreaded parent: async-signal-safe calls only.
      ::setpgid(0, 0);
      int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
      if (spec.output_fd >= 0) {
        int out = ::fcntl(spec.output_fd, F_DUPFD_CLOEXEC, 3);
        ::dup2(out, 1);
        ::dup2(out, 2);
      }
      if (null_fd >= 0) ::dup2(null_fd, 0);
      ::close_range(3, ~0U, CLOSE_RANGE_CLOEXEC);  // the runtime inherits fds 0-2 only
      if (::chdir(cwd.c_str()) == 0) ::execve(argv_p[0], argv_p.data(), env_p.data());
      int err = errno;
      (void)!::write(report_w.get(), &err, sizeof err);
      ::_exit(127);
    }
    report_w.reset();
    // Also set the group from the parent so that destroy() never races the child's setpgid.
    ::setpgid(pid, pid);
    int err = 0;
    ssize_t n;
    while ((n = ::read(report_r.get(), &err, sizeof err)) < 0 && errno == EINTR) {
    }
    if (n > 0) {
      while (::waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
      }
      return Status(502, "Runtime.InvalidEntrypoint",
                    "cannot start " + spec.argv[0] + ": " + std::strerror(err));
    }
    // SAFETY: pid is our unreaped child, so the pid cannot have been reused.
    UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
    if (!pidfd.valid()) {
      int e = errno;
      ::kill(-pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
      return errno_status("pidfd_open", e);
    }
    return std::unique_ptr<Sandbox>(std::make_unique<ProcessSandbox>(
        spec.id, pid, std::move(pidfd), std::move(api->first)));
  }
};

}  // namespace

std::unique_ptr<SandboxBackend> make_process_backend() {
  return std::make_unique<ProcessBackend>();
}

}  // namespace kiln::sandbox
