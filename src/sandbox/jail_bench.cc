// Jail creation + teardown against its floors, measured side by side in one run:
//   fork+exec of /bin/true, a clone into fresh namespaces, the process backend, the jail.
// Run as root: jail_bench [--benchmark_filter=...]
//   or: jail_bench --markdown [--runtime <build>/runtimes/c_bootstrap]  (jail_bench_report.cc)
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "sandbox/sandbox.h"

namespace kiln::sandbox {
namespace {

void wait_exit(int pidfd) {
  pollfd p{pidfd, POLLIN, 0};
  ::poll(&p, 1, 10000);
}

// Floor: what any sandbox must pay to run a program at all.
void BM_ForkExecTrue(benchmark::State& state) {
  char* argv[] = {const_cast<char*>("/bin/true"), nullptr};
  char* envp[] = {nullptr};
  for (auto _ : state) {
    pid_t pid = ::fork();
    if (pid == 0) {
      ::execve(argv[0], argv, envp);
      ::_exit(127);
    }
    ::waitpid(pid, nullptr, 0);
  }
}
BENCHMARK(BM_ForkExecTrue)->UseRealTime()->Unit(benchmark::kMicrosecond);

// Floor: a child in fresh user, pid, mount, net, ipc and uts namespaces that exits at once
// (creation and teardown of the namespaces, no exec).
void BM_CloneSixNamespaces(benchmark::State& state) {
  const uint64_t flags = CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC |
                         CLONE_NEWUTS;
  for (auto _ : state) {
    clone_args args{};
    args.flags = flags;
    args.exit_signal = SIGCHLD;
    long pid = ::syscall(SYS_clone3, &args, sizeof args);
    if (pid == 0) ::_exit(0);
    if (pid < 0) {
      state.SkipWithError("clone3 failed");
      break;
    }
    ::waitpid(static_cast<pid_t>(pid), nullptr, 0);
  }
}
BENCHMARK(BM_CloneSixNamespaces)->UseRealTime()->Unit(benchmark::kMicrosecond);

struct Dirs {
  std::filesystem::path base;
  Dirs() {
    char tmpl[] = "/tmp/kiln-jail-bench-XXXXXX";
    base = ::mkdtemp(tmpl);
    std::filesystem::create_directories(base / "code");
    std::filesystem::create_directories(base / "runtime");
  }
  ~Dirs() { std::filesystem::remove_all(base); }
};

void run_backend(benchmark::State& state, SandboxBackend& backend, const Dirs& dirs) {
  SandboxSpec spec;
  spec.tenant = "bench";
  spec.code_dir = dirs.base / "code";
  spec.runtime_dir = dirs.base / "runtime";
  spec.argv = {"/bin/true"};
  spec.env = {"AWS_LAMBDA_RUNTIME_API=127.0.0.1:9001"};
  int n = 0;
  for (auto _ : state) {
    spec.id = "bench-" + std::to_string(::getpid()) + "-" + std::to_string(state.thread_index()) +
              "-" + std::to_string(n++);
    auto sb = backend.create(spec);
    if (!sb.ok()) {
      state.SkipWithError(sb.status().message().c_str());
      break;
    }
    wait_exit((*sb)->exit_fd());
    (*sb)->destroy();
  }
  state.counters["sandboxes/s"] = benchmark::Counter(n, benchmark::Counter::kIsRate);
}

void BM_ProcessBackend(benchmark::State& state) {
  Dirs dirs;
  auto backend = make_process_backend();
  run_backend(state, *backend, dirs);
}
BENCHMARK(BM_ProcessBackend)->UseRealTime()->Unit(benchmark::kMicrosecond);

// The jail: create (namespaces, cgroups, mounts, seccomp, Landlock, exec) + destroy.
void BM_Jail(benchmark::State& state) {
  Dirs dirs;
  JailOptions o;
  o.state_dir = dirs.base / "state";
  o.cgroup_prefix = "kiln-bench";
  o.allow_network = state.range(0) != 0;
  auto backend = make_jail_backend(o);
  run_backend(state, *backend, dirs);
}
BENCHMARK(BM_Jail)->ArgName("host_network")->Arg(0)->Arg(1)->UseRealTime()->Unit(benchmark::kMicrosecond);

// Throughput: several creators at once share the kernel's grace-period waits.
void BM_JailConcurrent(benchmark::State& state) {
  static Dirs* dirs = new Dirs();  // shared by the benchmark's threads, never freed
  // Destroyed at exit, so that its shells' cgroups go with it.
  static std::unique_ptr<SandboxBackend> backend = [] {
    JailOptions o;
    o.state_dir = dirs->base / "state";
    o.cgroup_prefix = "kiln-bench";
    return make_jail_backend(o);
  }();
  run_backend(state, *backend, *dirs);
}
BENCHMARK(BM_JailConcurrent)->Threads(4)->Threads(8)->UseRealTime()->Unit(benchmark::kMicrosecond);

}  // namespace

int run_markdown_report(const std::string& runtime);
}  // namespace kiln::sandbox

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    if (std::string(argv[i]) == "--markdown") {
      std::string runtime = "/bin/true";
      for (int j = 1; j + 1 < argc; ++j) {
        if (std::string(argv[j]) == "--runtime") runtime = argv[j + 1];
      }
      return kiln::sandbox::run_markdown_report(runtime);
    }
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
