#include "sandbox/cgroup.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

namespace kiln::sandbox {
namespace fs = std::filesystem;
namespace {

Status errno_status(const std::string& what, int err) {
  return ServiceError("cgroup: " + what + ": " + std::strerror(err));
}

// Writes value to a cgroup control file. O_CREAT is harmless on cgroupfs (it cannot
// create files) and lets tests use a plain directory tree.
int write_control(const fs::path& file, const std::string& value) {
  // SAFETY: fd is closed on every path.
  int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return errno;
  int err = ::write(fd, value.data(), value.size()) == static_cast<ssize_t>(value.size()) ? 0 : errno;
  ::close(fd);
  return err;
}

// Writes to a control file only if it exists (never creates one in a fake tree).
int write_control_existing(const fs::path& file, const std::string& value) {
  // SAFETY: fd is closed on every path.
  int fd = ::open(file.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return errno;
  int err = ::write(fd, value.data(), value.size()) == static_cast<ssize_t>(value.size()) ? 0 : errno;
  ::close(fd);
  return err;
}

Status write_required(const fs::path& file, const std::string& value) {
  int err = write_control(file, value);
  return err == 0 ? Status::Ok() : errno_status("write " + file.string(), err);
}

std::string read_control(const fs::path& file) {
  std::ifstream in(file);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The value of "key N" in a flat-keyed file (memory.events, memory.oom_control).
uint64_t keyed_value(const std::string& text, std::string_view key) {
  std::istringstream in(text);
  std::string k;
  uint64_t v;
  while (in >> k >> v) {
    if (k == key) return v;
  }
  return 0;
}

bool has_word(const std::string& text, std::string_view word) {
  std::istringstream in(text);
  std::string w;
  while (in >> w) {
    if (w == word) return true;
  }
  return false;
}

Status make_dirs(const fs::path& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  return ec ? ServiceError("cgroup: mkdir " + dir.string() + ": " + ec.message()) : Status::Ok();
}

// v2: enables controllers for the children of dir; moves dir's own processes into
// dir/supervisor when the no-internal-process rule refuses.
Status enable_subtree(const fs::path& dir, const std::string& controllers, bool may_move) {
  int err = write_control(dir / "cgroup.subtree_control", controllers);
  if (err == EBUSY && may_move) {
    fs::path leaf = dir / "supervisor";
    if (Status s = make_dirs(leaf); !s.ok()) return s;
    std::istringstream pids(read_control(dir / "cgroup.procs"));
    std::string pid;
    while (pids >> pid) write_control(leaf / "cgroup.procs", pid);  // exited pids: fine
    err = write_control(dir / "cgroup.subtree_control", controllers);
  }
  return err == 0 ? Status::Ok() : errno_status("enable " + controllers + " in " + dir.string(), err);
}

}  // namespace

std::string data_dir_tag(const fs::path& state_dir) {
  std::error_code ec;
  fs::path abs = fs::weakly_canonical(fs::absolute(state_dir, ec), ec);
  uint64_t h = 1469598103934665603ull;  // FNV-1a
  for (unsigned char c : abs.string()) h = (h ^ c) * 1099511628211ull;
  char out[18];
  std::snprintf(out, sizeof out, "k%016llx", static_cast<unsigned long long>(h));
  return out;
}

uint64_t process_start_time(pid_t pid) {
  std::string stat = read_control("/proc/" + std::to_string(pid) + "/stat");
  size_t at = stat.rfind(')');  // the command name may hold spaces and parentheses
  if (at == std::string::npos || at + 2 > stat.size()) return 0;
  std::istringstream in(stat.substr(at + 2));
  std::string field;
  for (int i = 3; i < 22 && in >> field; ++i) {
  }
  uint64_t start = 0;
  in >> start;
  return start;
}

StatusOr<std::string> cgroup_path_of(std::string_view self_cgroup, std::string_view controller) {
  std::istringstream in{std::string(self_cgroup)};
  std::string line;
  while (std::getline(in, line)) {
    size_t a = line.find(':'), b = line.find(':', a + 1);
    if (a == std::string::npos || b == std::string::npos) continue;
    std::string ctrls = line.substr(a + 1, b - a - 1), path = line.substr(b + 1);
    if (controller.empty()) {
      if (ctrls.empty() && line.compare(0, a, "0") == 0) return path;
      continue;
    }
    std::istringstream cs(ctrls);
    std::string c;
    while (std::getline(cs, c, ',')) {
      if (c == controller) return path;
    }
  }
  return ServiceError("cgroup: no " + std::string(controller.empty() ? "unified" : controller) +
                      " entry in /proc/self/cgroup");
}

StatusOr<CgroupLayout> CgroupLayout::detect(const fs::path& root, std::string_view self_cgroup,
                                            const std::string& prefix) {
  CgroupLayout layout;
  std::string available = read_control(root / "cgroup.controllers");
  if (has_word(available, "memory")) {
    layout.v2_ = true;
    auto self = cgroup_path_of(self_cgroup, "");
    if (!self.ok()) return self.status();
    fs::path own = root / fs::path(*self).relative_path();
    std::string want;
    for (const char* c : {"memory", "pids", "cpu"}) {
      if (has_word(read_control(own / "cgroup.controllers"), c)) want += std::string(want.empty() ? "+" : " +") + c;
    }
    if (want.find("memory") == std::string::npos) {
      return ServiceError("cgroup: the memory controller is not delegated to " + own.string());
    }
    if (Status s = enable_subtree(own, want, /*may_move=*/true); !s.ok()) return s;
    fs::path base = own;
    for (const fs::path& part : fs::path(prefix).relative_path()) {  // each level of the prefix
      base /= part;
      if (Status s = make_dirs(base); !s.ok()) return s;
      if (Status s = enable_subtree(base, want, /*may_move=*/false); !s.ok()) return s;
    }
    layout.bases_.push_back(base);
    layout.controllers_.push_back("");
    return layout;
  }
  for (const char* c : {"memory", "pids", "cpu"}) {
    if (!fs::is_directory(root / c)) {
      if (std::string_view(c) == "memory") return ServiceError("cgroup: no memory controller under " + root.string());
      continue;
    }
    auto self = cgroup_path_of(self_cgroup, c);
    if (!self.ok()) return self.status();
    fs::path base = root / c / fs::path(*self).relative_path() / prefix;
    if (Status s = make_dirs(base); !s.ok()) return s;
    layout.bases_.push_back(base);
    layout.controllers_.push_back(c);
  }
  return layout;
}

StatusOr<SandboxCgroup> CgroupLayout::create(const std::string& id, const CgroupLimits& limits) const {
  auto cg = create_unlimited(id);
  if (!cg.ok()) return cg;
  if (Status s = cg->set_limits(limits); !s.ok()) return s;
  cg->set_cpu(limits);
  return cg;
}

StatusOr<SandboxCgroup> CgroupLayout::create_unlimited(const std::string& id) const {
  SandboxCgroup cg;
  cg.v2_ = v2_;
  for (size_t i = 0; i < bases_.size(); ++i) {
    fs::path dir = bases_[i] / id;
    if (::mkdir(dir.c_str(), 0755) != 0) return errno_status("mkdir " + dir.string(), errno);
    cg.dirs_.push_back(dir);
    cg.controllers_.push_back(controllers_[i]);
    if (v2_ || controllers_[i] == "memory") cg.memory_dir_ = dir;
  }
  for (const fs::path& d : cg.dirs_) {
    UniqueFd fd(::open((d / "cgroup.procs").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
    if (!fd.valid()) return errno_status("open " + (d / "cgroup.procs").string(), errno);
    cg.procs_.push_back(std::move(fd));
  }
  if (v2_) {
    cg.dir_fd_.reset(::open(cg.dirs_[0].c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!cg.dir_fd_.valid()) return errno_status("open " + cg.dirs_[0].string(), errno);
  }
  // Optional: an older v2 kernel has no memory.peak (then the path read finds nothing
  // too). The open file follows the cgroup through rename().
  if (!cg.memory_dir_.empty()) cg.peak_fd_.reset(::open(cg.peak_file().c_str(), O_RDONLY | O_CLOEXEC));
  return cg;
}

Status SandboxCgroup::set_limits(const CgroupLimits& limits) const {
  const std::string mem = std::to_string(limits.memory_bytes);
  const std::string pids = std::to_string(limits.pids_max);
  if (v2_) {
    const fs::path& d = dirs_[0];
    if (Status s = write_required(d / "memory.max", mem); !s.ok()) return s;
    write_control(d / "memory.swap.max", "0");  // absent without swap accounting
    write_control(d / "pids.max", pids);
    return Status::Ok();
  }
  for (size_t i = 0; i < dirs_.size(); ++i) {
    const fs::path& d = dirs_[i];
    if (controllers_[i] == "memory") {
      if (Status s = write_required(d / "memory.limit_in_bytes", mem); !s.ok()) return s;
      // No swap: memsw equal to the limit where swap accounting exists.
      if (write_control(d / "memory.memsw.limit_in_bytes", mem) != 0) {
        write_control(d / "memory.swappiness", "0");
      }
      // v1 does not count socket buffers in memory.limit_in_bytes (v2's memory.max
      // does): without this, one sandbox's TCP queues could pin the host's whole
      // tcp_mem. Bounded by the same amount, so a sandbox holds at most twice its size.
      if (Status s = write_required(d / "memory.kmem.tcp.limit_in_bytes", mem); !s.ok()) return s;
    } else if (controllers_[i] == "pids") {
      if (Status s = write_required(d / "pids.max", pids); !s.ok()) return s;
    }
  }
  return Status::Ok();
}

void SandboxCgroup::set_cpu(const CgroupLimits& limits) const {
  const int64_t quota = std::max<int64_t>(1000, std::llround(limits.vcpus * 100000));
  for (size_t i = 0; i < dirs_.size(); ++i) {
    const fs::path& d = dirs_[i];
    if (v2_) {
      int64_t weight = std::clamp<int64_t>(std::llround(limits.vcpus * 100), 1, 10000);
      write_control(d / "cpu.weight", std::to_string(weight));
      if (limits.cpu_quota) write_control(d / "cpu.max", std::to_string(quota) + " 100000");
    } else if (controllers_[i] == "cpu") {
      int64_t shares = std::max<int64_t>(2, std::llround(limits.vcpus * 1024));
      write_control(d / "cpu.shares", std::to_string(shares));
      if (limits.cpu_quota) write_control(d / "cpu.cfs_quota_us", std::to_string(quota));
    }
  }
}

Status SandboxCgroup::rename(const std::string& name) {
  if (v2_) return Status::Ok();
  for (fs::path& d : dirs_) {
    fs::path to = d.parent_path() / name;
    if (::rename(d.c_str(), to.c_str()) != 0) return errno_status("rename " + d.string(), errno);
    if (d == memory_dir_) memory_dir_ = to;
    d = to;
  }
  return Status::Ok();
}

Status SandboxCgroup::add_process(pid_t pid) const {
  const std::string text = std::to_string(pid);
  for (size_t i = 0; i < procs_.size(); ++i) {
    if (::write(procs_[i].get(), text.data(), text.size()) != static_cast<ssize_t>(text.size())) {
      return errno_status("join " + dirs_[i].string(), errno);
    }
  }
  return Status::Ok();
}

fs::path SandboxCgroup::peak_file() const {
  return memory_dir_ / (v2_ ? "memory.peak" : "memory.max_usage_in_bytes");
}

uint64_t SandboxCgroup::peak_memory_bytes() const {
  if (memory_dir_.empty()) return 0;
  if (peak_fd_.valid()) {
    char buf[32];
    // SAFETY: reads at most sizeof buf - 1 bytes of a file we own into a stack buffer;
    // a control file regenerates its text at offset 0 on every read.
    ssize_t n = ::pread(peak_fd_.get(), buf, sizeof buf - 1, 0);
    if (n <= 0) return 0;
    buf[n] = '\0';
    return std::strtoull(buf, nullptr, 10);
  }
  std::string v = read_control(peak_file());
  return std::strtoull(v.c_str(), nullptr, 10);
}

bool SandboxCgroup::out_of_memory() const {
  if (memory_dir_.empty()) return false;
  if (v2_) return keyed_value(read_control(memory_dir_ / "memory.events"), "oom_kill") > 0;
  std::string oom = read_control(memory_dir_ / "memory.oom_control");
  if (oom.find("oom_kill ") != std::string::npos) return keyed_value(oom, "oom_kill") > 0;
  return std::strtoull(read_control(memory_dir_ / "memory.failcnt").c_str(), nullptr, 10) > 0;
}

Status SandboxCgroup::remove() {
  procs_.clear();
  dir_fd_.reset();
  peak_fd_.reset();
  Status result;
  for (auto it = dirs_.rbegin(); it != dirs_.rend(); ++it) {
    // A cgroup is busy for a moment after its last task was reaped; bounded retry.
    int err = 0;
    for (int attempt = 0; attempt < 200; ++attempt) {
      if (::rmdir(it->c_str()) == 0 || errno == ENOENT) {
        err = 0;
        break;
      }
      err = errno;
      if (err != EBUSY) break;
      std::this_thread::sleep_for(std::chrono::microseconds(250));
    }
    if (err != 0 && result.ok()) result = errno_status("rmdir " + it->string(), err);
  }
  dirs_.clear();
  memory_dir_.clear();
  return result;
}

void CgroupLayout::remove_bases() const {
  for (const fs::path& b : bases_) ::rmdir(b.c_str());  // busy while a sandbox outlives us
}

namespace {

std::vector<pid_t> pids_in(const fs::path& dir) {
  std::vector<pid_t> pids;
  std::istringstream in(read_control(dir / "cgroup.procs"));
  pid_t pid;
  while (in >> pid) pids.push_back(pid);
  return pids;
}

// SIGKILLs every process listed in dir/cgroup.procs. A pid is pinned with a pidfd and
// signalled only if it is still listed after that, so a recycled pid of a process
// outside the cgroup is never signalled.
void kill_members(const fs::path& dir) {
  for (pid_t pid : pids_in(dir)) {
    UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
    if (!pidfd.valid()) continue;  // already gone
    const std::vector<pid_t> now = pids_in(dir);
    if (std::find(now.begin(), now.end(), pid) == now.end()) continue;
    ::syscall(SYS_pidfd_send_signal, pidfd.get(), SIGKILL, nullptr, 0);
  }
}

// dir and every cgroup below it, children before their parents.
void post_order(const fs::path& dir, std::vector<fs::path>& out) {
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    if (e.is_directory(ec) && !e.is_symlink(ec)) post_order(e.path(), out);
  }
  out.push_back(dir);
}

}  // namespace

bool kill_cgroup_tree(const fs::path& dir, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    std::vector<fs::path> dirs;
    post_order(dir, dirs);
    for (const fs::path& d : dirs) {
      // v2 (5.14+): one write kills the whole subtree, forks included.
      if (write_control_existing(d / "cgroup.kill", "1") != 0) kill_members(d);
    }
    for (const fs::path& d : dirs) ::rmdir(d.c_str());
    std::error_code ec;
    if (!fs::exists(dir, ec)) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));  // exits are asynchronous
  }
}

}  // namespace kiln::sandbox
