// kiln_spawn_floor: the cold-start floors, measured the way a sandbox backend pays them.
// Times N runs of fork (or clone into fresh namespaces) + execve + waitpid of a command
// and prints one JSON object: {"command", "namespaces", "runs", "ms": {mean,p50,p90,p99,
// min,max}}. Usage: kiln_spawn_floor [--runs N] [--namespaces] -- COMMAND [ARGS...]
// --namespaces clones into new user, pid, mount, net, ipc, uts and cgroup namespaces
// (Kiln's jail's set, without its mounts, seccomp or cgroup limits).
#include <sched.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "latency_stats.h"

namespace {

uint64_t now_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000 + static_cast<uint64_t>(ts.tv_nsec);
}

constexpr unsigned long kJailNamespaces = CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNS |
                                          CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS |
                                          CLONE_NEWCGROUP;

// Runs argv once; returns wall time in ns, or 0 if the child did not exit 0.
uint64_t run_once(char** argv, bool namespaces) {
  uint64_t start = now_ns();
  // SAFETY: fork-like clone (no CLONE_VM, no new stack); the child only calls execve and
  // _exit, both async-signal-safe.
  long pid = syscall(SYS_clone, SIGCHLD | (namespaces ? kJailNamespaces : 0UL), nullptr, nullptr,
                     nullptr, 0);
  if (pid < 0) {
    std::perror("clone");
    return 0;
  }
  if (pid == 0) {
    execvp(argv[0], argv);
    _exit(127);
  }
  int status = 0;
  if (waitpid(static_cast<pid_t>(pid), &status, 0) < 0) return 0;
  uint64_t elapsed = now_ns() - start;
  return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? elapsed : 0;
}

}  // namespace

int main(int argc, char** argv) {
  int runs = 50;
  bool namespaces = false;
  int i = 1;
  for (; i < argc; ++i) {
    std::string flag = argv[i];
    if (flag == "--") {
      ++i;
      break;
    } else if (flag == "--namespaces") {
      namespaces = true;
    } else if (flag == "--runs" && i + 1 < argc && std::atoi(argv[i + 1]) > 0) {
      runs = std::atoi(argv[++i]);
    } else {
      std::fprintf(stderr, "usage: kiln_spawn_floor [--runs N] [--namespaces] -- CMD [ARGS]\n");
      return 2;
    }
  }
  if (i >= argc) {
    std::fprintf(stderr, "kiln_spawn_floor: no command\n");
    return 2;
  }
  char** command = argv + i;
  run_once(command, namespaces);  // warm the page cache and the dynamic loader
  std::vector<uint64_t> samples;
  int failures = 0;
  for (int r = 0; r < runs; ++r) {
    uint64_t t = run_once(command, namespaces);
    if (t == 0)
      ++failures;
    else
      samples.push_back(t);
  }
  std::string joined;
  for (char** a = command; *a; ++a) joined += (joined.empty() ? "" : " ") + std::string(*a);
  kiln::bench::LatencySummary s = kiln::bench::summarize(samples);
  double min_ms = samples.empty() ? 0 : samples.front() / 1e6;
  std::printf(
      "{\"command\":\"%s\",\"namespaces\":%s,\"runs\":%llu,\"failures\":%d,"
      "\"ms\":{\"mean\":%.3f,\"p50\":%.3f,\"p90\":%.3f,\"p99\":%.3f,\"min\":%.3f,"
      "\"max\":%.3f}}\n",
      joined.c_str(), namespaces ? "true" : "false", static_cast<unsigned long long>(s.count),
      failures, s.mean_us / 1e3, s.p50_us / 1e3, s.p90_us / 1e3, s.p99_us / 1e3, min_ms,
      s.max_us / 1e3);
  return failures == 0 ? 0 : 1;
}
