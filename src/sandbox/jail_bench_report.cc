// `jail_bench --markdown [--runtime PATH]`: one run that measures the jail against its
// floors and prints a Markdown table (bench/run.sh pastes it into docs/benchmarks.md).
// Latency is wall time per sandbox; CPU is this process's user+system time, its reaped
// children's included (the sandboxes, the pool's filler), divided by the sandboxes made.
#include <fcntl.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "sandbox/sandbox.h"
#include "sandbox/test_util.h"

namespace kiln::sandbox {
namespace {
using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;

double ms_since(Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

double cpu_ms() {
  rusage self{}, kids{};
  ::getrusage(RUSAGE_SELF, &self);
  ::getrusage(RUSAGE_CHILDREN, &kids);
  auto ms = [](const timeval& t) { return t.tv_sec * 1e3 + t.tv_usec / 1e3; };
  return ms(self.ru_utime) + ms(self.ru_stime) + ms(kids.ru_utime) + ms(kids.ru_stime);
}

struct Row {
  std::string what;
  double median_ms = 0, mean_ms = 0, cpu_ms = 0;
  std::string note;
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}
double mean(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return v.empty() ? 0 : s / v.size();
}

template <typename F>
Row measure(const std::string& what, int n, F once) {
  std::vector<double> t;
  double c0 = cpu_ms();
  for (int i = 0; i < n; ++i) {
    auto t0 = Clock::now();
    once();
    t.push_back(ms_since(t0));
  }
  return {what, median(t), mean(t), (cpu_ms() - c0) / n, ""};
}

void fork_exec_true() {
  pid_t pid = ::fork();
  if (pid == 0) {
    char* argv[] = {const_cast<char*>("/bin/true"), nullptr};
    ::execve(argv[0], argv, nullptr);
    ::_exit(127);
  }
  ::waitpid(pid, nullptr, 0);
}

void clone_six_namespaces() {
  clone_args args{};
  args.flags = CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS;
  args.exit_signal = SIGCHLD;
  long pid = ::syscall(SYS_clone3, &args, sizeof args);
  if (pid == 0) ::_exit(0);
  if (pid > 0) ::waitpid(static_cast<pid_t>(pid), nullptr, 0);
}

struct Bench {
  testing::TempDir dir;
  std::atomic<int> next{0};
  SandboxSpec spec(const std::string& program) {
    SandboxSpec s;
    s.id = "b-" + std::to_string(::getpid()) + "-" + std::to_string(next++);
    s.tenant = "bench";
    s.code_dir = dir.path() / "code";
    s.runtime_dir = dir.path() / "runtime";
    s.argv = {program};
    s.env = {"AWS_LAMBDA_RUNTIME_API=127.0.0.1:9001"};
    return s;
  }
  std::unique_ptr<SandboxBackend> backend(uint32_t pool) {
    fs::create_directories(dir.path() / "code");
    fs::create_directories(dir.path() / "runtime");
    JailOptions o;
    o.state_dir = dir.path() / "state";
    o.cgroup_prefix = "kiln-bench";
    o.pool_size = pool;
    return make_jail_backend(o);
  }
};

// Sequential create, wait for exit of /bin/true, destroy; `gap` lets the pool refill.
std::vector<Row> jail_rows(Bench& b, uint32_t pool, int n, std::chrono::milliseconds gap,
                           uint32_t memory_mb = 1769) {
  auto backend = b.backend(pool);
  std::vector<double> create, exit, destroy, total;
  double cpu = 0;
  for (int i = 0; i < n; ++i) {
    if (gap.count() > 0) std::this_thread::sleep_for(gap);
    double c0 = cpu_ms();
    auto t0 = Clock::now();
    SandboxSpec spec = b.spec("/bin/true");
    spec.memory_mb = memory_mb;
    auto sb = backend->create(spec);
    if (!sb.ok()) {
      std::fprintf(stderr, "create: %s\n", sb.status().message().c_str());
      std::exit(1);
    }
    create.push_back(ms_since(t0));
    auto t_exit = Clock::now();
    testing::wait_readable((*sb)->exit_fd(), 30000);
    exit.push_back(ms_since(t_exit));
    auto t1 = Clock::now();
    (*sb)->destroy();
    destroy.push_back(ms_since(t1));
    total.push_back(ms_since(t0));
    cpu += cpu_ms() - c0;
  }
  // The pool's refill happens between iterations too; count its CPU by draining it.
  double c0 = cpu_ms();
  backend.reset();
  cpu += cpu_ms() - c0;
  std::string name = "jail " + std::to_string(memory_mb) + " MB, pool " + std::to_string(pool) +
                     (gap.count() ? ", spaced" : ", back-to-back");
  Row r{name + ": create + exit + destroy", median(total), mean(total), cpu / n, ""};
  char note[160];
  std::snprintf(note, sizeof note, "create %.2f, runtime's exit %.2f, destroy %.2f ms (medians)",
                median(create), median(exit), median(destroy));
  r.note = note;
  return {r};
}

// Like the worker: 2 creating threads, 1 teardown thread, for `seconds`.
Row creation_rate(Bench& b, const std::string& program, double seconds) {
  auto backend = b.backend(8);
  std::mutex mu;
  std::condition_variable cv;
  std::deque<std::unique_ptr<Sandbox>> dead;
  std::atomic<bool> stop{false};
  std::atomic<int> made{0}, failed{0};
  double c0 = cpu_ms();
  auto t0 = Clock::now();
  std::thread teardown([&] {
    std::unique_lock<std::mutex> lock(mu);
    while (!stop || !dead.empty()) {
      if (dead.empty()) {
        cv.wait_for(lock, std::chrono::milliseconds(50));
        continue;
      }
      auto sb = std::move(dead.front());
      dead.pop_front();
      lock.unlock();
      sb->destroy();
      lock.lock();
    }
  });
  std::vector<std::thread> creators;
  for (int i = 0; i < 2; ++i) {
    creators.emplace_back([&] {
      while (ms_since(t0) < seconds * 1000) {
        auto sb = backend->create(b.spec(program));
        if (!sb.ok()) {
          ++failed;
          continue;
        }
        ++made;
        std::lock_guard<std::mutex> lock(mu);
        dead.push_back(std::move(*sb));
        cv.notify_one();
      }
    });
  }
  for (auto& t : creators) t.join();
  double elapsed = ms_since(t0);
  stop = true;
  cv.notify_one();
  teardown.join();
  backend.reset();
  Row r{"creation rate, 2 creators + 1 teardown thread, " + fs::path(program).filename().string(),
        0, 0, (cpu_ms() - c0) / std::max(1, made.load()), ""};
  char note[160];
  std::snprintf(note, sizeof note, "**%.0f sandboxes/s** (%d in %.1f s, %d failed)",
                made * 1000.0 / elapsed, made.load(), elapsed / 1000, failed.load());
  r.note = note;
  return r;
}

uint64_t meminfo_kb(const std::string& key) {
  std::ifstream in("/proc/meminfo");
  std::string k;
  uint64_t v;
  std::string unit;
  while (in >> k >> v) {
    std::getline(in, unit);
    if (k == key + ":") return v;
  }
  return 0;
}

// VmRSS-like figures of a sandbox's first process, in KiB: {RssAnon, RssFile + RssShmem}.
std::pair<uint64_t, uint64_t> rss_kb_of(int pidfd) {
  std::ifstream fdinfo("/proc/self/fdinfo/" + std::to_string(pidfd));
  std::string line, pid;
  while (std::getline(fdinfo, line)) {
    if (line.rfind("Pid:", 0) == 0) pid = line.substr(4);
  }
  std::ifstream status("/proc/" + std::to_string(std::atoi(pid.c_str())) + "/status");
  uint64_t anon = 0, shared = 0;
  while (std::getline(status, line)) {
    if (line.rfind("RssAnon:", 0) == 0) anon = std::strtoull(line.c_str() + 8, nullptr, 10);
    if (line.rfind("RssFile:", 0) == 0 || line.rfind("RssShmem:", 0) == 0) {
      shared += std::strtoull(line.c_str() + 9, nullptr, 10);
    }
  }
  return {anon, shared};
}

// Runs this process in a memory cgroup of its own (v1 memory hierarchy or v2), so that
// everything it and its sandboxes allocate, kernel memory included, is charged there
// and other load on the host does not blur the figure. Restores the old cgroup after.
class MemoryScope {
 public:
  MemoryScope() {
    std::ifstream in("/proc/self/cgroup");
    std::string line;
    while (std::getline(in, line)) {
      size_t a = line.find(':'), b = line.find(':', a + 1);
      std::string ctrls = line.substr(a + 1, b - a - 1);
      bool v1 = ctrls.find("memory") != std::string::npos;
      if (!(v1 || (ctrls.empty() && fs::exists("/sys/fs/cgroup/cgroup.controllers")))) continue;
      fs::path own = (v1 ? fs::path("/sys/fs/cgroup/memory") : fs::path("/sys/fs/cgroup")) /
                     fs::path(line.substr(b + 1)).relative_path();
      usage_file_ = v1 ? "memory.usage_in_bytes" : "memory.current";
      old_ = own;
      dir_ = own / ("kiln-jail-bench-memory-" + std::to_string(::getpid()));
      break;
    }
    std::error_code ec;
    if (dir_.empty() || !fs::create_directory(dir_, ec)) {
      dir_.clear();
      return;
    }
    std::ofstream(dir_ / "cgroup.procs") << ::getpid() << std::flush;
  }
  ~MemoryScope() {
    if (dir_.empty()) return;
    std::ofstream(old_ / "cgroup.procs") << ::getpid() << std::flush;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(dir_, ec)) {
      if (e.is_directory()) ::rmdir(e.path().c_str());  // the backend's <prefix> parent
    }
    for (int i = 0; i < 100 && !fs::remove(dir_, ec); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));  // a benchmark, not a test
    }
  }
  bool ok() const { return !dir_.empty(); }
  double usage_kib() const {
    std::ifstream in(dir_ / usage_file_);
    uint64_t v = 0;
    in >> v;
    return v / 1024.0;
  }

