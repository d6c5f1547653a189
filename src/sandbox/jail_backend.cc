// The jail backend, parent side: prepares what every jail's first process needs, keeps a
// pool of shells (jail_shell.h), and activates one per create(): hands it the tenant's
// mounts and spec, completes its user namespace and waits for its exec.
// The child side is jail_child.cc; the policy pieces are cgroup.cc, root_skeleton.cc,
// seccomp_policy.cc and landlock.cc.
#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <deque>
#include <fstream>
#include <mutex>
#include <optional>
#include <sstream>
#include <unordered_map>

#include "common/log.h"
#include "sandbox/cgroup.h"
#include "sandbox/jail_activation.h"
#include "sandbox/jail_child.h"
#include "sandbox/jail_shell.h"
#include "sandbox/landlock.h"
#include "sandbox/root_skeleton.h"
#include "sandbox/sandbox.h"
#include "sandbox/seccomp_policy.h"
#include "sandbox/unique_fd.h"

namespace kiln::sandbox {
namespace fs = std::filesystem;
namespace {

constexpr int kSetupTimeoutMs = 10000;  // a jail that takes this long to exec is broken

Status errno_status(const std::string& what, int err) {
  return ServiceError("jail: " + what + ": " + std::strerror(err));
}

bool valid_id(const std::string& id) {
  if (id.empty() || id.size() > 64) return false;
  for (char c : id) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) return false;
  }
  return true;
}

