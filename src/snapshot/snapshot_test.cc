// Checkpoint and restore of a multi-threaded C process (heap, mmap, file mapping, eventfd,
// epoll, pipe, timerfd) in test sandboxes; bad images; many restores without leaks.
#include <dirent.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <functional>
#include <iterator>
#include <set>
#include <thread>

#include "snapshot/image_format.h"
#include "snapshot/test_sandbox.h"

namespace kiln::snapshot {
namespace {

using testing::Sandboxed;
using testing::TestRoot;
namespace fs = std::filesystem;

struct Report {
  unsigned long counter = 0, events = 0, ticks = 0, memchecks = 0;
  int membad = -1, pid = -1;
  std::string tids;
};

std::optional<Report> report(Sandboxed& s) {
  if (!s.send("report\n")) return std::nullopt;
  for (int i = 0; i < 20; ++i) {
    auto line = s.read_line();
    if (!line) return std::nullopt;
    Report r;
    char tids[64] = {0};
    if (std::sscanf(line->c_str(), "counter=%lu events=%lu ticks=%lu memchecks=%lu membad=%d pid=%d tids=%63s",
                    &r.counter, &r.events, &r.ticks, &r.memchecks, &r.membad, &r.pid, tids) == 7) {
      r.tids = tids;
      return r;
    }
  }
  return std::nullopt;
}

// Waits (generously) until the process reports progress past `after` on every counter.
std::optional<Report> progressed(Sandboxed& s, const Report& after) {
  for (int i = 0; i < 600; ++i) {
    auto r = report(s);
    if (!r) return std::nullopt;
    if (r->counter > after.counter + 10 && r->events > after.events && r->ticks > after.ticks &&
        r->memchecks > after.memchecks) {
      return r;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return std::nullopt;
}

std::string pidns(pid_t pid) {
  char buf[128];
  ssize_t n = ::readlink(("/proc/" + std::to_string(pid) + "/ns/pid").c_str(), buf, sizeof(buf));
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
}

class SnapshotTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root (namespaces, ptrace, chroot)";
    root_ = TestRoot::make();
    fs::copy_file(SNAP_TARGET, root_.data / "snap_target");
    for (const char* f : {"runtime_app.py", "runtime_app.js"}) {
      if (fs::exists(fs::path(SNAP_TESTDATA) / f)) fs::copy_file(fs::path(SNAP_TESTDATA) / f, root_.data / f);
    }
    std::ofstream data(root_.data / "data.bin", std::ios::binary);
    for (int i = 0; i < 64 * 1024; ++i) data.put(static_cast<char>(i % 251));
  }
  void TearDown() override { root_.remove(); }

  // Starts the target, lets it run, checkpoints it into `image`; returns its last report.
  Report checkpoint_target(const fs::path& image) {
    Sandboxed s = testing::start_process(root_, {"/snapdata/snap_target"});
    EXPECT_EQ(s.read_line(), "ready");
    auto r = progressed(s, Report{});
    EXPECT_TRUE(r.has_value());
    CheckpointOptions opts;
    Status st = checkpoint_process(s.pid, opts, image);
    EXPECT_TRUE(st.ok()) << st.message();
    int wst;
    ::waitpid(s.pid, &wst, 0);  // killed by the checkpoint (which, as tracer and parent, may have reaped it)
    EXPECT_EQ(::kill(s.pid, 0), -1);
    return r.value_or(Report{});
  }

  TestRoot root_;
};

TEST_F(SnapshotTest, CProcessRestoresTwiceFromOneImage) {
  const fs::path image = root_.images / "c";
  Report before = checkpoint_target(image);
  EXPECT_EQ((fs::status(image).permissions() & fs::perms::all), fs::perms::owner_all);
  EXPECT_EQ((fs::status(image / "pages").permissions() & fs::perms::all), fs::perms::owner_read | fs::perms::owner_write);
  std::set<std::string> namespaces;
  std::vector<Sandboxed> copies(2);
  for (Sandboxed& copy : copies) {
    Status st = testing::restore_into(root_, image, "", copy);
    ASSERT_TRUE(st.ok()) << st.message();
    auto r = progressed(copy, before);
    ASSERT_TRUE(r.has_value()) << "restored copy did not make progress";
    EXPECT_EQ(r->membad, 0);
    EXPECT_EQ(r->pid, 1);
    EXPECT_EQ(r->tids, before.tids);
    ASSERT_TRUE(copy.send("pipe\n"));
    bool piped = false;
    for (int i = 0; i < 50 && !piped; ++i) {
      auto line = copy.read_line();
      if (!line) break;
      piped = line->rfind("pipe-ok", 0) == 0;
    }
    EXPECT_TRUE(piped);
    namespaces.insert(pidns(copy.pid));
    // Restored without any capability (PR_SET_MM_MAP and the rest need none).
    std::ifstream status("/proc/" + std::to_string(copy.pid) + "/status");
    std::string line, cap_eff;
    while (std::getline(status, line)) {
      if (line.rfind("CapEff:", 0) == 0) cap_eff = line;
    }
    EXPECT_EQ(cap_eff, "CapEff:\t0000000000000000");
  }
  EXPECT_EQ(namespaces.size(), 2u);
  for (Sandboxed& copy : copies) copy.kill_and_reap();
}

constexpr const char* kNextPath = "/2018-06-01/runtime/restore/next";

std::string replay_for(uint16_t port) {
  return std::string("GET ") + kNextPath + " HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port) +
         "\r\nContent-Length: 0\r\n\r\n";
}

// Starts `argv` (a runtime talking to `api`), lets it block on GET restore/next, and
// checkpoints it while it waits in `blocked_syscall`.
void checkpoint_runtime(const TestRoot& root, testing::TestApi& api, const std::vector<std::string>& argv,
                        long blocked_syscall, const fs::path& image) {
  Sandboxed s = testing::start_process(root, argv);
  UniqueFd conn = api.accept_one(std::chrono::seconds(60));
  ASSERT_TRUE(conn.valid()) << "runtime did not connect: " << s.read_line(std::chrono::seconds(1)).value_or("");
  auto req = testing::TestApi::read_request(conn.get(), std::chrono::seconds(60));
  ASSERT_TRUE(req.has_value());
  EXPECT_NE(req->find(kNextPath), std::string::npos);
  ASSERT_TRUE(testing::wait_in_syscall(s.pid, blocked_syscall));
  CheckpointOptions opts;
  opts.runtime_api_port = api.port;
  Status st = checkpoint_process(s.pid, opts, image);
  ASSERT_TRUE(st.ok()) << st.message();
  s.kill_and_reap();
}

// Restores one copy, answers its replayed request with `event`, returns the POSTed body.
std::string invoke_restored(const TestRoot& root, testing::TestApi& api, const fs::path& image, const std::string& event,
                            Sandboxed& copy) {
  Status st = testing::restore_into(root, image, replay_for(api.port), copy);
  EXPECT_TRUE(st.ok()) << st.message();
  if (!st.ok()) return "";
  UniqueFd conn = api.accept_one();
  EXPECT_TRUE(conn.valid());
  auto req = testing::TestApi::read_request(conn.get());
  EXPECT_TRUE(req.has_value());
  if (!req) return "";
  EXPECT_EQ(*req, replay_for(api.port));
  testing::TestApi::respond(conn.get(), 200, event);
  auto post = testing::TestApi::read_request(conn.get());
  EXPECT_TRUE(post.has_value());
  if (!post) return "";
  testing::TestApi::respond(conn.get(), 202, "{}");
  // The runtime goes back to restore/next on the same connection.
  auto next = testing::TestApi::read_request(conn.get());
  EXPECT_TRUE(next.has_value() && next->find(kNextPath) != std::string::npos);
  return post->substr(post->find("\r\n\r\n") + 4);
}

TEST_F(SnapshotTest, PythonBlockedOnRuntimeApiAnswersAfterRestore) {
  testing::TestApi api = testing::TestApi::make();
  const fs::path image = root_.images / "py";
  checkpoint_runtime(root_, api, {"/usr/bin/python3", "-S", "/snapdata/runtime_app.py", std::to_string(api.port)},
                     45 /*recvfrom*/, image);
  for (int i = 0; i < 2; ++i) {
    Sandboxed copy;
    std::string body = invoke_restored(root_, api, image, "{\"id\": " + std::to_string(i) + "}", copy);
    EXPECT_NE(body.find("\"echo\": {\"id\": " + std::to_string(i) + "}"), std::string::npos) << body;
    EXPECT_NE(body.find("\"total\": 10485760"), std::string::npos) << body;
    EXPECT_NE(body.find("\"pid\": 1"), std::string::npos) << body;
    copy.kill_and_reap();
  }
}

TEST_F(SnapshotTest, NodeBlockedInHttpRequestAnswersAfterRestore) {
  testing::TestApi api = testing::TestApi::make();
  const fs::path image = root_.images / "node";
  checkpoint_runtime(root_, api, {"/usr/bin/node", "/snapdata/runtime_app.js", std::to_string(api.port)},
                     281 /*epoll_pwait*/, image);
  for (int i = 0; i < 2; ++i) {
    Sandboxed copy;
    std::string body = invoke_restored(root_, api, image, "{\"id\":" + std::to_string(i) + "}", copy);
    EXPECT_NE(body.find("\"echo\":{\"id\":" + std::to_string(i) + "}"), std::string::npos) << body;
    EXPECT_NE(body.find("\"total\":20000"), std::string::npos) << body;
    EXPECT_NE(body.find("\"pid\":1"), std::string::npos) << body;
    copy.kill_and_reap();
  }
}

int count_fds() {
  int n = 0;
  for (auto& e : fs::directory_iterator("/proc/self/fd")) n += e.path().filename().string() != ".";
  return n;
}

bool has_children() {
  int st;
  return !(::waitpid(-1, &st, WNOHANG) < 0 && errno == ECHILD);
}

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}
void write_file(const fs::path& p, const std::string& bytes) {
  fs::remove(p);
  std::ofstream out(p, std::ios::binary);
  out << bytes;
}

// A copy of `image` whose plan/pages went through `edit`.
fs::path corrupt(const fs::path& image, const std::string& name, const std::function<void(std::string&, std::string&)>& edit) {
  fs::path dir = image.parent_path() / name;
  fs::create_directories(dir);
  std::string plan = read_file(image / "plan"), pages = read_file(image / "pages");
  edit(plan, pages);
  write_file(dir / "plan", plan);
  write_file(dir / "pages", pages);
  return dir;
}

void reseal(std::string& plan) {
  auto* h = reinterpret_cast<image::PlanHeader*>(plan.data());
  h->checksum = image::checksum(reinterpret_cast<const image::u8*>(plan.data()), plan.size(),
                                offsetof(image::PlanHeader, checksum));
}

TEST_F(SnapshotTest, BadImagesFailCleanlyWithoutStrayProcesses) {
  const fs::path image = root_.images / "c";
  checkpoint_target(image);
  ASSERT_FALSE(has_children());
  const int fds_before = count_fds();
  struct Case {
    const char* name;
    std::function<void(std::string&, std::string&)> edit;
    const char* expect;
  };
  const Case cases[] = {
      {"plan-truncated", [](std::string& p, std::string&) { p.resize(p.size() / 2); }, "size mismatch"},
      {"plan-empty", [](std::string& p, std::string&) { p.clear(); }, "plan size out of bounds"},
      {"plan-garbled", [](std::string& p, std::string&) { p[p.size() / 2] ^= 0x5a; }, "checksum mismatch"},
      {"plan-bad-magic", [](std::string& p, std::string&) { p[0] ^= 1; reseal(p); }, "bad magic"},
      {"plan-vma-out-of-pages",
       [](std::string& p, std::string&) {
         auto* h = reinterpret_cast<image::PlanHeader*>(p.data());
         auto* v = reinterpret_cast<image::VmaRec*>(p.data() + h->off_vmas);
         for (uint32_t i = 0; i < h->n_vmas; ++i) {
           if (v[i].kind == image::kVmaAnon) v[i].pages_off = h->pages_size + 4096;
         }
         reseal(p);
       },
       "vma pages out of bounds"},
      {"plan-vma-in-stub-range",
       [](std::string& p, std::string&) {
         auto* h = reinterpret_cast<image::PlanHeader*>(p.data());
         auto* v = reinterpret_cast<image::VmaRec*>(p.data() + h->off_vmas);
         v[0].start = image::kStubBase;
         v[0].end = image::kStubBase + 4096;
         reseal(p);
       },
       "stub range"},
      {"plan-section-out-of-file",
       [](std::string& p, std::string&) {
         auto* h = reinterpret_cast<image::PlanHeader*>(p.data());
         h->n_fds = 1u << 30;
         reseal(p);
       },
       "section out of bounds"},
      {"pages-truncated", [](std::string&, std::string& g) { g.resize(g.size() / 2); }, "pages file size"},
      {"pages-grown", [](std::string&, std::string& g) { g += "garbage"; }, "pages file size"},
  };
  for (const Case& c : cases) {
    fs::path bad = corrupt(image, c.name, c.edit);
    Sandboxed copy;
    Status st = testing::restore_into(root_, bad, "", copy);
    EXPECT_FALSE(st.ok()) << c.name;
    EXPECT_NE(st.message().find(c.expect), std::string::npos) << c.name << ": " << st.message();
    EXPECT_EQ(copy.pid, -1) << c.name;
    EXPECT_FALSE(has_children()) << c.name;
  }
  EXPECT_EQ(count_fds(), fds_before);
}

TEST_F(SnapshotTest, ManyRestoresLeakNoFdsAndNoZombies) {
  const fs::path image = root_.images / "c";
  checkpoint_target(image);
  const int fds_before = count_fds();
  for (int i = 0; i < 200; ++i) {
    Sandboxed copy;
    Status st = testing::restore_into(root_, image, "", copy);
    ASSERT_TRUE(st.ok()) << i << ": " << st.message();
    ASSERT_TRUE(report(copy).has_value()) << i;
    copy.kill_and_reap();
  }
  EXPECT_EQ(count_fds(), fds_before);
  EXPECT_FALSE(has_children());
}

TEST_F(SnapshotTest, RefusedCheckpointLeavesTheProcessRunning) {
  Sandboxed s = testing::start_process(
      root_, {"/usr/bin/python3", "-S", "-c",
              "import socket, sys\n"
              "a, b = socket.socketpair()\n"
              "print('ready', flush=True)\n"
              "for line in sys.stdin: print('echo', line.strip(), flush=True)\n"});
  ASSERT_EQ(s.read_line(), "ready");
  ASSERT_TRUE(testing::wait_in_syscall(s.pid, 0 /*read*/));
  Status st = checkpoint_process(s.pid, CheckpointOptions{}, root_.images / "refused");
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("socket other than a Runtime API connection"), std::string::npos) << st.message();
  EXPECT_FALSE(fs::exists(root_.images / "refused" / "plan"));
  // Detached, not stopped, and its interrupted read restarted: it still answers.
  ASSERT_TRUE(s.send("hi\n"));
  EXPECT_EQ(s.read_line(), "echo hi");
  s.kill_and_reap();
}

TEST_F(SnapshotTest, RefusesASandboxWithMoreThanOneProcess) {
  Sandboxed s = testing::start_process(
      root_, {"/usr/bin/python3", "-S", "-c",
              "import os, sys, time\n"
              "if os.fork() == 0:\n"
              "    time.sleep(1000)\n"
              "print('ready', flush=True)\n"
              "for line in sys.stdin: print('echo', line.strip(), flush=True)\n"});
  ASSERT_EQ(s.read_line(), "ready");
  ASSERT_TRUE(testing::wait_in_syscall(s.pid, 0 /*read*/));
  Status st = checkpoint_process(s.pid, CheckpointOptions{}, root_.images / "tree");
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("more than one process"), std::string::npos) << st.message();
  ASSERT_TRUE(s.send("hi\n"));
  EXPECT_EQ(s.read_line(), "echo hi");
  s.kill_and_reap();
}

}  // namespace
}  // namespace kiln::snapshot