 private:
  fs::path dir_, old_;
  std::string usage_file_;
};

// Memory of `n` idle sandboxes running program (waiting on /runtime/invocation/next),
// beyond the program's own resident set; and of the pool's waiting shells.
std::string idle_memory(Bench& b, const std::string& program, int n) {
  MemoryScope scope;
  if (!scope.ok()) return "| idle memory | no memory cgroup to measure in |\n";
  const double before_pool = scope.usage_kib();
  auto backend = b.backend(8);  // returns with 8 shells waiting
  const double pool = (scope.usage_kib() - before_pool) / 8;
  std::vector<std::unique_ptr<Sandbox>> live;
  const double usage0 = scope.usage_kib();
  const uint64_t avail0 = meminfo_kb("MemAvailable");
  for (int i = 0; i < n; ++i) {
    auto sb = backend->create(b.spec(program));
    if (sb.ok()) live.push_back(std::move(*sb));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // runtimes reach /next
  uint64_t anon = 0, shared = 0;
  for (auto& sb : live) {
    auto [a, s] = rss_kb_of(sb->exit_fd());
    anon += a;
    shared += s;
  }
  const double k = static_cast<double>(live.size());
  const double charged = (scope.usage_kib() - usage0) / k;
  const double avail = (static_cast<double>(meminfo_kb("MemAvailable")) - avail0) / k;
  char out[700];
  std::snprintf(out, sizeof out,
                "| idle memory, %zu sandboxes of %s | memory cgroup +%.0f KiB/sandbox; the "
                "runtime's own RssAnon %.0f KiB (+ %.0f KiB shared file pages): **%.0f KiB "
                "beyond the runtime** | MemAvailable (host-wide, noisy) %+.0f KiB/sandbox; a "
                "waiting pool shell costs %.0f KiB |\n",
                live.size(), fs::path(program).filename().c_str(), charged, anon / k, shared / k,
                charged - anon / k, avail, pool);
  live.clear();
  backend.reset();
  return out;
}

}  // namespace

