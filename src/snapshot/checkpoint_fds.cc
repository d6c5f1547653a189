// The fd half of a checkpoint: one FdRec per fd, refusing what cannot be restored.
#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/kcmp.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <sstream>

#include "common/unique_fd.h"
#include "snapshot/checkpoint_parts.h"
#include "snapshot/ptrace_util.h"

namespace kiln::snapshot {
namespace {

std::string field(const std::string& info, const std::string& name) {
  std::istringstream in(info);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(name, 0) == 0) {
      std::string v = line.substr(name.size());
      size_t p = v.find_first_not_of(" \t");
      return p == std::string::npos ? "" : v.substr(p);
    }
  }
  return "";
}

uint64_t pair_ns(const std::string& v) {  // "(sec, nsec)"
  unsigned long long s = 0, ns = 0;
  std::sscanf(v.c_str(), "(%llu, %llu)", &s, &ns);
  return s * 1000000000ULL + ns;
}

bool same_file(pid_t pid, int a, int b) {
  return ::syscall(SYS_kcmp, pid, pid, KCMP_FILE, a, b) == 0;
}

struct FdDumper {
  pid_t pid;
  const CheckpointOptions& options;
  PlanBuilder& plan;
  UniqueFd pidfd;
  std::map<int, uint64_t> inode_of;  // fd -> inode (for epoll checks)
  std::vector<int> api_fds;

  UniqueFd steal(int fd) { return UniqueFd(static_cast<int>(::syscall(SYS_pidfd_getfd, pidfd.get(), fd, 0))); }

  Status socket(int fd, image::FdRec& r) {
    UniqueFd s = steal(fd);
    if (!s.valid()) return snap_errno("pidfd_getfd");
    int type = 0, domain = 0;
    socklen_t len = sizeof(int);
    ::getsockopt(s.get(), SOL_SOCKET, SO_TYPE, &type, &len);
    len = sizeof(int);
    ::getsockopt(s.get(), SOL_SOCKET, SO_DOMAIN, &domain, &len);
    sockaddr_in peer{};
    len = sizeof(peer);
    bool api = domain == AF_INET && type == SOCK_STREAM && ::getpeername(s.get(), reinterpret_cast<sockaddr*>(&peer), &len) == 0 &&
               peer.sin_addr.s_addr == htonl(INADDR_LOOPBACK) && ntohs(peer.sin_port) == options.runtime_api_port;
    if (!api) return snap_error("fd " + std::to_string(fd) + " is a socket other than a Runtime API connection");
    int inq = 0, outq = 0;
    ::ioctl(s.get(), SIOCINQ, &inq);
    ::ioctl(s.get(), SIOCOUTQ, &outq);
    if (inq || outq) return snap_error("Runtime API connection fd " + std::to_string(fd) + " has unread or unsent bytes");
    int v = 0;
    len = sizeof(v);
    ::getsockopt(s.get(), IPPROTO_TCP, TCP_NODELAY, &v, &len);
    r.b = v;
    len = sizeof(v);
    ::getsockopt(s.get(), SOL_SOCKET, SO_KEEPALIVE, &v, &len);
    r.c = v;
    sockaddr_in local{};
    len = sizeof(local);
    ::getsockname(s.get(), reinterpret_cast<sockaddr*>(&local), &len);
    r.d = options.outstanding_client_port != 0 && ntohs(local.sin_port) == options.outstanding_client_port;
    r.kind = image::kFdApiSocket;
    r.a = options.runtime_api_port;
    api_fds.push_back(fd);
    return Status::Ok();
  }

