// Runs real programs in jails and checks each isolation property from inside.
// Needs root (it creates namespaces, cgroups and mounts).
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <netinet/in.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/syscall.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <chrono>
#include <thread>

#include <algorithm>
#include <sys/wait.h>

#include "sandbox/cgroup.h"
#include "sandbox/sandbox.h"
#include "sandbox/test_util.h"
#include "sandbox/tmp_archive.h"
#include "sandbox/unique_fd.h"

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
    o.cgroup_prefix = "kiln-test";
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


// Counts host processes whose command line contains marker.
int host_processes_with(const std::string& marker) {
  int n = 0;
  for (const auto& e : std::filesystem::directory_iterator("/proc")) {
    std::string name = e.path().filename();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream in(e.path() / "cmdline");
    std::string cmd((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (cmd.find(marker) != std::string::npos) ++n;
  }
  return n;
}

std::string python(const std::string& code) { return "/usr/bin/python3 -c '" + code + "' 2>&1"; }

TEST_F(JailTest, RootInsideMapsToTenantUidWithNoCapabilities) {
  std::string out = run(
      "cat /proc/self/uid_map /proc/self/gid_map; id -u; grep -E '^(Cap|NoNewPrivs|Seccomp:)' "
      "/proc/self/status");
  EXPECT_NE(out.find("0     200000          1\n         0     200000          1\n0\n"),
            std::string::npos) << out;
  for (const char* cap : {"CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"}) {
    EXPECT_NE(out.find(std::string(cap) + ":\t0000000000000000"), std::string::npos) << out;
  }
  EXPECT_NE(out.find("NoNewPrivs:\t1"), std::string::npos) << out;
  EXPECT_NE(out.find("Seccomp:\t2"), std::string::npos) << out;
}

TEST_F(JailTest, DifferentTenantsGetDifferentHostUids) {
  auto a = spec("read inside host count < /proc/self/uid_map; echo $host");
  auto b = a, a2 = a;
  b.tenant = "tenant-b";
  b.id += "-b";
  a2.id += "-a2";
  std::string ua = run(a), ub = run(b), ua2 = run(a2);
  EXPECT_EQ(ua, "200000\n");
  EXPECT_EQ(ua2, ua);
  EXPECT_NE(ub, ua);
  EXPECT_EQ(ub.rfind("2000", 0), 0u) << ub;
}

TEST_F(JailTest, SeesOnlyItsOwnProcesses) {
  // Shell builtins only, so the one process alive is the shell itself (pid 1).
  EXPECT_EQ(run("for p in /proc/[0-9]*; do echo ${p#/proc/}; done"), "1\n");
  EXPECT_EQ(run("ps -e -o pid= | wc -l"), "3\n");  // sh, ps and wc
}

TEST_F(JailTest, CodeRuntimeAndRootAreReadOnly) {
  write_file(code_.path() / "handler.py", "x = 1\n", 0644);
  write_file(runtime_.path() / "bootstrap", "rt\n", 0644);
  std::string out = run(
      "cat /var/task/handler.py /var/runtime/bootstrap; pwd;"
      "for f in /var/task/new /var/runtime/new /new /usr/new /etc/new /dev/new; do "
      "  (echo x > $f) 2>/dev/null && echo WROTE $f; done; echo end");
  EXPECT_EQ(out, "x = 1\nrt\n/var/task\nend\n");
}

TEST_F(JailTest, TmpIsPrivateWritableAndCapped) {
  auto s = spec(
      "echo hi > /tmp/a && cat /tmp/a; head -c 1500000 /dev/zero > /tmp/b && echo b-ok;"
      "head -c 1500000 /dev/zero > /tmp/c 2>/dev/null || echo c-full; ls /tmp");
  s.ephemeral_mb = 2;
  EXPECT_EQ(run(s), "hi\nb-ok\nc-full\na\nb\nc\n");
  // The next sandbox starts with an empty /tmp.
  EXPECT_EQ(run("ls -A /tmp; echo end"), "end\n");
}

TEST_F(JailTest, CannotSeeHostFiles) {
  TempDir host;
  write_file(host.path() / "secret", "s3cret\n", 0644);
  std::string out = run("cat " + (host.path() / "secret").string() + " 2>&1; ls " +
                        state_->path().string() + " /work /root /home /sys 2>&1 | wc -l; ls /etc");
  EXPECT_EQ(out.find("s3cret"), std::string::npos) << out;
  EXPECT_NE(out.find("No such file"), std::string::npos) << out;
  EXPECT_NE(out.find("\n5\n"), std::string::npos) << out;  // five "cannot access" lines
  EXPECT_NE(out.find("passwd"), std::string::npos) << out;
  EXPECT_EQ(run("cut -d: -f1 /etc/passwd"), "root\nnobody\n");
}

TEST_F(JailTest, MountIsRefused) {
  EXPECT_EQ(run(python("import ctypes; c = ctypes.CDLL(None, use_errno=True); "
                       "print(c.mount(b\"none\", b\"/tmp\", b\"tmpfs\", 0, None), ctypes.get_errno(), "
                       "c.umount2(b\"/proc\", 2), ctypes.get_errno())")),
            "-1 1 -1 1\n");
}

TEST_F(JailTest, PtraceUnshareAndBpfAreRefused) {
  EXPECT_EQ(run(python("import ctypes, os; c = ctypes.CDLL(None, use_errno=True); "
                       "r = [c.ptrace(0, 0, 0, 0), ctypes.get_errno(), c.unshare(0x10000000), "
                       "ctypes.get_errno(), c.syscall(321, 0, 0, 0), ctypes.get_errno(), "
                       "c.syscall(425, 8, 0), ctypes.get_errno()]; print(r)")),
            "[-1, 1, -1, 1, -1, 1, -1, 1]\n");
}

TEST_F(JailTest, RawAndPacketSocketsAreRefused) {
  EXPECT_EQ(run(python("import socket\n"
                       "for fam, typ in [(socket.AF_INET, socket.SOCK_RAW), (socket.AF_PACKET, "
                       "socket.SOCK_DGRAM), (socket.AF_INET6, socket.SOCK_RAW)]:\n"
                       "  try: socket.socket(fam, typ, 1); print(\"open\")\n"
                       "  except OSError as e: print(e.errno)")),
            "1\n97\n1\n");  // AF_PACKET: EAFNOSUPPORT (not on the allow list)
}

// Address families are an allow list: AF_VSOCK's ports are VM-wide (not namespaced),
// and every other family but unix and inet is kernel surface no runtime needs.
TEST_F(JailTest, OnlyUnixAndInetAddressFamiliesOpen) {
  EXPECT_EQ(run(python("import ctypes\n"
                       "c = ctypes.CDLL(None, use_errno=True)\n"
                       "def errno(r): return ctypes.get_errno() if r < 0 else \"open\"\n"
                       // AF_VSOCK, AF_PACKET, AF_ALG, AF_NETLINK, AF_XDP, AF_KEY, AF_TIPC,
                       // AF_CAN, AF_UNSPEC, AF_MCTP and beyond AF_MAX
                       "for fam, typ in [(40, 1), (17, 2), (38, 5), (16, 2), (44, 2), (15, 2), "
                       "(30, 2), (29, 2), (0, 1), (45, 2), (60, 1)]:\n"
                       "  print(fam, errno(c.socket(fam, typ, 0)))\n"
                       // the domain's high bits do not sneak AF_VSOCK past the filter
                       "print(\"hi\", errno(c.syscall(41, (1 << 32) | 40, 1, 0)))\n"
                       "fds = (ctypes.c_int * 2)()\n"
                       "print(\"pair\", errno(c.socketpair(40, 1, 0, fds)), errno(c.socketpair(1, 1, 0, fds)))\n"
                       "print(\"ok\", [errno(c.socket(f, 1, 0)) for f in (1, 2, 10)])")),
            "40 97\n17 97\n38 97\n16 97\n44 97\n15 97\n30 97\n29 97\n0 97\n45 97\n60 97\n"
            "hi 97\npair 97 open\nok ['open', 'open', 'open']\n");
}

// A lock taken inside on a file shared with the host or other tenants (code shared by
// content, the skeleton's /etc, the host's /usr) locks the sandbox's own overlay inode:
// neither the host nor another tenant's sandbox waits for it.
TEST_F(JailTest, LocksOnSharedFilesDoNotBlockTheHostOrOtherTenants) {
  write_file(code_.path() / "shared.txt", "shared\n", 0644);
  const std::vector<std::pair<std::string, std::filesystem::path>> files = {
      {"/var/task/shared.txt", code_.path() / "shared.txt"},
      {"/etc/passwd", state_->path() / "sandboxes/rootfs/etc/passwd"},
      {"/usr/bin/env", "/usr/bin/env"}};
  std::string paths;
  for (const auto& f : files) paths += "\"" + f.first + "\", ";
  int p[2];
  ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
  auto holder = spec(python("import fcntl, time\n"
                            "held = [open(f) for f in (" + paths + ")]\n"
                            "for f in held: fcntl.flock(f, fcntl.LOCK_EX)\n"
                            "print(\"locked\", flush=True)\n"
                            "time.sleep(1000)"));
  holder.output_fd = p[1];
  auto sb = backend_->create(holder);
  ::close(p[1]);
  ASSERT_TRUE(sb.ok()) << sb.status().message();
  std::string out;
  char buf[256];
  ssize_t n;
  while (out.find("\n") == std::string::npos && (n = ::read(p[0], buf, sizeof buf)) > 0) out.append(buf, n);
  ::close(p[0]);
  ASSERT_EQ(out, "locked\n");
  for (const auto& f : files) {
    int fd = ::open(f.second.c_str(), O_RDONLY | O_CLOEXEC);
    ASSERT_GE(fd, 0) << f.second;
    EXPECT_EQ(::flock(fd, LOCK_EX | LOCK_NB), 0) << "the host waits for a sandbox's lock on " << f.second;
    ::close(fd);
  }
  auto other = spec(python("import fcntl\n"
                           "for name in (" + paths + "):\n"
                           "  try: fcntl.flock(open(name), fcntl.LOCK_EX | fcntl.LOCK_NB); print(\"free\")\n"
                           "  except OSError as e: print(name, e.errno)"));
  other.tenant = "tenant-b";
  EXPECT_EQ(run(other), "free\nfree\nfree\n");
  (*sb)->destroy();
}

// The mount table inside names no host path: not the state dir (the skeleton), the
// code, the runtime or a layer (binds would show their host paths as the mount's root,
// overlays their lowerdir).
TEST_F(JailTest, MountTableNamesNoHostPath) {
  TempDir layer;
  write_file(layer.path() / "lib/x", "x\n", 0644);
  auto s = spec("cat /proc/self/mountinfo /proc/1/mountinfo /proc/self/mounts; cat /opt/lib/x");
  s.layer_dirs = {layer.path()};
  std::string out = run(s);
  EXPECT_NE(out.find(" /var/task "), std::string::npos) << out;
  EXPECT_NE(out.find("x\n"), std::string::npos) << out;
  for (const std::string& host : {state_->path().string(), code_.path().string(),
                                  runtime_.path().string(), layer.path().string(),
                                  std::string("/tmp/kiln-sandbox-test-")}) {
    EXPECT_EQ(out.find(host), std::string::npos) << host << " in\n" << out;
  }
}

// Socket buffers count against the sandbox's memory: on cgroup v1 they are outside
// memory.limit_in_bytes unless memory.kmem.tcp.limit_in_bytes is set, and a 128 MB
// sandbox could pin the host's whole tcp_mem (2.2 GB here) in loopback queues. 32
// connections that are never read can queue ~400 MB unlimited; limited, at most the
// 128 MB of the function (in skb truesize, so less in payload).
TEST_F(JailTest, SocketBuffersAreBoundedByTheMemoryLimit) {
  auto s = spec(python("import socket\n"
                       "total = 0\n"
                       "l = socket.socket()\n"
                       "l.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)\n"
                       "l.bind((\"127.0.0.1\", 0)); l.listen(64)\n"
                       "keep = []\n"
                       "chunk = b\"x\" * 65536\n"
                       "for i in range(32):\n"
                       "  a = socket.socket()\n"
                       "  a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)\n"
                       "  a.connect(l.getsockname()); b, _ = l.accept(); a.setblocking(False)\n"
                       "  while True:\n"
                       "    try: total += a.send(chunk)\n"
                       "    except BlockingIOError: break\n"
                       "  keep.append((a, b))\n"
                       "print(total >> 20)"));
  s.memory_mb = 128;
  std::string out = run(s);
  ASSERT_FALSE(out.empty());
  ASSERT_NE(out.find_first_of("0123456789"), std::string::npos) << out;
  std::cerr << out;
  EXPECT_LE(std::stoul(out), 128u) << "MiB queued in socket buffers by a 128 MB sandbox";
}


TEST_F(JailTest, OwnLoopbackOnlyAndRuntimeApiReachesKiln) {
  // A listener on the host's loopback that the sandbox must not reach.
  int host = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  ASSERT_EQ(::bind(host, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(host, 1), 0);
  ::getsockname(host, reinterpret_cast<sockaddr*>(&addr), &len);
  const std::string port = std::to_string(ntohs(addr.sin_port));
  int p[2];
  ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
  auto s = spec(python("import os, socket\n"
                       "try: socket.create_connection((\"127.0.0.1\", " + port + "), 2); print(\"reached host\")\n"
                       "except OSError as e: print(\"host\", e.errno)\n"
                       "print(os.environ[\"AWS_LAMBDA_RUNTIME_API\"], open(\"/proc/net/dev\").read().count(\":\"))\n"
                       "c = socket.create_connection((\"127.0.0.1\", 9001)); c.sendall(b\"hello\"); c.close()"));
  s.output_fd = p[1];
  auto sb = backend_->create(s);
  ::close(p[1]);
  ASSERT_TRUE(sb.ok()) << sb.status().message();
  ASSERT_TRUE(wait_readable((*sb)->runtime_api_fd(), 30000));
  int conn = ::accept4((*sb)->runtime_api_fd(), nullptr, nullptr, SOCK_CLOEXEC);
  ASSERT_GE(conn, 0);
  EXPECT_EQ(read_all(conn), "hello");
  ::close(conn);
  EXPECT_EQ(read_all(p[0]), "host 111\n127.0.0.1:9001 1\n");  // refused; lo is the only device
  ::close(p[0]);
  ::close(host);
  (*sb)->destroy();
}

TEST_F(JailTest, MemoryLimitKillsAnAllocator) {
  auto s = spec(python("import time\nb = bytearray(b\"x\") * (256 << 20)\nprint(\"survived\")"));
  s.memory_mb = 64;
  std::unique_ptr<Sandbox> sb;
  std::string out = run(s, &sb);
  ASSERT_TRUE(sb);
  EXPECT_EQ(out.find("survived"), std::string::npos) << out;
  EXPECT_TRUE(sb->out_of_memory());
  EXPECT_GT(sb->max_memory_bytes(), 32ull << 20);
  EXPECT_LE(sb->max_memory_bytes(), 64ull << 20);
  sb->destroy();
  EXPECT_TRUE(sb->out_of_memory());  // still known after destroy
  EXPECT_GT(sb->max_memory_bytes(), 32ull << 20);
}

TEST_F(JailTest, WithinLimitIsNotOutOfMemory) {
  std::unique_ptr<Sandbox> sb;
  EXPECT_EQ(run(spec(python("b = bytearray(b\"x\") * (8 << 20); print(len(b))")), &sb), "8388608\n");
  EXPECT_FALSE(sb->out_of_memory());
  EXPECT_GT(sb->max_memory_bytes(), 8ull << 20);
}

// Peak memory is read for every invoke's REPORT line: from a file the cgroup keeps
// open, not by path (an openat through cgroupfs per invoke was ~10% of kiln serve).
TEST_F(JailTest, PeakMemoryIsReadFromAFileHeldOpen) {
  const auto peak_files_open = [] {
    int n = 0;
    for (const auto& e : std::filesystem::directory_iterator("/proc/self/fd")) {
      std::error_code ec;
      std::string target = std::filesystem::read_symlink(e.path(), ec).string();
      if (target.ends_with("/memory.peak") || target.ends_with("/memory.max_usage_in_bytes")) n++;
    }
    return n;
  };
  const int before = peak_files_open();
  std::unique_ptr<Sandbox> sb;
  EXPECT_EQ(run(spec(python("b = bytearray(b\"x\") * (8 << 20); print(len(b))")), &sb), "8388608\n");
  EXPECT_EQ(peak_files_open(), before + 1);
  const uint64_t peak = sb->max_memory_bytes();
  EXPECT_GT(peak, 8ull << 20);
  EXPECT_EQ(sb->max_memory_bytes(), peak);  // read again from the same file
}

TEST_F(JailTest, ForkBombStaysInsideThePidsLimit) {
  JailOptions o;
  o.state_dir = state_->path() / "sandboxes";
  o.cgroup_prefix = "kiln-test-pids";
  o.pids_max = 40;
  auto small = make_jail_backend(o);
  int p[2];
  ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
  auto s = spec(python("import os, time\nn = 0\ntry:\n  while n < 1000:\n    if os.fork() == 0:\n"
                       "      time.sleep(1000); os._exit(0)\n    n += 1\n"
                       "except OSError as e: print(\"stopped\", e.errno, n < 40)\n"));
  s.output_fd = p[1];
  auto sb = small->create(s);
  ::close(p[1]);
  ASSERT_TRUE(sb.ok()) << sb.status().message();
  EXPECT_EQ(read_all(p[0]), "stopped 11 True\n");  // EAGAIN: 40 tasks at most
  ::close(p[0]);
  (*sb)->destroy();
}

TEST_F(JailTest, DestroyKillsBackgroundProcesses) {
  int p[2];
  ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
  auto s = spec("sleep 7654321 & sleep 7654321 & echo started; exec sleep 7654321");
  s.output_fd = p[1];
  auto sb = backend_->create(s);
  ::close(p[1]);
  ASSERT_TRUE(sb.ok()) << sb.status().message();
  char buf[16] = {};
  ASSERT_GT(::read(p[0], buf, sizeof buf), 0);
  ::close(p[0]);
  // The three exist once "started" is out, but a process's cmdline reads empty while it
  // execs: wait (bounded) until all three show the marker.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (host_processes_with("7654321") != 3 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::yield();
  }
  EXPECT_EQ(host_processes_with("7654321"), 3);
  (*sb)->destroy();
  EXPECT_EQ(host_processes_with("7654321"), 0);
}

TEST_F(JailTest, RunsPythonNodeAndStaticPrograms) {
  EXPECT_EQ(run(python("import json, ssl, subprocess, threading, multiprocessing; print(json.dumps([1]), "
                       "subprocess.check_output([\"/bin/echo\", \"sub\"]).decode().strip())")),
            "[1] sub\n");
  if (std::filesystem::exists("/usr/bin/node")) {
    EXPECT_EQ(run("/usr/bin/node -e 'require(\"http\"); console.log(require(\"os\").hostname(), 1+1)' 2>&1"),
              "localhost 2\n");
  }
  EXPECT_EQ(run("/bin/busybox true 2>/dev/null; echo $?; ls /proc/self/fd | wc -l"), "127\n4\n");
}

TEST_F(JailTest, LaterLayersWinAtOpt) {
  TempDir l1, l2;
  write_file(l1.path() / "lib/a", "one\n", 0644);
  write_file(l1.path() / "lib/only1", "only1\n", 0644);
  write_file(l2.path() / "lib/a", "two\n", 0644);
  auto s = spec("cat /opt/lib/a /opt/lib/only1; touch /opt/x 2>/dev/null || echo ro");
  s.layer_dirs = {l1.path(), l2.path()};
  EXPECT_EQ(run(s), "two\nonly1\nro\n");
  s.id += "-one";
  s.layer_dirs = {l1.path()};
  EXPECT_EQ(run(s), "one\nonly1\nro\n");
}

TEST_F(JailTest, DevicesWorkAndLandlockFencesProc) {
  EXPECT_EQ(run("echo x > /dev/null && head -c 4 /dev/urandom | wc -c; head -c 2 /dev/zero | wc -c; "
                // Both writes are allowed to a process on its own /proc entries; Landlock
                // (read-only outside /tmp and the devices) refuses them.
                "(echo 1000 > /proc/self/oom_score_adj) 2>/dev/null && echo oom-writable;"
                "(echo renamed > /proc/self/comm) 2>/dev/null && echo comm-writable"),
            "4\n2\n");
}

TEST_F(JailTest, MissingEntrypointIsInvalidEntrypoint) {
  auto s = spec("");
  s.argv = {"/var/task/bootstrap"};
  auto sb = backend_->create(s);
  ASSERT_FALSE(sb.ok());
  EXPECT_EQ(sb.status().type(), "Runtime.InvalidEntrypoint");
}

TEST_F(JailTest, UserNamespaceIsTheSandboxsOwnAndCannotRegainGroups) {
  // The shell mapped itself: one line each, and setgroups refused for good.
  EXPECT_EQ(run("cat /proc/self/setgroups; wc -l < /proc/self/uid_map; wc -l < /proc/self/gid_map"),
            "deny\n1\n1\n");
}

TEST_F(JailTest, WithoutAPoolEveryCreateStartsItsOwnShell) {
  JailOptions o;
  o.state_dir = state_->path() / "sandboxes";
  o.cgroup_prefix = "kiln-test-nopool";
  o.pool_size = 0;
  auto unpooled = make_jail_backend(o);
  for (int i = 0; i < 3; ++i) {
    int p[2];
    ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
    auto s = spec("echo $$ > /tmp/mine; ls /tmp; id -u");
    s.output_fd = p[1];
    auto sb = unpooled->create(s);
    ::close(p[1]);
    ASSERT_TRUE(sb.ok()) << sb.status().message();
    EXPECT_EQ(read_all(p[0]), "mine\n0\n");
    ::close(p[0]);
    (*sb)->destroy();
  }
}

// The zygote is our child in our own mount namespace (shells and sandboxes have theirs).
std::vector<pid_t> zygotes() {
  std::vector<pid_t> found;
  const auto own_ns = std::filesystem::read_symlink("/proc/self/ns/mnt");
  for (const auto& e : std::filesystem::directory_iterator("/proc")) {
    std::string name = e.path().filename();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream status(e.path() / "status");
    std::string line;
    pid_t ppid = 0;
    while (std::getline(status, line)) {
      if (line.rfind("PPid:", 0) == 0) ppid = std::atoi(line.c_str() + 5);
    }
    std::error_code ec;
    if (ppid == ::getpid() && std::filesystem::read_symlink(e.path() / "ns/mnt", ec) == own_ns) {
      found.push_back(std::atoi(name.c_str()));
    }
  }
  return found;
}

TEST_F(JailTest, ShellsComeFromKilnItselfWithoutOrAfterTheZygote) {
  for (bool kill_zygote : {false, true}) {
    JailOptions o;
    o.state_dir = state_->path() / "sandboxes";
    o.cgroup_prefix = "kiln-test-zygote";
    o.pool_size = 0;
    o.use_zygote = kill_zygote;  // without one, or with one that dies
    const size_t before = zygotes().size();
    auto backend = make_jail_backend(o);
    if (kill_zygote) {
      auto now = zygotes();
      ASSERT_EQ(now.size(), before + 1);
      ::kill(now.back(), SIGKILL);
    }
    int p[2];
    ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
    auto s = spec("echo ok; ls -A /tmp");
    s.output_fd = p[1];
    auto sb = backend->create(s);
    ::close(p[1]);
    ASSERT_TRUE(sb.ok()) << sb.status().message();
    EXPECT_EQ(read_all(p[0]), "ok\n");
    ::close(p[0]);
    (*sb)->destroy();
  }
}

TEST_F(JailTest, CgroupTakesTheSandboxIdAndShellsHoldNoTenantMounts) {
  int p[2];
  ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
  auto s = spec("cat /proc/self/cgroup; echo started; exec sleep 1000");
  s.output_fd = p[1];
  auto sb = backend_->create(s);
  ::close(p[1]);
  ASSERT_TRUE(sb.ok()) << sb.status().message();
  char buf[4096] = {};
  std::string out;
  while (out.find("started") == std::string::npos) {
    ssize_t n = ::read(p[0], buf, sizeof buf);
    ASSERT_GT(n, 0);
    out.append(buf, n);
  }
  ::close(p[0]);
  EXPECT_NE(out.find("memory:/\n"), std::string::npos) << out;  // its cgroup namespace's root
  auto layout = CgroupLayout::detect("/sys/fs/cgroup", [] {
    std::ifstream in("/proc/self/cgroup");
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  }(), "kiln-test");
  ASSERT_TRUE(layout.ok());
  // <prefix>/<data dir tag>-<pid>.<start time>-<backend>/<cgroup>
  std::vector<std::filesystem::path> cgroups;
  for (const auto& instance : std::filesystem::directory_iterator(layout->bases()[0])) {
    if (!instance.is_directory()) continue;
    for (const auto& e : std::filesystem::directory_iterator(instance.path())) {
      if (e.is_directory()) cgroups.push_back(e.path());
    }
  }
  if (!layout->v2()) {
    EXPECT_EQ(std::count_if(cgroups.begin(), cgroups.end(),
                            [&](const auto& c) { return c.filename() == s.id; }), 1);
  }
  // A waiting shell's mount table: the skeleton, devices and /proc only; no tenant's
  // directories and no /tmp until it is activated. "Waiting" = blocked in recvmsg (47):
  // a shell that the pool just started may still be building its root.
  size_t waiting = 0;
  for (const auto& e : cgroups) {
    if (e.filename().string().rfind("shell-", 0) != 0) continue;
    std::ifstream procs(e / "cgroup.procs");
    std::string pid, syscall_nr;
    if (!(procs >> pid)) continue;
    std::ifstream("/proc/" + pid + "/syscall") >> syscall_nr;
    if (syscall_nr != "47") continue;
    ++waiting;
    std::ifstream mounts("/proc/" + pid + "/mountinfo");
    std::string table((std::istreambuf_iterator<char>(mounts)), std::istreambuf_iterator<char>());
    EXPECT_EQ(table.find(code_.path().string()), std::string::npos) << table;
    EXPECT_EQ(table.find(" /var/task "), std::string::npos) << table;
    EXPECT_EQ(table.find(" /tmp "), std::string::npos) << table;
    EXPECT_NE(table.find(" /proc "), std::string::npos) << table;
  }
  EXPECT_GT(waiting, 0u);
  (*sb)->destroy();
}

// Starts `sleep 1000` in the cgroup dirs (one per hierarchy); returns its pid.
pid_t sleeper_in(const std::vector<std::filesystem::path>& dirs) {
  pid_t pid = ::fork();
  if (pid == 0) {
    ::execl("/bin/sleep", "sleep", "1000", static_cast<char*>(nullptr));
    ::_exit(127);
  }
  for (const auto& d : dirs) std::ofstream(d / "cgroup.procs") << pid;
  return pid;
}

// At start a backend empties and removes every cgroup that a gone Kiln left for its
// data directory, sandboxes included (their processes are killed), and nothing of a
// live Kiln or of another data directory.
TEST_F(JailTest, LeftoverCgroupsOfThisDataDirAreEmptiedAtStart) {
  auto layout = CgroupLayout::detect("/sys/fs/cgroup", [] {
    std::ifstream in("/proc/self/cgroup");
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  }(), "kiln-test-stale");
  ASSERT_TRUE(layout.ok()) << layout.status().message();
  const std::filesystem::path state = state_->path() / "sandboxes";
  const std::string tag = data_dir_tag(state);
  const std::string me = std::to_string(::getpid()) + "." + std::to_string(process_start_time(::getpid()));
  // pid 999999999 is above any pid_max: that Kiln is gone. So is our pid with another
  // start time (a recycled pid).
  const std::string gone = tag + "-999999999.5-0", recycled = tag + "-" + std::to_string(::getpid()) + ".1-0";
  const std::string alive = tag + "-" + me + "-99";
  const std::string other_dir = data_dir_tag(state_->path() / "elsewhere") + "-999999999.5-0";
  const std::string legacy_gone = "shell-999999999-0-0", legacy_alive = "shell-" + std::to_string(::getpid()) + "-99-0";
  std::vector<std::filesystem::path> sandbox_dirs, other_dirs;
  for (const auto& base : layout->bases()) {
    for (const std::string& d : {gone, recycled, alive, other_dir, legacy_gone, legacy_alive}) {
      ASSERT_EQ(::mkdir((base / d).c_str(), 0755), 0) << base / d;
    }
    for (const std::string& d : {gone, recycled, alive, other_dir}) {
      ASSERT_EQ(::mkdir((base / d / "sb-1").c_str(), 0755), 0);
    }
    sandbox_dirs.push_back(base / gone / "sb-1");
    other_dirs.push_back(base / other_dir / "sb-1");
  }
  const pid_t leftover = sleeper_in(sandbox_dirs), others = sleeper_in(other_dirs);
  {
    JailOptions o;
    o.state_dir = state;
    o.cgroup_prefix = "kiln-test-stale";
    o.pool_size = 1;
    auto backend = make_jail_backend(o);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(leftover, &status, 0), leftover);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << status;
  EXPECT_EQ(::waitpid(others, &status, WNOHANG), 0) << "another data dir's sandbox was killed";
  ::kill(others, SIGKILL);
  ::waitpid(others, &status, 0);
  for (const auto& base : layout->bases()) {
    EXPECT_FALSE(std::filesystem::exists(base / gone)) << base;
    EXPECT_FALSE(std::filesystem::exists(base / recycled)) << base;
    EXPECT_FALSE(std::filesystem::exists(base / legacy_gone)) << base;
    EXPECT_TRUE(std::filesystem::exists(base / alive / "sb-1")) << base;  // its Kiln still runs
    EXPECT_TRUE(std::filesystem::exists(base / other_dir / "sb-1")) << base;
    EXPECT_TRUE(std::filesystem::exists(base / legacy_alive)) << base;
    for (const std::string& d : {alive, other_dir}) {
      ::rmdir((base / d / "sb-1").c_str());
      ::rmdir((base / d).c_str());
    }
    ::rmdir((base / legacy_alive).c_str());
  }
}

TEST_F(JailTest, OversizedEnvironmentIsRefused) {
  auto s = spec("true");
  s.env.push_back("BIG=" + std::string(200 * 1024, 'x'));
  EXPECT_EQ(backend_->create(s).status().type(), "InvalidParameterValueException");
  EXPECT_EQ(run("echo still-serving"), "still-serving\n");  // the shell pool is intact
}

TEST_F(JailTest, BadSpecsAreRefused) {
  auto s = spec("true");
  s.id = "Bad/Id";
  EXPECT_EQ(backend_->create(s).status().type(), "InvalidParameterValueException");
  s = spec("true");
  s.argv = {"relative"};
  EXPECT_EQ(backend_->create(s).status().type(), "InvalidParameterValueException");
  s = spec("true");
  s.tenant.clear();
  EXPECT_EQ(backend_->create(s).status().type(), "InvalidParameterValueException");
  s = spec("true");
  s.code_dir = "/nonexistent-kiln";
  EXPECT_FALSE(backend_->create(s).ok());
}

size_t count_entries(const std::filesystem::path& dir, bool recursive) {
  size_t n = 0;
  std::error_code ec;
  if (recursive) {
    for (auto it = std::filesystem::recursive_directory_iterator(dir, ec);
         it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) ++n;
  } else {
    for (auto it = std::filesystem::directory_iterator(dir, ec);
         it != std::filesystem::directory_iterator(); it.increment(ec)) ++n;
  }
  return n;
}

size_t mount_count() {
  std::ifstream in("/proc/self/mountinfo");
  return std::count(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>(), '\n');
}

// Its own suite, so that no other backend (and no pool refilling in the background) is
// alive while it counts: a backend with a shell pool, 2,000 sandboxes and the backend's
// destruction must leave fds, mounts, cgroups, state files and child processes exactly
// as they were, and Kiln's own memory where it was (within the allocator's slack).
size_t resident_kib() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoul(line.substr(6));
  }
  return 0;
}

