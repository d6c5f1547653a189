// snapshot_bench: the python runtime of the snapshot tests (10 MB of data, blocked on
// GET restore/next), in test sandboxes (pid + mount namespaces, chroot; host network).
// Prints: checkpoint time and image size; cold start to first answer vs restore to first
// answer (p50/p90); PSS of 20 restored copies vs 20 cold ones. Root only.
#include <poll.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <sstream>

#include "snapshot/test_sandbox.h"

namespace fs = std::filesystem;
using namespace kiln;
using namespace kiln::snapshot;
using Clock = std::chrono::steady_clock;

namespace {

double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

std::string replay_for(uint16_t port) {
  return "GET /2018-06-01/runtime/restore/next HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port) +
         "\r\nContent-Length: 0\r\n\r\n";
}

// Answers the pending request on `conn` and waits for the runtime's POST.
double g_post_ms;
bool answer(int conn) {
  auto t = Clock::now();
  if (!testing::TestApi::respond(conn, 200, "{\"id\": 1}")) return false;
  auto post = testing::TestApi::read_request(conn);
  if (!post) return false;
  g_post_ms += ms_since(t);
  testing::TestApi::respond(conn, 202, "{}");
  return testing::TestApi::read_request(conn).has_value();  // back on restore/next
}

long pss_kb(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/smaps_rollup");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("Pss:", 0) == 0) return std::stol(line.substr(4));
  }
  return 0;
}

struct Live {
  testing::Sandboxed s;
  kiln::UniqueFd conn;
};

// Cold start: spawn python, wait for its GET, answer, wait for its POST.
bool cold(const testing::TestRoot& root, testing::TestApi& api, Live& out) {
  out.s = testing::start_process(root, {"/usr/bin/python3", "-S", "/snapdata/runtime_app.py", std::to_string(api.port)});
  out.conn = api.accept_one();
  return out.conn.valid() && testing::TestApi::read_request(out.conn.get()).has_value() && answer(out.conn.get());
}

double g_second_ms, g_stub_ms, g_faults, g_cpu_ticks, g_replay_ms, g_spawn_ms, g_complete_ms, g_answer_ms;
int g_phases;

bool g_eager;

bool restored(const testing::TestRoot& root, testing::TestApi& api, const fs::path& image, Live& out) {
  auto t0 = Clock::now();
  auto fds = open_image(image);
  if (!fds.ok()) return false;
  out.s = testing::start_stub(root, *fds, g_eager);
  auto t1 = Clock::now();
  pollfd pfd{fds->ready_read.get(), POLLIN, 0};
  ::poll(&pfd, 1, 30000);  // the stub reported (not consumed): splits stub time from tracer time
  g_stub_ms += ms_since(t1);
  Status st = complete_restore(out.s.pid, image, replay_for(api.port), fds->ready_read.get());
  if (!st.ok()) {
    std::fprintf(stderr, "%s\n", st.message().c_str());
    out.s.kill_and_reap();
    return false;
  }
  auto t2 = Clock::now();
  out.conn = api.accept_one();
  bool ok = out.conn.valid() && testing::TestApi::read_request(out.conn.get()).has_value();
  g_replay_ms += ms_since(t2);
  auto cpu = [&] {
    std::ifstream in("/proc/" + std::to_string(out.s.pid) + "/stat");
    std::string all((std::istreambuf_iterator<char>(in)), {});
    std::istringstream rest(all.substr(all.rfind(')') + 2));
    std::vector<std::string> f((std::istream_iterator<std::string>(rest)), std::istream_iterator<std::string>());
    return std::make_pair(std::stol(f.at(7)), std::stol(f.at(11)) + std::stol(f.at(12)));  // minflt, cpu ticks
  };
  auto c0 = cpu();
  ok = ok && answer(out.conn.get());
  auto c1 = cpu();
  auto t3 = Clock::now();
  ok = ok && answer(out.conn.get());
  g_second_ms += ms_since(t3);
  g_faults += static_cast<double>(c1.first - c0.first);
  g_cpu_ticks += static_cast<double>(c1.second - c0.second);
  g_spawn_ms += std::chrono::duration<double, std::milli>(t1 - t0).count();
  g_complete_ms += std::chrono::duration<double, std::milli>(t2 - t1).count();
  g_answer_ms += ms_since(t2);
  ++g_phases;
  return ok;
}

void print_dist(const char* what, std::vector<double> v) {
  std::sort(v.begin(), v.end());
  std::printf("%-34s p50 %8.2f ms   p90 %8.2f ms   (n=%zu)\n", what, v[v.size() / 2], v[v.size() * 9 / 10], v.size());
}

}  // namespace