  Status one(int fd, const std::string& link, const std::string& info, const ProcView& view) {
    image::FdRec r{};
    r.fd = fd;
    r.dup_of = -1;
    r.peer_fd = -1;
    unsigned flags = static_cast<unsigned>(std::stoul(field(info, "flags:"), nullptr, 8));
    r.cloexec = (flags & O_CLOEXEC) != 0;
    r.flags = flags & ~static_cast<unsigned>(O_CLOEXEC);
    r.pos = std::stoll(field(info, "pos:"));
    inode_of[fd] = std::stoull(field(info, "ino:"));
    for (const image::FdRec& prev : plan.fds) {
      if (inode_of[prev.fd] == inode_of[fd] && same_file(pid, prev.fd, fd)) {
        r.dup_of = prev.dup_of >= 0 ? prev.dup_of : prev.fd;
        r.kind = prev.kind;
        plan.fds.push_back(r);
        return Status::Ok();
      }
    }
    const std::string what = "fd " + std::to_string(fd) + " (" + link + ")";
    if (link == "anon_inode:[eventfd]") {
      r.kind = image::kFdEventfd;
      r.a = std::stoull(field(info, "eventfd-count:"), nullptr, 16);
      r.b = field(info, "eventfd-semaphore:") == "1";
    } else if (link == "anon_inode:[eventpoll]") {
      r.kind = image::kFdEpoll;
    } else if (link == "anon_inode:[timerfd]") {
      r.kind = image::kFdTimerfd;
      r.a = std::stoull(field(info, "clockid:"));
      r.b = pair_ns(field(info, "it_value:"));
      r.c = pair_ns(field(info, "it_interval:"));
      r.d = std::stoull(field(info, "ticks:"));
    } else if (link == "anon_inode:[signalfd]") {
      r.kind = image::kFdSignalfd;
      r.a = std::stoull(field(info, "sigmask:"), nullptr, 16);
    } else if (link.rfind("pipe:", 0) == 0) {
      r.kind = image::kFdPipe;
      UniqueFd p = steal(fd);
      int n = 0;
      if (!p.valid() || ::ioctl(p.get(), FIONREAD, &n) != 0) return snap_errno("FIONREAD on " + what);
      if (n && (r.flags & O_ACCMODE) == O_RDONLY) {
        // Copy the unread bytes without consuming them: tee() into a pipe of our own.
        if (n >= static_cast<int>(image::kMaxPath)) return snap_error(what + " is a pipe with more than 4 KiB unread");
        int tmp[2];
        if (::pipe2(tmp, O_CLOEXEC | O_NONBLOCK) != 0) return snap_errno("pipe2");
        UniqueFd tr(tmp[0]), tw(tmp[1]);
        ssize_t got = ::tee(p.get(), tw.get(), static_cast<size_t>(n), SPLICE_F_NONBLOCK);
        std::string bytes(static_cast<size_t>(std::max<ssize_t>(got, 0)), '\0');
        if (got != n || ::read(tr.get(), bytes.data(), bytes.size()) != got) return snap_error("cannot copy the unread bytes of " + what);
        r.path = plan.add_string(bytes);
      }
    } else if (link.rfind("socket:", 0) == 0) {
      if (Status s = socket(fd, r); !s.ok()) return s;
    } else if (!link.empty() && link[0] == '/') {
      const FileId* id = view.stat_of(link);
      if (!id || !id->ok || id->ino != inode_of[fd]) {
        return snap_error(what + " is not the file the sandbox sees at that path (deleted or moved)");
      }
      if (!S_ISREG(id->mode) && !S_ISDIR(id->mode) && !S_ISCHR(id->mode)) return snap_error("cannot restore " + what);
      r.kind = image::kFdFile;
      r.path = plan.add_string(link);
    } else {
      return snap_error("cannot restore " + what);
    }
    plan.fds.push_back(r);
    return Status::Ok();
  }

