#include "snapshot/image_writer.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>

#include "common/unique_fd.h"
#include "snapshot/ptrace_util.h"

namespace kiln::snapshot {

image::Str PlanBuilder::add_string(const std::string& s) {
  image::Str out{static_cast<image::u32>(strings.size()), static_cast<image::u32>(s.size())};
  strings += s;
  strings.push_back('\0');
  return out;
}

namespace {
template <typename T>
uint64_t append(std::vector<unsigned char>& out, const T* data, size_t n) {
  while (out.size() % 8) out.push_back(0);
  uint64_t off = out.size();
  const auto* p = reinterpret_cast<const unsigned char*>(data);
  out.insert(out.end(), p, p + n * sizeof(T));
  return off;
}
}  // namespace

std::vector<unsigned char> PlanBuilder::serialize() {
  std::vector<unsigned char> out(sizeof(image::PlanHeader));
  image::PlanHeader& h = header;
  h.magic = image::kMagic;
  h.version = image::kVersion;
  h.header_size = sizeof(image::PlanHeader);
  h.n_vmas = static_cast<image::u32>(vmas.size());
  h.off_vmas = append(out, vmas.data(), vmas.size());
  h.n_runs = static_cast<image::u32>(runs.size());
  h.off_runs = append(out, runs.data(), runs.size());
  h.n_fds = static_cast<image::u32>(fds.size());
  h.off_fds = append(out, fds.data(), fds.size());
  h.n_epoll = static_cast<image::u32>(epoll.size());
  h.off_epoll = append(out, epoll.data(), epoll.size());
  h.n_sigactions = static_cast<image::u32>(sigactions.size());
  h.off_sigactions = append(out, sigactions.data(), sigactions.size());
  for (size_t i = 0; i < threads.size(); ++i) {
    threads[i].xstate_len = static_cast<image::u32>(xstates[i].size());
    threads[i].xstate_off = append(out, xstates[i].data(), xstates[i].size());
  }
  h.n_threads = static_cast<image::u32>(threads.size());
  h.off_threads = append(out, threads.data(), threads.size());
  h.strings_size = strings.size() + 1;
  std::string padded = strings + '\0';
  h.off_strings = append(out, padded.data(), padded.size());
  while (out.size() % 8) out.push_back(0);
  h.total_size = out.size();
  h.checksum = 0;
  std::memcpy(out.data(), &h, sizeof(h));
  h.checksum = image::checksum(out.data(), out.size(), offsetof(image::PlanHeader, checksum));
  std::memcpy(out.data(), &h, sizeof(h));
  return out;
}

Status write_file_0600(const std::filesystem::path& path, const std::vector<unsigned char>& bytes) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (!fd.valid()) return snap_errno("create " + path.string());
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t w = ::write(fd.get(), bytes.data() + done, bytes.size() - done);
    if (w <= 0) return snap_errno("write " + path.string());
    done += static_cast<size_t>(w);
  }
  return Status::Ok();
}

StatusOr<std::vector<unsigned char>> read_plan(const std::filesystem::path& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return snap_errno("open " + path.string());
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return snap_errno("stat plan");
  if (st.st_size <= 0 || st.st_size > image::kMaxPlanSize) return snap_error("plan size out of bounds");
  std::vector<unsigned char> buf(static_cast<size_t>(st.st_size));
  if (::pread(fd.get(), buf.data(), buf.size(), 0) != st.st_size) return snap_errno("read plan");
  if (const char* err = image::validate_plan(buf.data(), buf.size())) return snap_error(err);
  return buf;
}

}  // namespace kiln::snapshot
