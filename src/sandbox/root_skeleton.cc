#include "sandbox/root_skeleton.h"

#include <sys/stat.h>

#include <fstream>

namespace kiln::sandbox {
namespace fs = std::filesystem;
namespace {

constexpr const char* kSystemDirs[] = {"usr", "bin", "sbin", "lib", "lib64", "lib32", "libx32"};
constexpr const char* kEtcCopies[] = {"ld.so.cache", "nsswitch.conf", "resolv.conf", "localtime",
                                      "os-release", "services", "protocols", "ssl"};
constexpr const char* kDevices[] = {"null", "zero", "full", "random", "urandom"};

void write_text(const fs::path& p, const std::string& text, std::error_code& ec) {
  if (ec) return;
  std::ofstream out(p, std::ios::trunc);
  out << text;
  if (!out) ec = std::make_error_code(std::errc::io_error);
  ::chmod(p.c_str(), 0644);
}

// Makes dst a symlink to target, replacing whatever was there (never a directory).
void relink(const fs::path& target, const fs::path& dst, std::error_code& ec) {
  if (ec) return;
  if (fs::is_symlink(dst) || fs::is_regular_file(dst)) fs::remove(dst, ec);
  if (!ec && !fs::exists(fs::symlink_status(dst))) fs::create_directory_symlink(target, dst, ec);
}

void mkdir_mode(const fs::path& p, fs::perms mode, std::error_code& ec) {
  if (ec) return;
  fs::create_directories(p, ec);
  if (!ec) fs::permissions(p, mode, ec);
}

void touch(const fs::path& p, std::error_code& ec) {
  if (ec || fs::exists(p)) return;
  std::ofstream out(p);
  if (!out) ec = std::make_error_code(std::errc::io_error);
}

}  // namespace

StatusOr<RootSkeleton> prepare_root_skeleton(const fs::path& state_dir, const fs::path& host_root) {
  RootSkeleton sk;
  sk.dir = state_dir / "rootfs";
  const fs::perms dir_mode = fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                             fs::perms::others_read | fs::perms::others_exec;
  std::error_code ec;
  mkdir_mode(state_dir, fs::perms::owner_all, ec);  // Kiln's state: root only
  mkdir_mode(sk.dir, dir_mode, ec);
  sk.empty = state_dir / "empty";
  mkdir_mode(sk.empty, dir_mode, ec);
  for (const char* d : {"var/task", "var/runtime", "opt", "proc", "dev", "etc", "tmp"}) {
    mkdir_mode(sk.dir / d, dir_mode, ec);
  }
  for (const char* name : kSystemDirs) {
    fs::path host = host_root / name;
    if (ec) break;
    if (fs::is_symlink(host)) {
      relink(fs::read_symlink(host), sk.dir / name, ec);  // usrmerge: /bin -> usr/bin
    } else if (fs::is_directory(host)) {
      mkdir_mode(sk.dir / name, dir_mode, ec);
      sk.system_binds.emplace_back(host.string(), std::string("/") + name);
    }
  }
  for (const char* dev : kDevices) {
    touch(sk.dir / "dev" / dev, ec);
    sk.devices.push_back(std::string("/dev/") + dev);
  }
  relink("/proc/self/fd", sk.dir / "dev/fd", ec);
  relink("/proc/self/fd/0", sk.dir / "dev/stdin", ec);
  relink("/proc/self/fd/1", sk.dir / "dev/stdout", ec);
  relink("/proc/self/fd/2", sk.dir / "dev/stderr", ec);
  write_text(sk.dir / "etc/passwd",
             "root:x:0:0:root:/tmp:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
             ec);
  write_text(sk.dir / "etc/group", "root:x:0:\nnogroup:x:65534:\n", ec);
  write_text(sk.dir / "etc/hosts", "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n", ec);
  for (const char* name : kEtcCopies) {
    fs::path host = host_root / "etc" / name;
    fs::path dst = sk.dir / "etc" / name;
    if (ec) break;
    if (!fs::exists(fs::symlink_status(host))) continue;
    if (fs::is_symlink(host)) {
      relink(fs::read_symlink(host), dst, ec);
    } else if (fs::is_directory(host)) {
      fs::remove_all(dst, ec);  // copy cannot overwrite symlinks
      if (!ec) fs::copy(host, dst,
               fs::copy_options::recursive | fs::copy_options::copy_symlinks |
                   fs::copy_options::overwrite_existing,
               ec);
    } else {
      fs::copy_file(host, dst, fs::copy_options::overwrite_existing, ec);
    }
  }
  if (ec) return ServiceError("root skeleton " + sk.dir.string() + ": " + ec.message());
  return sk;
}

}  // namespace kiln::sandbox
