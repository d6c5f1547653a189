// The memory half of a checkpoint: classifies every VMA and writes the pages file.
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstring>

#include "common/unique_fd.h"
#include "snapshot/checkpoint_parts.h"
#include "snapshot/ptrace_util.h"

namespace kiln::snapshot {
namespace {

constexpr uint64_t kPresent = 1ULL << 63, kSwapped = 1ULL << 62, kFilePage = 1ULL << 61;

uint32_t prot_of(const std::string& perms) {
  uint32_t p = 0;
  if (perms[0] == 'r') p |= PROT_READ;
  if (perms[1] == 'w') p |= PROT_WRITE;
  if (perms[2] == 'x') p |= PROT_EXEC;
  return p;
}

bool all_zero(const unsigned char* p, size_t n) {
  for (size_t i = 0; i < n; i += 8) {
    uint64_t v;
    std::memcpy(&v, p + i, 8);
    if (v) return false;
  }
  return true;
}

struct Dumper {
  int mem, pagemap, pages;
  uint64_t next_off = 0;
  std::vector<unsigned char> buf;

  StatusOr<std::vector<uint64_t>> pagemap_of(const Vma& v) {
    std::vector<uint64_t> pm((v.end - v.start) / image::kPageSize);
    ssize_t want = static_cast<ssize_t>(pm.size() * 8);
    if (::pread(pagemap, pm.data(), static_cast<size_t>(want), static_cast<off_t>(v.start / image::kPageSize * 8)) != want) {
      return snap_errno("read pagemap");
    }
    return pm;
  }

  // Copies pages [first, first+n) of `v` to the pages file at `off` + their offset,
  // leaving all-zero pages as holes.
  Status copy(const Vma& v, uint64_t first, uint64_t n, uint64_t off) {
    const uint64_t len = n * image::kPageSize;
    buf.resize(len);
    const uint64_t addr = v.start + first * image::kPageSize;
    if (::pread(mem, buf.data(), len, static_cast<off_t>(addr)) != static_cast<ssize_t>(len)) {
      return snap_errno("read memory at " + std::to_string(addr));
    }
    for (uint64_t i = 0; i < n; ++i) {
      const unsigned char* page = buf.data() + i * image::kPageSize;
      if (all_zero(page, image::kPageSize)) continue;
      const off_t at = static_cast<off_t>(off + (first + i) * image::kPageSize);
      if (::pwrite(pages, page, image::kPageSize, at) != static_cast<ssize_t>(image::kPageSize)) {
        return snap_errno("write pages");
      }
    }
    return Status::Ok();
  }

