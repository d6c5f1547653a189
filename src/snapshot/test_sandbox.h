// Test-only stand-in for Kiln's jail: a process that is pid 1 of a new pid namespace, in a
// new mount namespace chroot()ed into a small root (/usr, /etc, /dev bound from the host,
// a fresh /proc, and /snapdata bound from a host directory), so that the paths the
// process sees differ from the host's. Uses the host network namespace.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "common/unique_fd.h"
#include "snapshot/snapshot.h"

namespace kiln::snapshot::testing {

struct TestRoot {
  std::filesystem::path base;      // temp dir
  std::filesystem::path root;      // chroot skeleton
  std::filesystem::path data;      // host dir shown at /snapdata
  std::filesystem::path images;    // where tests put images
  static TestRoot make();
  void remove() const;
};

struct Sandboxed {
  pid_t pid = -1;     // host pid
  UniqueFd stdin_w;   // its fd 0
  UniqueFd stdout_r;  // its fd 1 and 2
  std::string pending;
  // Reads one line with a generous bound; nullopt on EOF/timeout.
  std::optional<std::string> read_line(std::chrono::milliseconds timeout = std::chrono::seconds(30));
  bool send(const std::string& s);
  // SIGKILL + reap.
  void kill_and_reap();
};

// Starts argv[0] (a path inside the sandbox) with argv in a new sandbox.
Sandboxed start_process(const TestRoot& r, const std::vector<std::string>& argv);
// Starts the restore stub with the image's fds in a new sandbox (before complete_restore).
// eager: run the stub with --eager (saved anonymous pages copied at restore).
Sandboxed start_stub(const TestRoot& r, RestoreFds& fds, bool eager = false);
// open_image + start_stub + complete_restore. On failure the stub is reaped and pid = -1.
Status restore_into(const TestRoot& r, const std::filesystem::path& image, std::string_view replay, Sandboxed& out,
                    bool eager = false);

std::filesystem::path stub_path();

// A minimal "Runtime API" for tests: one listening socket on 127.0.0.1 (ephemeral port).
struct TestApi {
  UniqueFd listener;
  uint16_t port = 0;
  static TestApi make();
  // Accepts one connection (bounded wait); invalid on timeout.
  UniqueFd accept_one(std::chrono::milliseconds timeout = std::chrono::seconds(30));
  // Reads one HTTP request (head + Content-Length body); nullopt on EOF/timeout.
  static std::optional<std::string> read_request(int fd, std::chrono::milliseconds timeout = std::chrono::seconds(30));
  static bool respond(int fd, int status, const std::string& body);
};

// True once thread `pid` sits in syscall `nr` (per /proc/PID/syscall); bounded wait.
bool wait_in_syscall(pid_t pid, long nr, std::chrono::milliseconds timeout = std::chrono::seconds(60));  // the built kiln-restore

}  // namespace kiln::snapshot::testing