TEST(JailLeakTest, TwoThousandSandboxesLeaveNothingBehind) {
  TempDir state, code, runtime;
  auto layout = CgroupLayout::detect("/sys/fs/cgroup", [] {
    std::ifstream in("/proc/self/cgroup");
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  }(), "kiln-test-leaks");
  ASSERT_TRUE(layout.ok()) << layout.status().message();
  auto cgroup_dirs = [&] {
    size_t n = 0;
    for (const auto& b : layout->bases()) n += count_entries(b, false);
    return n;
  };
  JailOptions o;
  o.state_dir = state.path() / "sandboxes";
  o.cgroup_prefix = "kiln-test-leaks";
  o.pool_size = 4;
  make_jail_backend(o);  // warm up: the state dir's skeleton, lazily opened files
  const size_t fds = count_entries("/proc/self/fd", false), mounts = mount_count(),
               cgroups = cgroup_dirs(), files = count_entries(state.path(), true);
  size_t rss_after_first_hundred = 0;
  {
    auto backend = make_jail_backend(o);
    for (int i = 0; i < 2000; ++i) {
      if (i == 100) rss_after_first_hundred = resident_kib();
      SandboxSpec s;
      s.id = "leak-" + std::to_string(::getpid()) + "-" + std::to_string(i);
      s.tenant = i % 2 ? "tenant-a" : "tenant-b";
      s.code_dir = code.path();
      s.runtime_dir = runtime.path();
      s.argv = {"/bin/true"};
      auto sb = backend->create(s);
      ASSERT_TRUE(sb.ok()) << sb.status().message();
      ASSERT_TRUE(wait_readable((*sb)->exit_fd(), 30000));
      (*sb)->destroy();
    }
  }
  EXPECT_EQ(count_entries("/proc/self/fd", false), fds);
  EXPECT_EQ(mount_count(), mounts);
  EXPECT_EQ(cgroup_dirs(), cgroups);
  EXPECT_EQ(count_entries(state.path(), true), files);
  // Growth after the first hundred would be a per-sandbox leak: 1,900 sandboxes leaking
  // even 1 KiB each would pass 1.8 MiB.
  EXPECT_LT(resident_kib(), rss_after_first_hundred + 1024) << "Kiln's memory grew with every sandbox";
  siginfo_t info{};
  EXPECT_EQ(::waitid(P_ALL, 0, &info, WEXITED | WNOHANG | __WALL), -1);  // no child left
  EXPECT_EQ(errno, ECHILD);
}

}  // namespace
}  // namespace kiln::sandbox