int main() {
  if (::geteuid() != 0) {
    std::fprintf(stderr, "snapshot_bench needs root\n");
    return 1;
  }
  testing::TestRoot root = testing::TestRoot::make();
  fs::copy_file(fs::path(SNAP_TESTDATA) / "runtime_app.py", root.data / "runtime_app.py");
  testing::TestApi api = testing::TestApi::make();
  const fs::path image = root.images / "py";

  // Checkpoint.
  testing::Sandboxed s = testing::start_process(root, {"/usr/bin/python3", "-S", "/snapdata/runtime_app.py", std::to_string(api.port)});
  kiln::UniqueFd conn = api.accept_one();
  if (!conn.valid() || !testing::TestApi::read_request(conn.get()) || !testing::wait_in_syscall(s.pid, 45)) return 2;
  CheckpointOptions opts;
  opts.runtime_api_port = api.port;
  auto t0 = Clock::now();
  Status st = checkpoint_process(s.pid, opts, image);
  double dump_ms = ms_since(t0);
  if (!st.ok()) {
    std::fprintf(stderr, "%s\n", st.message().c_str());
    return 3;
  }
  s.kill_and_reap();
  conn.reset();
  struct stat pst, gst;
  ::stat((image / "plan").c_str(), &pst);
  ::stat((image / "pages").c_str(), &gst);
  std::printf("checkpoint (process frozen until killed)   %8.2f ms\n", dump_ms);
  std::printf("image: plan %.1f KiB, pages %.1f MiB allocated (%.1f MiB apparent)\n", pst.st_size / 1024.0,
              gst.st_blocks * 512 / 1048576.0, gst.st_size / 1048576.0);

  // What the test sandbox itself costs (clone + mount namespace + mounts + chroot + exec).
  std::vector<double> empty_ms;
  for (int i = 0; i < 20; ++i) {
    auto t = Clock::now();
    testing::Sandboxed e = testing::start_process(root, {"/usr/bin/true"});
    int wst;
    ::waitpid(e.pid, &wst, 0);
    empty_ms.push_back(ms_since(t));
  }
  print_dist("test sandbox running /usr/bin/true", empty_ms);

  std::vector<double> cold_ms, restore_ms;
  for (int i = 0; i < 10; ++i) {
    Live l;
    auto t = Clock::now();
    if (!cold(root, api, l)) return 4;
    cold_ms.push_back(ms_since(t));
    l.s.kill_and_reap();
  }
  print_dist("cold start to first answer", cold_ms);
  {
    std::vector<Live> live(20);
    for (Live& l : live) {
      if (!cold(root, api, l)) return 7;
    }
    long total = 0;
    for (Live& l : live) total += pss_kb(l.s.pid);
    std::printf("PSS of 20 cold copies (after one answer)      %8.1f MiB (%.1f MiB each)\n", total / 1024.0, total / 1024.0 / 20);
    for (Live& l : live) l.s.kill_and_reap();
  }

  for (int mode = 0; mode < 2; ++mode) {
    g_eager = mode == 1;
    std::printf("\n== restore, %s\n", g_eager ? "eager (--eager: saved anonymous pages copied by the stub)"
                                              : "lazy (pages mapped privately from the image; default)");
    g_second_ms = g_stub_ms = g_faults = g_cpu_ticks = g_replay_ms = g_spawn_ms = g_complete_ms = g_answer_ms = 0;
    g_phases = 0;
    restore_ms.clear();
    for (int i = 0; i < 40; ++i) {
      Live l;
      auto t = Clock::now();
      if (!restored(root, api, image, l)) return 5;
      restore_ms.push_back(ms_since(t));
      l.s.kill_and_reap();
    }
    print_dist("restore to first answer", restore_ms);
    std::printf("  of which: clone %.2f ms; sandbox setup + stub until ready %.2f ms; tracer %.2f ms; "
                "replay seen %.2f ms; answer %.2f ms (means)\n",
                g_spawn_ms / g_phases, g_stub_ms / g_phases, (g_complete_ms - g_stub_ms) / g_phases,
                g_replay_ms / g_phases, (g_answer_ms - g_replay_ms) / g_phases);
    std::printf("  a second answer takes %.2f ms (mean)\n", g_second_ms / g_phases);
    std::printf("  the first answer costs the restored runtime %.0f minor faults and %.0f ms CPU (means)\n",
                g_faults / g_phases, g_cpu_ticks * 1000.0 / ::sysconf(_SC_CLK_TCK) / g_phases);
    auto tr = Clock::now();
    int n = 0;
    while (ms_since(tr) < 3000) {
      Live l;
      if (!restored(root, api, image, l)) return 6;
      l.s.kill_and_reap();
      ++n;
    }
    std::printf("  restores + first answer per second (one at a time)  %.1f\n", n / (ms_since(tr) / 1000.0));
    std::vector<Live> live(20);
    for (Live& l : live) {
      if (!restored(root, api, image, l)) return 7;
    }
    long total = 0;
    for (Live& l : live) total += pss_kb(l.s.pid);
    std::printf("  PSS of 20 restored copies (after one answer) %8.1f MiB (%.1f MiB each)\n", total / 1024.0,
                total / 1024.0 / 20);
    for (Live& l : live) l.s.kill_and_reap();
  }
  root.remove();
  return 0;
}
