// The jail backend, parent side: prepares everything a jail's first process needs,
// clones it into fresh namespaces, completes its user namespace and waits for its exec.
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
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <deque>
#include <fstream>
#include <mutex>
#include <optional>
#include <sstream>
#include <unordered_map>

#include "common/log.h"
#include "sandbox/cgroup.h"
#include "sandbox/jail_child.h"
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

// SAFETY: pidfd refers to our unreaped child; waitid on it cannot reap anything else.
void kill_and_reap(int pidfd) {
  ::syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, nullptr, 0);
  siginfo_t info{};
  while (::waitid(static_cast<idtype_t>(P_PIDFD), pidfd, &info, WEXITED | __WALL) != 0 &&
         errno == EINTR) {
  }
}

class JailSandbox final : public Sandbox {
 public:
  JailSandbox(std::string id, UniqueFd pidfd, UniqueFd api, SandboxCgroup cgroup)
      : id_(std::move(id)), pidfd_(std::move(pidfd)), api_(std::move(api)),
        cgroup_(std::move(cgroup)) {}
  ~JailSandbox() override { destroy(); }

  const std::string& id() const override { return id_; }
  int runtime_api_fd() const override { return api_.get(); }
  int exit_fd() const override { return pidfd_.get(); }
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
  }

 private:
  std::string id_;
  UniqueFd pidfd_;
  UniqueFd api_;
  SandboxCgroup cgroup_;
  uint64_t peak_memory_ = 0;
  bool out_of_memory_ = false;
};

// The strings and arrays a JailChildPlan points into; lives until the child has execed.
struct PlanStorage {
  std::deque<std::string> strings;
  std::vector<MountOp> mounts;
  std::vector<const char*> argv, envp;
  const char* keep(std::string s) { return strings.emplace_back(std::move(s)).c_str(); }
  void bind(const std::string& src, const std::string& dst) {
    mounts.push_back({MountOp::kMount, keep(src), keep(dst), nullptr, MS_BIND, nullptr});
  }
};

class JailBackend final : public SandboxBackend {
 public:
  explicit JailBackend(JailOptions o) : opts_(std::move(o)) { ready_ = prepare(); }
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

    CgroupLimits limits;
    limits.memory_bytes = uint64_t{spec.memory_mb} << 20;
    limits.pids_max = opts_.pids_max;
    limits.vcpus = spec.memory_mb / 1769.0;
    limits.cpu_quota = opts_.cpu_quota;
    auto cgroup = cgroups_->create(spec.id, limits);
    if (!cgroup.ok()) return cgroup.status();