namespace kiln::sandbox {
namespace {

// A restore's plumbing: fds passed at kPassedFdBase (3).. reach the runtime open (and nothing
// else does), and a /tmp archive is unpacked into the sandbox's /tmp, owned by its root.
TEST_F(JailTest, PassedFdsAndSeededTmpReachTheRuntime) {
  TempDir seed;
  write_file(seed.path() / "from-init.txt", "made during init", 0640);
  std::filesystem::create_directories(seed.path() / "cache/d");
  UniqueFd archive(::memfd_create("archive", MFD_CLOEXEC));
  {
    UniqueFd dir(::open(seed.path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    ASSERT_TRUE(pack_tmp_tree(dir.get(), archive.get()).ok());
    ::lseek(archive.get(), 0, SEEK_SET);
  }
  UniqueFd passed(::memfd_create("passed", MFD_CLOEXEC));
  ASSERT_EQ(::write(passed.get(), "image-bytes", 11), 11);
  ::lseek(passed.get(), 0, SEEK_SET);
  SandboxSpec s = spec(
      "cat /tmp/from-init.txt; echo; stat -c '%u %a' /tmp/from-init.txt; test -d /tmp/cache/d && echo dir; "
      "cat /proc/self/fd/3; echo; ls /proc/self/fd | sort -n | tr '\\n' ' '");
  s.tmp_archive_fd = archive.get();
  s.pass_fds = {passed.get()};
  std::string out = run(s);
  EXPECT_NE(out.find("made during init\n0 640\ndir\nimage-bytes\n"), std::string::npos) << out;
  // 0 1 2, the passed fd, and the fd ls itself opens: nothing else of Kiln's.
  EXPECT_NE(out.find("\n0 1 2 3 4 "), std::string::npos) << out;  // 4: ls's own directory
    // Too many fds is refused before any shell is used.
  SandboxSpec many = spec("true");
  many.pass_fds = {0, 0, 0, 0, 0};
  EXPECT_NE(run(many).find("create failed"), std::string::npos);
}

}  // namespace
}  // namespace kiln::sandbox