  // Calls fn(first, n) for each run of pages that `want` selects.
  template <typename Want, typename Fn>
  Status runs(const std::vector<uint64_t>& pm, Want want, Fn fn) {
    uint64_t i = 0;
    while (i < pm.size()) {
      if (!want(pm[i])) { ++i; continue; }
      uint64_t j = i;
      while (j < pm.size() && want(pm[j]) && j - i < 256) ++j;
      if (Status s = fn(i, j - i); !s.ok()) return s;
      i = j;
    }
    return Status::Ok();
  }
};

}  // namespace

Status dump_memory(pid_t pid, const ProcView& view, PlanBuilder& plan, const std::filesystem::path& pages_path) {
  const std::string proc = "/proc/" + std::to_string(pid);
  UniqueFd mem(::open((proc + "/mem").c_str(), O_RDONLY | O_CLOEXEC));
  UniqueFd pagemap(::open((proc + "/pagemap").c_str(), O_RDONLY | O_CLOEXEC));
  UniqueFd pages(::open(pages_path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (!mem.valid() || !pagemap.valid() || !pages.valid()) return snap_errno("open memory files");
  Dumper d{mem.get(), pagemap.get(), pages.get(), 0, {}};
  for (const Vma& v : view.vmas) {
    if (v.start < image::kStubBase + image::kStubSize && v.end > image::kStubBase) {
      return snap_error("a mapping overlaps the restore stub's fixed range at 0x200000000000");
    }
    image::VmaRec r{};
    r.start = v.start;
    r.end = v.end;
    r.prot = prot_of(v.perms);
    const uint64_t len = v.end - v.start;
    const bool shared = v.perms[3] == 's';
    if (v.path == "[vsyscall]") continue;
    if (v.path == "[vdso]" || v.path == "[vvar]" || v.path == "[vvar_vclock]") {
      r.kind = v.path == "[vdso]" ? image::kVmaVdso : v.path == "[vvar]" ? image::kVmaVvar : image::kVmaVvarVclock;
      plan.vmas.push_back(r);
      continue;
    }
    if (v.has_flag("io") || v.has_flag("pf")) return snap_error("cannot restore a device mapping: " + v.path);
    if (shared && (v.path.empty() || v.path[0] != '/' || v.path.rfind("/memfd:", 0) == 0)) {
      return snap_error("cannot restore a shared anonymous or memfd mapping yet: '" + v.path + "'");
    }
    const bool anon = v.path.empty() || v.path == "[heap]" || v.path == "[stack]" || v.path.rfind("[anon:", 0) == 0;
    auto pm = d.pagemap_of(v);
    if (!pm.ok()) return pm.status();
    if (anon) {
      bool any = false;
      for (uint64_t e : *pm) any = any || (e & (kPresent | kSwapped));
      if (v.path == "[stack]" || v.has_flag("gd")) {
        r.kind = image::kVmaStack;
      } else if (r.prot == 0 && !any) {
        r.kind = image::kVmaNone;
        plan.vmas.push_back(r);
        continue;
      } else {
        r.kind = image::kVmaAnon;
      }
      r.pages_off = d.next_off;
      d.next_off += len;
      r.first_run = static_cast<image::u32>(plan.runs.size());
      Status s = d.runs(*pm, [](uint64_t e) { return (e & (kPresent | kSwapped)) != 0; },
                        [&](uint64_t first, uint64_t n) {
                          plan.runs.push_back({first, n});  // for an eager restore (--eager)
                          return d.copy(v, first, n, r.pages_off);
                        });
      if (!s.ok()) return s;
      r.n_runs = static_cast<image::u32>(plan.runs.size()) - r.first_run;
      plan.vmas.push_back(r);
      continue;
    }
    if (v.path[0] != '/') return snap_error("cannot restore the mapping '" + v.path + "'");
    if (v.path.size() > 10 && v.path.compare(v.path.size() - 10, 10, " (deleted)") == 0) {
      return snap_error("cannot restore a mapping of a deleted file: " + v.path);
    }
    const FileId* id = view.stat_of(v.path);
    if (!id || !id->ok || id->ino != v.inode) {
      return snap_error("the mapped file " + v.path + " is not the file the sandbox sees at that path");
    }
    r.kind = shared ? image::kVmaFileShared : image::kVmaFile;
    r.file_off = v.offset;
    r.file_size = id->size;
    r.mtime_sec = id->mtime_sec;
    r.mtime_nsec = id->mtime_nsec;
    r.path = plan.add_string(v.path);
    if (shared) {  // the file holds the contents
      plan.vmas.push_back(r);
      continue;
    }
    r.pages_off = d.next_off;
    r.first_run = static_cast<image::u32>(plan.runs.size());
    Status s = d.runs(*pm, [](uint64_t e) { return (e & kSwapped) || ((e & kPresent) && !(e & kFilePage)); },
                      [&](uint64_t first, uint64_t n) {
                        plan.runs.push_back({first, n});
                        return d.copy(v, first, n, r.pages_off);
                      });
    if (!s.ok()) return s;
    r.n_runs = static_cast<image::u32>(plan.runs.size()) - r.first_run;
    if (r.n_runs) d.next_off += len;
    else r.pages_off = 0;
    plan.vmas.push_back(r);
  }
  if (::ftruncate(pages.get(), static_cast<off_t>(d.next_off)) != 0) return snap_errno("size pages");
  plan.header.pages_size = d.next_off;
  return Status::Ok();
}

}  // namespace kiln::snapshot
