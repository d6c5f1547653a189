#include "worker/snapshot_restore.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>

#include "sandbox/tmp_archive.h"
#include "sandbox/unique_fd.h"
#include "snapshot/snapshot.h"

namespace kiln::worker {
namespace fs = std::filesystem;
using sandbox::UniqueFd;

namespace {

constexpr const char* kImage = "image";
constexpr const char* kTmpArchive = "tmp.archive";

uint64_t bytes_under(const fs::path& dir) {
  uint64_t n = 0;
  std::error_code ec;
  for (const auto& e : fs::recursive_directory_iterator(dir, ec)) {
    struct stat st {};
    if (::lstat(e.path().c_str(), &st) == 0 && S_ISREG(st.st_mode)) n += static_cast<uint64_t>(st.st_blocks) * 512;
  }
  return n;
}

// The sandbox's /tmp (an open directory of it), packed beside the image.
Status save_tmp(int tmp_dir, uint32_t ephemeral_mb, const fs::path& dir) {
  UniqueFd out(::open((dir / kTmpArchive).c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (!out.valid()) return ServiceError("cannot create " + (dir / kTmpArchive).string());
  sandbox::TmpArchiveLimits limits;
  limits.max_bytes = uint64_t{ephemeral_mb} << 20;
  return sandbox::pack_tmp_tree(tmp_dir, out.get(), limits);
}

}  // namespace

Status take_snapshot(pid_t pid, uint32_t ephemeral_mb, const fs::path& dir, SnapshotMeta& meta) {
  if (pid <= 0) return ServiceError("the sandbox is gone");
  // /tmp is opened first: a successful checkpoint kills the process, and the open
  // directory keeps its tmpfs readable (nothing else runs in the sandbox by then).
  const std::string root = "/proc/" + std::to_string(pid) + "/root";
  UniqueFd root_fd(::open(root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!root_fd.valid()) return ServiceError("the sandbox is gone: " + root);
  UniqueFd tmp(::openat(root_fd.get(), "tmp", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!tmp.valid()) return ServiceError("cannot open the sandbox's /tmp");
  const auto t0 = std::chrono::steady_clock::now();
  snapshot::CheckpointOptions options;
  if (Status s = snapshot::checkpoint_process(pid, options, dir / kImage); !s.ok()) return s;
  meta.checkpoint_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  if (Status s = save_tmp(tmp.get(), ephemeral_mb, dir); !s.ok()) return s;
  meta.bytes = bytes_under(dir);
  return Status::Ok();
}

StatusOr<std::unique_ptr<sandbox::Sandbox>> restore_sandbox(sandbox::SandboxBackend& backend,
                                                            sandbox::SandboxSpec spec, const fs::path& dir,
                                                            const std::string& replay) {
  auto image = snapshot::open_image(dir / kImage);
  if (!image.ok()) return image.status();
  UniqueFd tmp(::open((dir / kTmpArchive).c_str(), O_RDONLY | O_CLOEXEC));
  if (!tmp.valid()) return ServiceError("snapshot without its /tmp archive: " + dir.string());
  spec.argv = {sandbox::kRestoreStubPath};
  spec.env.clear();  // the restored process keeps the environment it had
  // At fds 3, 4, 5 of the restorer (snapshot/image_format.h: kPlanFd, kPagesFd, kReadyFd).
  spec.pass_fds = {image->plan.get(), image->pages.get(), image->ready_write.get()};
  spec.tmp_archive_fd = tmp.get();
  auto sb = backend.create(spec);
  image->plan.reset();
  image->pages.reset();
  image->ready_write.reset();  // the restorer holds the only write end: EOF if it dies
  if (!sb.ok()) return sb.status();
  const std::string request = replay + "\r\nHost: 127.0.0.1:" + std::to_string(spec.runtime_api_port) + "\r\n\r\n";
  if (Status s = snapshot::complete_restore((*sb)->host_pid(), dir / kImage, request, image->ready_read.get());
      !s.ok()) {
    (*sb)->destroy();
    return s;
  }
  return sb;
}

}  // namespace kiln::worker
