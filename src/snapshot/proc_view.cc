#include "snapshot/proc_view.h"

#include <dirent.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include "common/unique_fd.h"
#include "snapshot/ptrace_util.h"

namespace kiln::snapshot {

bool Vma::has_flag(const char* f) const {
  std::istringstream ss(vmflags);
  std::string w;
  while (ss >> w) {
    if (w == f) return true;
  }
  return false;
}

const FileId* ProcView::stat_of(const std::string& path) const {
  for (const auto& [p, id] : stats) {
    if (p == path) return &id;
  }
  return nullptr;
}

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

namespace {

std::string read_fd_text(int fd) {
  std::string out;
  char buf[65536];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof(buf))) > 0) out.append(buf, static_cast<size_t>(n));
  return out;
}

std::vector<Vma> parse_smaps(const std::string& text) {
  std::vector<Vma> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    if (line.rfind("VmFlags:", 0) == 0) {
      if (!out.empty()) out.back().vmflags = line.substr(8);
      continue;
    }
    // A header line starts with a hex range "start-end"; field lines are "Name:   value".
    size_t dash = line.find('-');
    size_t space = line.find(' ');
    if (dash == std::string::npos || space == std::string::npos || dash > space) continue;
    if (line.find(':') < dash) continue;
    Vma v;
    v.start = std::stoull(line.substr(0, dash), nullptr, 16);
    v.end = std::stoull(line.substr(dash + 1, space - dash - 1), nullptr, 16);
    std::istringstream ss(line.substr(space + 1));
    std::string dev;
    ss >> v.perms >> std::hex >> v.offset >> dev >> std::dec >> v.inode;
    size_t colon = dev.find(':');
    v.dev_major = std::stoull(dev.substr(0, colon), nullptr, 16);
    v.dev_minor = std::stoull(dev.substr(colon + 1), nullptr, 16);
    std::string rest;
    std::getline(ss, rest);
    size_t p = rest.find_first_not_of(' ');
    v.path = p == std::string::npos ? "" : rest.substr(p);
    out.push_back(std::move(v));
  }
  return out;
}

}  // namespace

StatusOr<ProcView> read_proc_view(pid_t pid) {
  const std::string proc = "/proc/" + std::to_string(pid);
  UniqueFd dir(::open(proc.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  UniqueFd root(::open((proc + "/root").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  UniqueFd smaps(::open((proc + "/smaps").c_str(), O_RDONLY | O_CLOEXEC));
  if (!dir.valid() || !root.valid() || !smaps.valid()) return snap_errno("open " + proc);
  ProcView view;
  Status status;
  std::thread reader([&] {
    // Only this thread's root changes: it has its own fs_struct after unshare(CLONE_FS).
    if (::unshare(CLONE_FS) != 0 || ::fchdir(root.get()) != 0 || ::chroot(".") != 0) {
      status = snap_errno("enter the sandbox's root");
      return;
    }
    view.vmas = parse_smaps(read_fd_text(smaps.get()));
    char buf[4096];
    ssize_t n = ::readlinkat(dir.get(), "cwd", buf, sizeof(buf));
    if (n > 0) view.cwd.assign(buf, static_cast<size_t>(n));
    int fddir = ::openat(dir.get(), "fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (DIR* d = fddir >= 0 ? ::fdopendir(fddir) : nullptr) {
      while (dirent* e = ::readdir(d)) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
        n = ::readlinkat(::dirfd(d), e->d_name, buf, sizeof(buf));
        if (n > 0) view.fd_links.emplace_back(std::atoi(e->d_name), std::string(buf, static_cast<size_t>(n)));
      }
      ::closedir(d);
    }
    std::set<std::string> paths;
    for (const Vma& v : view.vmas) {
      if (!v.path.empty() && v.path[0] == '/') paths.insert(v.path);
    }
    for (const auto& [fd, link] : view.fd_links) {
      if (!link.empty() && link[0] == '/') paths.insert(link);
    }
    if (!view.cwd.empty()) paths.insert(view.cwd);
    for (const std::string& p : paths) {
      struct stat st;
      FileId id;
      if (::stat(p.c_str(), &st) == 0) {
        id = {true, st.st_dev, st.st_ino, static_cast<uint64_t>(st.st_size), st.st_mtim.tv_sec, st.st_mtim.tv_nsec,
              st.st_mode};
      }
      view.stats.emplace_back(p, id);
    }
  });
  reader.join();
  if (!status.ok()) return status;
  return view;
}

}  // namespace kiln::snapshot