std::string read_text(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string owner_name(pid_t pid, uint64_t start_time) {
  return std::to_string(pid) + "." + std::to_string(start_time);
}

class JailSandbox final : public Sandbox {
 public:
  JailSandbox(std::string id, pid_t pid, UniqueFd pidfd, UniqueFd api, SandboxCgroup cgroup,
              UniqueFd mount_ns, std::shared_ptr<NamespaceReaper> reaper)
      : id_(std::move(id)), pid_(pid), pidfd_(std::move(pidfd)), api_(std::move(api)),
        cgroup_(std::move(cgroup)), mount_ns_(std::move(mount_ns)), reaper_(std::move(reaper)) {}
  ~JailSandbox() override { destroy(); }

  const std::string& id() const override { return id_; }
  int runtime_api_fd() const override { return api_.get(); }
  int exit_fd() const override { return pidfd_.get(); }
  pid_t host_pid() const override { return pidfd_.valid() ? pid_ : -1; }
  uint64_t max_memory_bytes() const override {
    return pidfd_.valid() ? cgroup_.peak_memory_bytes() : peak_memory_;
  }
  bool out_of_memory() const override {
    return pidfd_.valid() ? cgroup_.out_of_memory() : out_of_memory_;
  }

  void destroy() override {
    if (!pidfd_.valid()) return;
    // Killing pid 1 of the sandbox's pid namespace kills every process in it, and the
    // kernel reaps them all before pid 1 itself can be reaped.
    kill_and_reap(pidfd_.get());
    peak_memory_ = cgroup_.peak_memory_bytes();
    out_of_memory_ = cgroup_.out_of_memory();
    if (Status s = cgroup_.remove(); !s.ok()) log::warn("sandbox " + id_ + ": " + s.message());
    pidfd_.reset();
    api_.reset();  // the last reference to the network namespace
    // No process is left in the mount namespace: nothing can reach its mounts or /tmp.
    // Unmounting them waits for a grace period, so the reaper does it off this thread.
    reaper_->release(std::move(mount_ns_));
  }

 private:
  std::string id_;
  pid_t pid_;  // unreaped while pidfd_ is valid, so it names no other process
  UniqueFd pidfd_;
  UniqueFd api_;
  SandboxCgroup cgroup_;
  UniqueFd mount_ns_;
  std::shared_ptr<NamespaceReaper> reaper_;
  uint64_t peak_memory_ = 0;
  bool out_of_memory_ = false;
};

// The strings and mount list the backend's ShellPlan points into; lives with the backend.
struct PlanStorage {
  std::deque<std::string> strings;
  std::vector<MountOp> mounts;
  const char* keep(std::string s) { return strings.emplace_back(std::move(s)).c_str(); }
  void bind(const std::string& src, const std::string& dst) {
    mounts.push_back({MountOp::kMount, keep(src), keep(dst), nullptr, MS_BIND, nullptr});
  }
  // Opens dir as fd number `fd` in the shell (see MountOp::kOpenPath).
  void open_path(const std::string& dir, int fd) {
    mounts.push_back({MountOp::kOpenPath, keep(dir), nullptr, nullptr, 0, nullptr, fd});
  }
  // A read-only overlay at dst of the dirs opened as fds upper (top) and lower.
  void overlay(int upper, int lower, const std::string& dst) {
    const std::string data = "lowerdir=/proc/self/fd/" + std::to_string(upper) + ":/proc/self/fd/" +
                             std::to_string(lower);
    mounts.push_back({MountOp::kMount, "kiln", keep(dst), "overlay", MS_RDONLY | MS_NOSUID | MS_NODEV,
                      keep(data)});
  }
};

class JailBackend final : public SandboxBackend {
 public:
  explicit JailBackend(JailOptions o) : opts_(std::move(o)) {
    ready_ = prepare();
    if (ready_.ok()) {
      pool_ = std::make_unique<ShellPool>(opts_.pool_size, [this] { return new_shell(); });
      if (opts_.pool_size > 0) pool_->wait_full();  // a full pool from the first create()
    }
  }
  ~JailBackend() override {
    pool_.reset();  // the shells' cgroups first
    if (cgroups_) cgroups_->remove_bases();
  }
  const char* name() const override { return "jail"; }

  StatusOr<std::unique_ptr<Sandbox>> create(const SandboxSpec& spec) override {
    if (!ready_.ok()) return ready_;
    if (!valid_id(spec.id)) return InvalidParameterValue("sandbox id must match [a-z0-9-]{1,64}");
    if (spec.tenant.empty()) return InvalidParameterValue("sandbox tenant is empty");
    if (spec.argv.empty() || spec.argv[0].empty() || spec.argv[0][0] != '/') {
      return InvalidParameterValue("sandbox argv[0] must be an absolute path");
    }
    for (const fs::path& d : {spec.code_dir, spec.runtime_dir}) {
      if (!fs::is_directory(d)) return ServiceError("jail: not a directory: " + d.string());
    }
    auto host_id = host_id_for(spec.tenant);
    if (!host_id.ok()) return host_id.status();

    UniqueFd host_api;  // with allow_network: the Runtime API listener on the host
    std::string api_env;
    if (opts_.allow_network) {
      auto l = listen_on_host(api_env);
      if (!l.ok()) return l.status();
      host_api = std::move(*l);
    }
    auto message = build_activation(spec, api_env, *host_id, opts_.max_open_files, empty_dir_.get());
    if (!message.ok()) return message.status();

    std::optional<Shell> shell = pool_->take();
    if (!shell) {
      auto started = new_shell();
      if (!started.ok()) return started.status();
      shell.emplace(std::move(*started));
    }
    CgroupLimits limits;
    limits.memory_bytes = uint64_t{spec.memory_mb} << 20;
    limits.pids_max = opts_.pids_max;
    limits.vcpus = spec.memory_mb / 1769.0;
    limits.cpu_quota = opts_.cpu_quota;
    if (Status s = shell->cgroup().rename(spec.id); !s.ok()) return s;  // the shell is discarded
    if (Status s = shell->cgroup().set_limits(limits); !s.ok()) return s;

    UniqueFd passed;
    if (Status s = handshake(spec, *message, *shell, passed); !s.ok()) return s;
    shell->cgroup().set_cpu(limits);  // the runtime's share from here; setup ran at Kiln's
    UniqueFd api = opts_.allow_network ? std::move(host_api) : std::move(passed);
    const pid_t pid = shell->pid();
    UniqueFd process = shell->release_process();
    return std::unique_ptr<Sandbox>(std::make_unique<JailSandbox>(
        spec.id, pid, std::move(process), std::move(api), std::move(shell->cgroup()),
        shell->release_mount_ns(), reaper_));
  }

 private:
  Status prepare() {
    if (opts_.state_dir.empty()) return ServiceError("jail: no state directory");
    auto sk = prepare_root_skeleton(opts_.state_dir);
    if (!sk.ok()) return sk.status();
    skeleton_ = std::move(*sk);
    empty_dir_.reset(::open(skeleton_.empty.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!empty_dir_.valid()) return errno_status("open " + skeleton_.empty.string(), errno);
    if (Status s = install_restore_stub(); !s.ok()) return s;
    static std::atomic<uint32_t> backends{0};
    const uint32_t backend_number = backends++;
    const std::string tag = data_dir_tag(opts_.state_dir);
    const std::string instance = tag + "-" + owner_name(::getpid(), process_start_time(::getpid())) +
                                 "-" + std::to_string(backend_number);
    auto cg = CgroupLayout::detect(opts_.cgroup_root, read_text("/proc/self/cgroup"),
                                   opts_.cgroup_prefix + "/" + instance);
    if (!cg.ok()) return cg.status();
    cgroups_ = std::move(*cg);
    remove_leftover_cgroups(tag);
    auto filter = build_seccomp_filter();
    if (!filter.ok()) return filter.status();
    filter_ = std::move(*filter);
    seccomp_.len = static_cast<unsigned short>(filter_.size());
    seccomp_.filter = filter_.data();
    // The new mount API (open_tree, move_mount: 5.2; mount_setattr: 5.12) hands each
    // shell its tenant's directories after it has left the host's root.
    if (::syscall(SYS_mount_setattr, -1, "", 0, nullptr, 0) == 0 || errno == ENOSYS) {
      return ServiceError("jail: needs Linux 5.12 or later (mount_setattr)");
    }
    build_shell_plan();
    // Forked now, while Kiln is small; shells are cloned from it (jail_zygote.h).
    if (opts_.use_zygote) {
      auto z = ShellZygote::start(plan_);
      if (!z.ok()) return z.status();
      zygote_ = std::move(*z);
    }
    shell_prefix_ = "shell-";
    return Status::Ok();
  }

  // Cgroups outlive a Kiln that is killed or exits without destroying its backend, and
  // so may its sandboxes (if the death signal was missed: see jail_child.h). At start,
  // every instance directory of this data directory (<prefix>/<tag>-*) whose owning
  // process is gone (pid and start time) is emptied (its processes SIGKILLed) and
  // removed. Other data directories' instances (another tag) and live owners (another
  // backend of this process, or a Kiln still running) are never touched. Shell cgroups
  // of the layout before instances (<prefix>/shell-<pid>-*) are removed when empty and
  // their Kiln is gone.
  void remove_leftover_cgroups(const std::string& tag) const {
    for (const fs::path& base : cgroups_->bases()) {
      std::error_code ec;
      for (const auto& e : fs::directory_iterator(base.parent_path(), ec)) {
        const std::string name = e.path().filename().string();
        if (name.rfind("shell-", 0) == 0) {
          const pid_t owner = static_cast<pid_t>(std::atoi(name.c_str() + 6));
          if (owner <= 0 || (::kill(owner, 0) != 0 && errno == ESRCH)) ::rmdir(e.path().c_str());
          continue;
        }
        if (name.size() <= tag.size() || name.compare(0, tag.size() + 1, tag + "-") != 0) continue;
        // <tag>-<pid>.<start time>-<backend>
        const std::string owner = name.substr(tag.size() + 1, name.rfind('-') - tag.size() - 1);
        const pid_t pid = static_cast<pid_t>(std::atoi(owner.c_str()));
        if (pid > 0 && owner_name(pid, process_start_time(pid)) == owner) continue;  // alive
        if (kill_cgroup_tree(e.path(), std::chrono::seconds(10))) {
          log::info("jail: removed the cgroups of a Kiln that is gone: " + e.path().string());
        } else {
          log::warn("jail: cannot empty the leftover cgroup " + e.path().string());
        }
      }
    }
  }

  // The snapshot restorer runs inside sandboxes as kRestoreStubPath: a copy in the
  // skeleton (written beside, then renamed over, so a running copy is never changed).
  Status install_restore_stub() const {
    if (opts_.restore_stub.empty()) return Status::Ok();
    const fs::path dir = skeleton_.dir / fs::path(kRestoreStubPath).parent_path().relative_path();
    const fs::path dst = skeleton_.dir / fs::path(kRestoreStubPath).relative_path();
    const fs::path tmp = dst.string() + ".new";
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (!ec) fs::copy_file(opts_.restore_stub, tmp, fs::copy_options::overwrite_existing, ec);
    if (!ec) {
      fs::permissions(tmp, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                               fs::perms::others_read | fs::perms::others_exec, ec);
    }
    if (!ec) fs::rename(tmp, dst, ec);
    if (ec) return ServiceError("jail: install " + opts_.restore_stub.string() + ": " + ec.message());
    return Status::Ok();
  }

  // What every shell does before activation: the skeleton root, read-only, with its
  // devices and /proc; /tmp and the tenant's directories come at activation.
  void build_shell_plan() {
    const std::string root = skeleton_.dir.string();
    PlanStorage& st = plan_storage_;
    st.mounts.push_back({MountOp::kMount, nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr});
    // Overlays, not binds: each shell gets its own inodes (locks taken inside stay
    // inside) and a mount table that names no host path (root "/", layers by fd).
    const int empty = kFirstPlanFd, skeleton = kFirstPlanFd + 1;
    st.open_path(skeleton_.empty.string(), empty);
    st.open_path(root, skeleton);
    st.overlay(skeleton, empty, root);
    int next_fd = skeleton + 1;
    for (const auto& [host, inside] : skeleton_.system_binds) {
      st.open_path(host, next_fd);
      st.overlay(next_fd++, empty, root + inside);
    }
    st.mounts.push_back({MountOp::kReadOnlyTree, nullptr, st.keep(root), nullptr, 0, nullptr});
    for (const std::string& dev : skeleton_.devices) st.bind(dev, root + dev);
    st.mounts.push_back({MountOp::kMount, "proc", st.keep(root + "/proc"), "proc",
                         MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr});
    plan_.new_root = st.keep(root);
    plan_.mounts = st.mounts.data();
    plan_.mount_count = st.mounts.size();
    plan_.own_network = !opts_.allow_network;
    plan_.seccomp = &seccomp_;
    plan_.landlock_abi = landlock_abi();
    int last = std::atoi(read_text("/proc/sys/kernel/cap_last_cap").c_str());
    plan_.cap_last_cap = last > 0 ? last : 63;
    errno = 0;
    int nice = ::getpriority(PRIO_PROCESS, 0);  // the calling thread's
    plan_.nice = errno == 0 ? nice : 0;
  }

  StatusOr<Shell> new_shell() {
    return start_shell(plan_, *cgroups_, shell_prefix_ + std::to_string(next_shell_++),
                       zygote_.get());
  }

  StatusOr<uint32_t> host_id_for(const std::string& tenant) {
    std::lock_guard<std::mutex> lock(mu_);
    auto [it, inserted] = tenants_.emplace(tenant, static_cast<uint32_t>(tenants_.size()));
    if (it->second >= opts_.uid_count) {
      tenants_.erase(it);
      return ServiceError("jail: no host uid left for another tenant");
    }
    return opts_.uid_base + it->second;
  }

  StatusOr<UniqueFd> listen_on_host(std::string& api_env) {
    UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (!fd.valid() || ::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::listen(fd.get(), 128) != 0 ||
        ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      return errno_status("runtime api socket", errno);
    }
    api_env = "AWS_LAMBDA_RUNTIME_API=127.0.0.1:" + std::to_string(ntohs(addr.sin_port));
    return fd;
  }

  // Turns a child's failure report into the Status create() returns.
  static Status child_failure(const ChildReport& r, const ShellPlan& plan, const SandboxSpec& spec) {
    if (r.stage == kStageExec) {
      return Status(502, "Runtime.InvalidEntrypoint",
                    "cannot start " + spec.argv[0] + ": " + std::strerror(r.err));
    }
    std::string what = jail_stage_name(r.stage);
    if (r.stage == kStageMount && r.detail >= 0 && static_cast<size_t>(r.detail) < plan.mount_count) {
      const char* t = plan.mounts[r.detail].target;
      what += std::string(" ") + (t ? t : "?");
    }
    return errno_status(what, r.err);
  }

  // Receives one report (and a passed fd) from the child; false at EOF or on error.
  static bool receive(int fd, ChildReport& r, UniqueFd* passed) {
    iovec iov{&r, sizeof r};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    ssize_t n = ::recvmsg(fd, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
    if (n != sizeof r) return false;
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS && passed) {
        int got;
        std::memcpy(&got, CMSG_DATA(c), sizeof got);
        passed->reset(got);
      }
    }
    return true;
  }

  // Activates the shell and waits for its exec: the control socket hangs up when exec
  // closes the shell's end (or when the shell exits after a failure). Then the queued
  // reports say which: kReady (with the Runtime API socket) and no kFailed = started.
  // One wake-up each way, as for a plain fork and exec.
  Status handshake(const SandboxSpec& spec, const ActivationMessage& message, Shell& shell,
                   UniqueFd& passed) const {
    const int control = shell.control();
    bool sent = send_activation(control, spec.output_fd, message);
    int send_err = errno;
    pollfd p{control, 0, 0};  // no events: only POLLHUP (or POLLERR) ends the wait
    int ready;
    while ((ready = ::poll(&p, 1, kSetupTimeoutMs)) < 0 && errno == EINTR) {
    }
    if (ready == 0) return ServiceError("jail: setup timed out");
    ChildReport report{};
    bool started = false;
    while (receive(control, report, &passed)) {
      if (report.kind == ChildReport::kFailed) return child_failure(report, plan_, spec);
      started = report.kind == ChildReport::kReady;
    }
    if (!sent) return errno_status("activate shell", send_err);
    return started ? Status::Ok() : ServiceError("jail: setup process died");
  }

  JailOptions opts_;
  Status ready_;
  RootSkeleton skeleton_;
  UniqueFd empty_dir_;  // skeleton_.empty: the bottom layer of the tenant's overlays
  std::optional<CgroupLayout> cgroups_;
  std::vector<sock_filter> filter_;
  sock_fprog seccomp_{};
  PlanStorage plan_storage_;
  ShellPlan plan_;  // points into plan_storage_, seccomp_
  std::string shell_prefix_;  // cgroup names of this backend's shells: <prefix><n>
  std::atomic<uint64_t> next_shell_{0};
  std::mutex mu_;
  std::unordered_map<std::string, uint32_t> tenants_;  // GUARDED_BY(mu_): tenant -> uid offset
  std::unique_ptr<ShellZygote> zygote_;  // outlives the pool that uses it
  std::shared_ptr<NamespaceReaper> reaper_ = std::make_shared<NamespaceReaper>();  // shared with sandboxes
  std::unique_ptr<ShellPool> pool_;  // last: stopped before everything its shells use
};

}  // namespace

std::unique_ptr<SandboxBackend> make_jail_backend(JailOptions options) {
  return std::make_unique<JailBackend>(std::move(options));
}

}  // namespace kiln::sandbox