int run_markdown_report(const std::string& host_runtime) {
  Bench b;
  // A runtime from the host is copied into the function's code, as a zip would hold it.
  std::string runtime = host_runtime;
  if (runtime != "/bin/true") {
    fs::create_directories(b.dir.path() / "code");
    fs::copy_file(host_runtime, b.dir.path() / "code/bootstrap", fs::copy_options::overwrite_existing);
    runtime = "/var/task/bootstrap";
  }
  double load[3] = {};
  ::getloadavg(load, 3);
  std::vector<Row> rows;
  rows.push_back(measure("floor: fork+exec /bin/true", 300, fork_exec_true));
  rows.push_back(measure("floor: clone into 6 new namespaces, exit", 300, clone_six_namespaces));
  for (auto& r : jail_rows(b, 8, 200, std::chrono::milliseconds(20))) rows.push_back(r);
  for (auto& r : jail_rows(b, 8, 200, std::chrono::milliseconds(20), 128)) rows.push_back(r);
  for (auto& r : jail_rows(b, 8, 300, std::chrono::milliseconds(0))) rows.push_back(r);
  for (auto& r : jail_rows(b, 0, 200, std::chrono::milliseconds(0))) rows.push_back(r);
  rows.push_back(creation_rate(b, runtime, 3.0));
  std::string memory = idle_memory(b, runtime, 200);
  double after[3] = {};
  ::getloadavg(after, 3);
  std::printf("Jail benchmark (`jail_bench --markdown`), %ld cores, load average %.1f before, "
              "%.1f after. Jail rows run /bin/true in a full jail: \"spaced\" leaves 20 ms "
              "between sandboxes (the pool is full, as for an occasional cold start), "
              "\"back-to-back\" does not; at 1769 MB the runtime has Kiln's CPU weight, at "
              "128 MB 7%% of it (Lambda's share), which shows on a loaded host. CPU counts this "
              "process and its reaped children (kernel workers, e.g. network namespace "
              "cleanup, are not counted).\n\n",
              ::sysconf(_SC_NPROCESSORS_ONLN), load[0], after[0]);
  std::printf("| measurement | median ms | mean ms | CPU ms / sandbox | notes |\n|---|---|---|---|---|\n");
  for (const Row& r : rows) {
    std::printf("| %s | %.2f | %.2f | %.2f | %s |\n", r.what.c_str(), r.median_ms, r.mean_ms, r.cpu_ms,
                r.note.c_str());
  }
  std::printf("%s", memory.c_str());
  return 0;
}

}  // namespace kiln::sandbox