    UniqueFd host_api;  // with allow_network: the Runtime API listener on the host
    std::string api_env;
    if (opts_.allow_network) {
      auto l = listen_on_host(api_env);
      if (!l.ok()) return l.status();
      host_api = std::move(*l);
    }
    PlanStorage st;
    JailChildPlan plan;
    if (Status s = build_plan(spec, *cgroup, api_env, st, plan); !s.ok()) return s;
    return start(spec, *host_id, std::move(*cgroup), std::move(host_api), st, plan);
  }

 private:
  Status prepare() {
    if (opts_.state_dir.empty()) return ServiceError("jail: no state directory");
    auto sk = prepare_root_skeleton(opts_.state_dir);
    if (!sk.ok()) return sk.status();
    skeleton_ = std::move(*sk);
    auto cg = CgroupLayout::detect(opts_.cgroup_root, read_text("/proc/self/cgroup"),
                                   opts_.cgroup_prefix);
    if (!cg.ok()) return cg.status();
    cgroups_ = std::move(*cg);
    auto filter = build_seccomp_filter();
    if (!filter.ok()) return filter.status();
    filter_ = std::move(*filter);
    seccomp_.len = static_cast<unsigned short>(filter_.size());
    seccomp_.filter = filter_.data();
    landlock_abi_ = landlock_abi();
    cap_last_cap_ = std::atoi(read_text("/proc/sys/kernel/cap_last_cap").c_str());
    if (cap_last_cap_ <= 0) cap_last_cap_ = 63;
    // mount_setattr (5.12+) makes the whole tree read-only in one call; EBADF = present.
    has_mount_setattr_ = ::syscall(SYS_mount_setattr, -1, "", 0, nullptr, 0) != 0 && errno != ENOSYS;
    return Status::Ok();
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

  Status build_plan(const SandboxSpec& spec, const SandboxCgroup& cgroup, const std::string& api_env,
                    PlanStorage& st, JailChildPlan& plan) const {
    const std::string root = skeleton_.dir.string();
    const unsigned long ro = MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV;
    std::vector<const char*> read_only;  // targets to remount when mount_setattr is missing
    st.mounts.push_back({MountOp::kMount, nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr});
    st.bind(root, root);
    read_only.push_back(st.mounts.back().target);
    auto bind_ro = [&](const std::string& src, const std::string& inside) {
      st.bind(src, root + inside);
      read_only.push_back(st.mounts.back().target);
    };
    for (const auto& [host, inside] : skeleton_.system_binds) bind_ro(host, inside);
    bind_ro(spec.code_dir.string(), "/var/task");
    bind_ro(spec.runtime_dir.string(), "/var/runtime");
    if (spec.layer_dirs.size() == 1) {
      bind_ro(spec.layer_dirs[0].string(), "/opt");
    } else if (spec.layer_dirs.size() > 1) {
      // Later layers win, as in Lambda: overlayfs lists the topmost lower dir first.
      std::string lower = "lowerdir=";
      for (auto it = spec.layer_dirs.rbegin(); it != spec.layer_dirs.rend(); ++it) {
        const std::string p = it->string();
        if (p.find_first_of(":,\\") != std::string::npos) {
          return InvalidParameterValue("layer path has ':' or ',': " + p);
        }
        lower += (it == spec.layer_dirs.rbegin() ? "" : ":") + p;
      }
      st.mounts.push_back({MountOp::kMount, "overlay", st.keep(root + "/opt"), "overlay",
                           MS_RDONLY | MS_NOSUID | MS_NODEV, st.keep(lower)});
    }
    if (has_mount_setattr_) {
      st.mounts.push_back({MountOp::kReadOnlyTree, nullptr, st.keep(root), nullptr, 0, nullptr});
    } else {
      for (const char* t : read_only) st.mounts.push_back({MountOp::kMount, nullptr, t, nullptr, ro, nullptr});
    }
    for (const std::string& dev : skeleton_.devices) st.bind(dev, root + dev);
    st.mounts.push_back({MountOp::kMount, "tmpfs", st.keep(root + "/tmp"), "tmpfs",
                         MS_NOSUID | MS_NODEV,
                         st.keep("size=" + std::to_string(spec.ephemeral_mb) + "m,mode=1777")});
    st.mounts.push_back({MountOp::kMount, "proc", st.keep(root + "/proc"), "proc",
                         MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr});

    for (const std::string& a : spec.argv) st.argv.push_back(st.keep(a));
    st.argv.push_back(nullptr);
    for (const std::string& e : spec.env) {
      bool is_api = e.rfind("AWS_LAMBDA_RUNTIME_API=", 0) == 0;
      if (!(is_api && !api_env.empty())) st.envp.push_back(st.keep(e));
    }
    if (!api_env.empty()) st.envp.push_back(st.keep(api_env));
    st.envp.push_back(nullptr);
    plan.new_root = st.keep(root);
    plan.mounts = st.mounts.data();
    plan.mount_count = st.mounts.size();
    plan.own_network = !opts_.allow_network;
    plan.api_port = spec.runtime_api_port;
    plan.output_fd = spec.output_fd;
    plan.max_open_files = opts_.max_open_files;
    plan.max_file_bytes = uint64_t{spec.ephemeral_mb} << 20;
    plan.argv = st.argv.data();
    plan.envp = st.envp.data();
    plan.seccomp = &seccomp_;
    plan.landlock_abi = landlock_abi_;
    plan.cap_last_cap = cap_last_cap_;
    return Status::Ok();
  }

  // Turns a child's failure report into the Status create() returns.
  static Status child_failure(const ChildReport& r, const JailChildPlan& plan, const SandboxSpec& spec) {
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

  // Receives one report (and a passed fd) from the child; false on EOF, timeout or error.
  static bool receive(int fd, ChildReport& r, UniqueFd* passed, bool& eof) {
    eof = false;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, kSetupTimeoutMs) != 1) return false;
    iovec iov{&r, sizeof r};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    ssize_t n = ::recvmsg(fd, &msg, MSG_CMSG_CLOEXEC);
    if (n == 0) eof = true;
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

  static Status write_id_map(pid_t pid, const char* file, uint32_t host_id) {
    std::string path = "/proc/" + std::to_string(pid) + "/" + file;
    std::string line = "0 " + std::to_string(host_id) + " 1\n";
    UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
    if (!fd.valid() || ::write(fd.get(), line.data(), line.size()) != static_cast<ssize_t>(line.size())) {
      return errno_status(std::string("write ") + file, errno);
    }
    return Status::Ok();
  }

  // Drives the child from clone to exec: joins it to its cgroups (overlapping its mount
  // work), receives the Runtime API socket, writes the uid/gid maps, lets it finish
  // and waits for exec (EOF on the control socket) or its failure report.
  static Status handshake(const SandboxSpec& spec, const JailChildPlan& plan,
                          const SandboxCgroup& cgroup, pid_t pid, uint32_t host_id, int control,
                          UniqueFd& passed) {
    if (cgroup.clone_into_fd() < 0) {
      if (Status s = cgroup.add_process(pid); !s.ok()) return s;
    }
    ChildReport report{};
    bool eof = false;
    if (!receive(control, report, &passed, eof)) {
      return ServiceError(eof ? "jail: setup process died" : "jail: setup timed out");
    }
    if (report.kind != ChildReport::kUserNsReady) return child_failure(report, plan, spec);
    if (Status s = write_id_map(pid, "uid_map", host_id); !s.ok()) return s;
    if (Status s = write_id_map(pid, "gid_map", host_id); !s.ok()) return s;
    if (::send(control, "g", 1, MSG_NOSIGNAL) != 1) return errno_status("resume setup", errno);
    if (receive(control, report, nullptr, eof)) return child_failure(report, plan, spec);
    return eof ? Status::Ok() : ServiceError("jail: setup timed out");
  }

  StatusOr<std::unique_ptr<Sandbox>> start(const SandboxSpec& spec, uint32_t host_id,
                                           SandboxCgroup cgroup, UniqueFd api,
                                           PlanStorage& st, JailChildPlan& plan) {
    int pair[2];
    if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) != 0) {
      return errno_status("socketpair", errno);
    }
    UniqueFd parent_end(pair[0]), child_end(pair[1]);
    plan.control_fd = child_end.get();
    plan.parent_control_fd = parent_end.get();

    int pidfd = -1;
    clone_args args{};
    args.flags = CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_PIDFD |
                 (plan.own_network ? CLONE_NEWNET : 0);
    args.pidfd = reinterpret_cast<uint64_t>(&pidfd);
    args.exit_signal = 0;  // no SIGCHLD: nobody else's waitpid(-1) can reap a sandbox
    if (cgroup.clone_into_fd() >= 0) {
      args.flags |= CLONE_INTO_CGROUP;
      args.cgroup = static_cast<uint64_t>(cgroup.clone_into_fd());
    }
    // SAFETY: fork-like clone (no CLONE_VM); the child only runs run_jail_child, which
    // makes system calls on memory prepared above and never returns.
    long pid = ::syscall(SYS_clone3, &args, sizeof args);
    if (pid == 0) run_jail_child(plan);
    if (pid < 0) return errno_status("clone3", errno);
    UniqueFd process(pidfd);
    child_end.reset();

    UniqueFd passed;
    Status failure = handshake(spec, plan, cgroup, static_cast<pid_t>(pid), host_id,
                               parent_end.get(), passed);
    if (!failure.ok()) {
      kill_and_reap(process.get());
      return failure;  // the cgroup is removed as it goes out of scope
    }
    if (plan.own_network) api = std::move(passed);
    return std::unique_ptr<Sandbox>(std::make_unique<JailSandbox>(
        spec.id, std::move(process), std::move(api), std::move(cgroup)));
  }

  JailOptions opts_;
  Status ready_;
  RootSkeleton skeleton_;
  std::optional<CgroupLayout> cgroups_;
  std::vector<sock_filter> filter_;
  sock_fprog seccomp_{};
  int landlock_abi_ = 0;
  int cap_last_cap_ = 63;
  bool has_mount_setattr_ = false;
  std::mutex mu_;
  std::unordered_map<std::string, uint32_t> tenants_;  // GUARDED_BY(mu_): tenant -> uid offset
};

}  // namespace

std::unique_ptr<SandboxBackend> make_jail_backend(JailOptions options) {
  return std::make_unique<JailBackend>(std::move(options));
}

}  // namespace kiln::sandbox
