#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/syscall.h>

#include "sandbox/sandbox.h"
#include "sandbox/test_util.h"

namespace kiln::sandbox {
namespace {

using testing::read_all;
using testing::TempDir;
using testing::wait_readable;
using testing::write_file;

struct Pipe {
  int r = -1, w = -1;
  Pipe() {
    int p[2];
    EXPECT_EQ(::pipe2(p, O_CLOEXEC), 0);
    r = p[0];
    w = p[1];
  }
  ~Pipe() {
    if (r >= 0) ::close(r);
    if (w >= 0) ::close(w);
  }
  void close_write() { ::close(w), w = -1; }
};

SandboxSpec spec_for(const TempDir& code, const TempDir& rt, int out_fd) {
  SandboxSpec s;
  s.id = "proc-test";
  s.tenant = "t1";
  s.code_dir = code.path();
  s.runtime_dir = rt.path();
  s.argv = {"/var/task/bootstrap", "/var/runtime/x"};
  s.env = {"PATH=/usr/bin:/bin", "AWS_LAMBDA_RUNTIME_API=127.0.0.1:9001",
           "LAMBDA_TASK_ROOT=/var/task"};
  s.output_fd = out_fd;
  return s;
}

uint16_t port_of(int fd) {
  sockaddr_in a{};
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  return ntohs(a.sin_port);
}

TEST(ProcessBackend, RewritesPathsAndApiAddressAndWritesToOutput) {
  TempDir code, rt;
  write_file(code.path() / "bootstrap",
             "#!/bin/sh\necho \"arg=$1 root=$LAMBDA_TASK_ROOT api=$AWS_LAMBDA_RUNTIME_API "
             "cwd=$(pwd)\"\necho err >&2\n",
             0755);
  Pipe out;
  auto backend = make_process_backend();
  auto sb = backend->create(spec_for(code, rt, out.w));
  ASSERT_TRUE(sb.ok()) << sb.status().message();
  out.close_write();
  ASSERT_TRUE(wait_readable((*sb)->exit_fd(), 10000));
  std::string port = std::to_string(port_of((*sb)->runtime_api_fd()));
  (*sb)->destroy();
  EXPECT_EQ(read_all(out.r), "arg=" + rt.path().string() + "/x root=" + code.path().string() +
                                 " api=127.0.0.1:" + port + " cwd=" + code.path().string() +
                                 "\nerr\n");
}

TEST(ProcessBackend, RuntimeConnectsToApiSocket) {
  TempDir code, rt;
  write_file(code.path() / "bootstrap",
             "#!/usr/bin/python3\nimport os, socket\n"
             "h, p = os.environ['AWS_LAMBDA_RUNTIME_API'].split(':')\n"
             "s = socket.create_connection((h, int(p)))\ns.sendall(b'hello')\ns.close()\n",
             0755);
  Pipe out;
  auto sb = make_process_backend()->create(spec_for(code, rt, out.w));
  ASSERT_TRUE(sb.ok()) << sb.status().message();
  ASSERT_TRUE(wait_readable((*sb)->runtime_api_fd(), 10000));
  int conn = ::accept4((*sb)->runtime_api_fd(), nullptr, nullptr, SOCK_CLOEXEC);
  ASSERT_GE(conn, 0);
  EXPECT_EQ(read_all(conn), "hello");
  ::close(conn);
  (*sb)->destroy();
}

TEST(ProcessBackend, DestroyKillsTheWholeProcessGroup) {
  TempDir code, rt;
  // The background sleeper reports its pid, then the bootstrap waits forever.
  write_file(code.path() / "bootstrap", "#!/bin/sh\nsleep 1000 &\necho $!\nwait\n", 0755);
  Pipe out;
  auto sb = make_process_backend()->create(spec_for(code, rt, out.w));
  ASSERT_TRUE(sb.ok()) << sb.status().message();
  out.close_write();
  ASSERT_TRUE(wait_readable(out.r, 10000));
  char buf[32] = {};
  ASSERT_GT(::read(out.r, buf, sizeof buf - 1), 0);
  pid_t sleeper = std::atoi(buf);
  ASSERT_GT(sleeper, 0);
  EXPECT_FALSE(wait_readable((*sb)->exit_fd(), 0));
  (*sb)->destroy();
  (*sb)->destroy();  // idempotent
  // The sleeper was reparented to init; its pidfd says whether it is gone.
  int pfd = static_cast<int>(::syscall(SYS_pidfd_open, sleeper, 0));
  if (pfd >= 0) {
    EXPECT_TRUE(wait_readable(pfd, 10000));
    ::close(pfd);
  }
}

TEST(ProcessBackend, MissingBootstrapFailsCreate) {
  TempDir code, rt;
  auto sb = make_process_backend()->create(spec_for(code, rt, -1));
  ASSERT_FALSE(sb.ok());
  EXPECT_EQ(sb.status().type(), "Runtime.InvalidEntrypoint");
}

TEST(ProcessBackend, EmptyArgvIsInvalid) {
  TempDir code, rt;
  auto spec = spec_for(code, rt, -1);
  spec.argv.clear();
  auto sb = make_process_backend()->create(spec);
  ASSERT_FALSE(sb.ok());
  EXPECT_EQ(sb.status().type(), "InvalidParameterValueException");
}

}  // namespace
}  // namespace kiln::sandbox
