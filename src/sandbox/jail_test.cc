// Runs real programs in jails and checks each isolation property from inside.
// Needs root (it creates namespaces, cgroups and mounts).
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
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

class JailTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    state_ = new TempDir();
    JailOptions o;
    o.state_dir = state_->path() / "sandboxes";
    o.cgroup_prefix = "kiln-test-" + std::to_string(::getpid());
    backend_ = make_jail_backend(o).release();
  }
  static void TearDownTestSuite() {
    delete backend_;
    delete state_;
  }

  SandboxSpec spec(const std::string& script) {
    SandboxSpec s;
    s.id = "t-" + std::to_string(::getpid()) + "-" + std::to_string(next_id_++);
    s.tenant = "tenant-a";
    s.code_dir = code_.path();
    s.runtime_dir = runtime_.path();
    s.argv = {"/bin/sh", "-c", script};
    s.env = {"PATH=/usr/bin:/bin", "AWS_LAMBDA_RUNTIME_API=127.0.0.1:9001"};
    return s;
  }

  // Runs spec to completion and returns what it wrote to stdout and stderr.
  std::string run(SandboxSpec s, std::unique_ptr<Sandbox>* keep = nullptr) {
    int p[2];
    EXPECT_EQ(::pipe2(p, O_CLOEXEC), 0);
    s.output_fd = p[1];
    auto sb = backend_->create(s);
    ::close(p[1]);
    if (!sb.ok()) {
      ::close(p[0]);
      return "create failed: " + sb.status().type() + ": " + sb.status().message();
    }
    std::string out = read_all(p[0]);
    ::close(p[0]);
    EXPECT_TRUE(wait_readable((*sb)->exit_fd(), 30000));
    if (keep) {
      *keep = std::move(*sb);
    } else {
      (*sb)->destroy();
    }
    return out;
  }
  std::string run(const std::string& script) { return run(spec(script)); }

  static TempDir* state_;
  static SandboxBackend* backend_;
  static int next_id_;
  TempDir code_, runtime_;
};
TempDir* JailTest::state_ = nullptr;
SandboxBackend* JailTest::backend_ = nullptr;
int JailTest::next_id_ = 0;

TEST_F(JailTest, Smoke) {
  std::cout << run("id; cat /proc/self/uid_map; ls -la /; ps ax 2>&1 || ls /proc; cat /proc/self/status | grep -i -E 'cap|seccomp|nonew'; mount 2>&1 | head -30; echo done") << std::endl;
}

}  // namespace
}  // namespace kiln::sandbox