  // Pipes: the first fd of each pipe creates it and places its other end at peer_fd;
  // every other fd of that pipe becomes a dup of one of the two.
  Status pair_pipes() {
    std::map<uint64_t, std::pair<int, int>> ends;  // inode -> (a read fd, a write fd)
    for (const image::FdRec& r : plan.fds) {
      if (r.kind != image::kFdPipe || r.dup_of >= 0) continue;
      auto& e = ends.try_emplace(inode_of[r.fd], -1, -1).first->second;
      ((r.flags & O_ACCMODE) == O_RDONLY ? e.first : e.second) = r.fd;
    }
    for (auto& [ino, e] : ends) {
      if (e.first < 0 || e.second < 0) return snap_error("a pipe with only one end in the process");
    }
    std::map<uint64_t, image::Str> unread;  // inode -> bytes (recorded on a read end)
    for (const image::FdRec& r : plan.fds) {
      if (r.kind == image::kFdPipe && r.path.len) unread[inode_of[r.fd]] = r.path;
    }
    for (image::FdRec& r : plan.fds) {
      if (r.kind != image::kFdPipe || r.dup_of >= 0) continue;
      const auto& e = ends[inode_of[r.fd]];
      r.path = unread.count(inode_of[r.fd]) && r.fd == std::min(e.first, e.second) ? unread[inode_of[r.fd]] : image::Str{};
      const bool is_read = (r.flags & O_ACCMODE) == O_RDONLY;
      const int creator = std::min(e.first, e.second);
      if (r.fd == creator) {
        r.peer_fd = is_read ? e.second : e.first;
      } else if (r.fd != std::max(e.first, e.second)) {
        r.dup_of = is_read ? e.first : e.second;  // another description of the same pipe
      } else {
        r.dup_of = -2;  // placed by its creator; marked below
      }
    }
    // The peer end of a creator is placed by the creator: drop its own record's work.
    std::vector<image::FdRec> kept;
    for (const image::FdRec& r : plan.fds) {
      if (r.dup_of == -2) continue;
      kept.push_back(r);
    }
    // Flags of peer ends are set by the stub via F_SETFL only for records it sees:
    // keep them as dup-of-themselves records after the creator.
    for (const image::FdRec& r : plan.fds) {
      if (r.dup_of != -2) continue;
      image::FdRec self = r;
      self.dup_of = -3;
      kept.push_back(self);
    }
    plan.fds = std::move(kept);
    return Status::Ok();
  }

  Status epoll(const std::string& info, int epfd) {
    std::istringstream in(info);
    std::string line;
    while (std::getline(in, line)) {
      if (line.rfind("tfd:", 0) != 0) continue;
      int tfd = 0;
      unsigned events = 0;
      unsigned long long data = 0, ino = 0;
      if (std::sscanf(line.c_str(), "tfd: %d events: %x data: %llx pos:%*d ino:%llx", &tfd, &events, &data, &ino) != 4) {
        return snap_error("cannot parse epoll entry: " + line);
      }
      auto it = inode_of.find(tfd);
      bool inherited = std::find(options.inherited_fds.begin(), options.inherited_fds.end(), tfd) != options.inherited_fds.end();
      if (!inherited && (it == inode_of.end() || it->second != ino)) {
        return snap_error("epoll fd " + std::to_string(epfd) + " watches a file no longer at fd " + std::to_string(tfd));
      }
      plan.epoll.push_back({epfd, tfd, events, 0, data});
    }
    return Status::Ok();
  }
};

}  // namespace

Status dump_fds(pid_t pid, const ProcView& view, const CheckpointOptions& options, PlanBuilder& plan) {
  FdDumper d{pid, options, plan, UniqueFd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0))), {}, {}};
  if (!d.pidfd.valid()) return snap_errno("pidfd_open");
  auto links = view.fd_links;
  std::sort(links.begin(), links.end());
  std::vector<std::pair<int, std::string>> infos;
  int max_fd = 0;
  for (const auto& [fd, link] : links) {
    if (std::find(options.inherited_fds.begin(), options.inherited_fds.end(), fd) != options.inherited_fds.end()) continue;
    std::string info = read_text("/proc/" + std::to_string(pid) + "/fdinfo/" + std::to_string(fd));
    if (info.empty()) return snap_error("fd " + std::to_string(fd) + " vanished during the checkpoint");
    if (Status s = d.one(fd, link, info, view); !s.ok()) return s;
    infos.emplace_back(fd, info);
    max_fd = std::max(max_fd, fd);
  }
  if (Status s = d.pair_pipes(); !s.ok()) return s;
  for (const auto& [fd, info] : infos) {
    for (const image::FdRec& r : plan.fds) {
      if (r.fd == fd && r.kind == image::kFdEpoll && r.dup_of < 0) {
        if (Status s = d.epoll(info, fd); !s.ok()) return s;
      }
    }
  }
  if (d.api_fds.size() > 1 && options.outstanding_client_port == 0) {
    return snap_error("several Runtime API connections and no outstanding_client_port to tell them apart");
  }
  if (d.api_fds.size() == 1) {
    for (image::FdRec& r : plan.fds) {
      if (r.kind == image::kFdApiSocket && r.dup_of < 0) r.d = 1;
    }
  }
  plan.header.max_fd = static_cast<image::u32>(max_fd);
  return Status::Ok();
}

}  // namespace kiln::snapshot
