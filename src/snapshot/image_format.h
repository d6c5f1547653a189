// The on-disk image of one checkpointed process, shared by the dumper (checkpoint.cc),
// the tracer side of the restore (restore.cc) and the freestanding stub (restore_stub.cc).
// Plain structs only: the stub has no libc, so this header includes nothing but
// <stdint.h>-like builtins and must not use the standard library.
//
// An image is a directory holding two files, both written by Kiln (mode 0600):
//   plan   : PlanHeader, then the sections it points to (VMAs, page runs, fds, epoll
//            entries, signal actions, threads, x86 xstate blobs, strings). The whole file
//            is covered by a checksum in the header; every offset and count is checked
//            against the file size before use (validate_plan below), by the stub and by
//            the tracer alike.
//   pages  : memory contents. Every VMA that needs contents owns the byte range
//            [pages_off, pages_off + size) of this file; pages never touched are holes
//            (sparse). Anonymous private VMAs are mapped MAP_PRIVATE from this range at
//            restore, so pages not written after a restore stay shared in the page cache
//            between every process restored from the image.
#pragma once

namespace kiln::snapshot::image {

using u8 = unsigned char;
using u32 = unsigned int;
using u64 = unsigned long long;
using i32 = int;
using i64 = long long;
static_assert(sizeof(u32) == 4 && sizeof(u64) == 8, "LP64 x86_64 only");

#if !defined(__x86_64__)
#error "kiln snapshots support x86_64 only"
#endif

constexpr u64 kMagic = 0x50414e534e4c494bULL;  // "KILNSNAP"
constexpr u32 kVersion = 1;

// The stub (kiln-restore) is linked at kStubBase and owns [kStubBase, kStubBase+kStubSize):
// a checkpoint refuses any mapping there; the restore unmaps it at the end.
constexpr u64 kStubBase = 0x200000000000ULL;
constexpr u64 kStubSize = 0x40000000ULL;  // 1 GiB: text, data, bss (plan buffer, stacks)
constexpr u64 kStubScratch = kStubBase + 0x30000000ULL;  // where the vdso waits during a move

constexpr u64 kPageSize = 4096;
constexpr u32 kMaxPlanSize = 64u << 20;  // the stub's plan buffer
constexpr u32 kMaxThreads = 256;
constexpr u32 kMaxAuxvWords = 128;
constexpr u32 kMaxPath = 4096;

// The fds the stub is executed with (the caller dup2()s the RestoreFds there).
constexpr int kPlanFd = 3;
constexpr int kPagesFd = 4;
constexpr int kReadyFd = 5;  // write end of a pipe: 'R' = ready, 'E' + text = failed

enum VmaKind : u32 {
  kVmaAnon = 1,       // private anonymous (incl. [heap]): map pages file at pages_off
  kVmaStack = 2,      // the main [stack] (VM_GROWSDOWN): anonymous MAP_GROWSDOWN + copy
  kVmaFile = 3,       // private file mapping: map the file, copy the runs from pages
  kVmaNone = 4,       // PROT_NONE anonymous without contents: fresh anonymous mapping
  kVmaVdso = 5,       // [vdso]: moved here
  kVmaVvar = 6,       // [vvar]: moved here
  kVmaVvarVclock = 7, // [vvar_vclock]: moved here
  kVmaFileShared = 8, // shared file mapping: map the file MAP_SHARED (contents are the file's)
};

struct Str {
  u32 off;  // into the strings section
  u32 len;  // without a terminating NUL (one is stored after it)
};

struct VmaRec {
  u64 start, end;
  u32 kind;
  u32 prot;        // PROT_*
  u64 pages_off;   // into the pages file (kVmaAnon, kVmaStack, kVmaFile runs)
  u64 file_off;    // kVmaFile: offset in the file
  u64 file_size;   // kVmaFile: st_size at checkpoint
  i64 mtime_sec, mtime_nsec;  // kVmaFile
  Str path;        // kVmaFile: path as the sandbox sees it
  u32 first_run, n_runs;  // runs of saved pages (RunRec): kVmaFile copies them; kVmaAnon
                          // and kVmaStack prefault them when the stub runs with --eager
};

struct RunRec {
  u64 first_page;  // relative to the VMA start
  u64 n_pages;
};

enum FdKind : u32 {
  kFdFile = 1,      // regular file, directory, char device: reopened by path
  kFdPipe = 2,      // pipe: group = inode; the first fd of a group creates the pipe
  kFdEventfd = 3,
  kFdEpoll = 4,     // entries in EpollRec, added once every fd exists
  kFdTimerfd = 5,
  kFdSignalfd = 6,
  kFdApiSocket = 7, // TCP to 127.0.0.1:api_port: reconnected
};

struct FdRec {
  i32 fd;
  u32 kind;
  u32 flags;      // file status flags (O_ACCMODE | O_APPEND | O_NONBLOCK ...), no O_CLOEXEC
  u32 cloexec;
  i32 dup_of;     // >= 0: same open file description as this earlier fd: dup it
  i32 peer_fd;    // kFdPipe creator: the fd that gets the other end (must exist)
  i64 pos;        // kFdFile
  Str path;       // kFdFile: the path; kFdPipe: bytes unread at the checkpoint
  u64 a, b, c, d, e;  // per kind: eventfd: a=count b=semaphore; timerfd: a=clock
                      // b=value ns c=interval ns d=ticks pending; signalfd: a=mask;
                      // api socket: a=port b=nodelay c=keepalive d=outstanding
};

struct EpollRec {
  i32 epfd, tfd;
  u32 events;
  u32 pad;
  u64 data;
};

struct SigactionRec {
  u32 sig, pad;
  u64 handler, flags, restorer, mask;
};

// x86_64 struct user_regs_struct, field for field.
struct Regs {
  u64 r15, r14, r13, r12, rbp, rbx, r11, r10, r9, r8, rax, rcx, rdx, rsi, rdi, orig_rax, rip,
      cs, eflags, rsp, ss, fs_base, gs_base, ds, es, fs, gs;
};

struct ThreadRec {
  i32 tid;  // in the process's own pid namespace
  u32 pad;
  u64 tid_address;
  u64 robust_head, robust_len;
  u64 ss_sp, ss_size;
  i32 ss_flags;
  u32 rseq_size;
  u64 rseq_ptr;
  u32 rseq_sig, rseq_flags;
  u64 sigmask;
  char comm[16];
  Regs regs;
  u64 xstate_off;  // into the plan file
  u32 xstate_len;
  u32 pad2;
};

struct PlanHeader {
  u64 magic;
  u32 version;
  u32 header_size;
  u64 total_size;   // of the plan file
  u64 checksum;     // FNV-1a 64 of the whole file with this field zero
  u64 pages_size;   // exact size of the pages file
  u32 n_vmas, n_runs, n_fds, n_epoll, n_sigactions, n_threads;
  u64 off_vmas, off_runs, off_fds, off_epoll, off_sigactions, off_threads;
  u64 off_strings, strings_size;
  // mm fields for PR_SET_MM_MAP
  u64 start_code, end_code, start_data, end_data, start_brk, brk, start_stack, arg_start,
      arg_end, env_start, env_end;
  u64 auxv[kMaxAuxvWords];
  u32 auxv_words;
  u32 umask;
  u32 personality;
  u32 max_fd;  // highest fd number in the image (-1 as 0 when none)
  Str cwd;
  u32 api_port;
  u32 pad;
};

// FNV-1a 64 over `len` bytes, treating [skip, skip+8) as zero.
inline u64 checksum(const u8* p, u64 len, u64 skip) {
  u64 h = 0xcbf29ce484222325ULL;
  for (u64 i = 0; i < len; ++i) {
    u8 b = (i >= skip && i < skip + 8) ? 0 : p[i];
    h ^= b;
    h *= 0x100000001b3ULL;
  }
  return h;
}

inline bool section_ok(u64 off, u64 n, u64 elem, u64 total) {
  if (off > total) return false;
  if (elem != 0 && n > (total - off) / elem) return false;
  return (off % 8) == 0;
}

inline bool str_ok(const Str& s, const PlanHeader& h) {
  if (s.len >= kMaxPath) return false;
  u64 end = static_cast<u64>(s.off) + s.len;  // + NUL
  return end < h.strings_size;
}

// Checks everything the stub or the tracer relies on before it touches memory: header,
// checksum, section bounds, strings, VMA ranges (page aligned, ordered, outside the
// stub's range, pages ranges inside pages_size), runs inside their VMA, fd numbers.
// Returns nullptr when the plan is usable, else a static message.
inline const char* validate_plan(const u8* p, u64 size) {
  if (size < sizeof(PlanHeader)) return "plan shorter than its header";
  const PlanHeader& h = *reinterpret_cast<const PlanHeader*>(p);
  if (h.magic != kMagic) return "plan: bad magic";
  if (h.version != kVersion) return "plan: unsupported version";
  if (h.header_size != sizeof(PlanHeader) || h.total_size != size) return "plan: size mismatch";
  if (checksum(p, size, __builtin_offsetof(PlanHeader, checksum)) != h.checksum) return "plan: checksum mismatch";
  if (!section_ok(h.off_vmas, h.n_vmas, sizeof(VmaRec), size) ||
      !section_ok(h.off_runs, h.n_runs, sizeof(RunRec), size) ||
      !section_ok(h.off_fds, h.n_fds, sizeof(FdRec), size) ||
      !section_ok(h.off_epoll, h.n_epoll, sizeof(EpollRec), size) ||
      !section_ok(h.off_sigactions, h.n_sigactions, sizeof(SigactionRec), size) ||
      !section_ok(h.off_threads, h.n_threads, sizeof(ThreadRec), size) ||
      !section_ok(h.off_strings, h.strings_size, 1, size)) {
    return "plan: section out of bounds";
  }
  if (h.n_threads == 0 || h.n_threads > kMaxThreads) return "plan: thread count";
  if (h.auxv_words > kMaxAuxvWords || (h.auxv_words % 2) != 0) return "plan: auxv";
  if (!str_ok(h.cwd, h)) return "plan: cwd";
  const char* strings = reinterpret_cast<const char*>(p + h.off_strings);
  auto vmas = reinterpret_cast<const VmaRec*>(p + h.off_vmas);
  auto runs = reinterpret_cast<const RunRec*>(p + h.off_runs);
  u64 prev_end = 0;
  for (u32 i = 0; i < h.n_vmas; ++i) {
    const VmaRec& v = vmas[i];
    if (v.start % kPageSize || v.end % kPageSize || v.start >= v.end) return "plan: vma range";
    if (v.start < prev_end) return "plan: vmas overlap or unordered";
    if (v.end > 0x7ffffffff000ULL) return "plan: vma above user space";
    if (v.start < kStubBase + kStubSize && v.end > kStubBase) return "plan: vma in stub range";
    prev_end = v.end;
    const u64 len = v.end - v.start;
    if (v.kind == kVmaAnon || v.kind == kVmaStack || v.kind == kVmaFile) {
      if (v.pages_off % kPageSize || v.pages_off > h.pages_size || len > h.pages_size - v.pages_off) {
        return "plan: vma pages out of bounds";
      }
    } else if (v.kind < kVmaAnon || v.kind > kVmaFileShared) {
      return "plan: vma kind";
    }
    if (v.prot & ~7u) return "plan: vma prot";
    if (v.kind == kVmaFileShared && (!str_ok(v.path, h) || v.file_off % kPageSize)) return "plan: vma file";
    if (v.kind == kVmaFile && (!str_ok(v.path, h) || v.file_off % kPageSize)) return "plan: vma file";
    if (v.kind == kVmaFile || v.kind == kVmaAnon || v.kind == kVmaStack) {
      if (v.first_run > h.n_runs || v.n_runs > h.n_runs - v.first_run) return "plan: vma runs";
      for (u32 r = 0; r < v.n_runs; ++r) {
        const RunRec& run = runs[v.first_run + r];
        const u64 pages = len / kPageSize;
        if (run.first_page >= pages || run.n_pages > pages - run.first_page || run.n_pages == 0) {
          return "plan: run outside its vma";
        }
      }
    }
  }
  auto fds = reinterpret_cast<const FdRec*>(p + h.off_fds);
  for (u32 i = 0; i < h.n_fds; ++i) {
    const FdRec& f = fds[i];
    if (f.fd < 0 || static_cast<u32>(f.fd) > h.max_fd || f.fd > 65535) return "plan: fd number";
    if (f.kind < kFdFile || f.kind > kFdApiSocket) return "plan: fd kind";
    if ((f.kind == kFdFile || (f.kind == kFdPipe && f.path.len)) && !str_ok(f.path, h)) return "plan: fd path";
    if (f.dup_of >= f.fd) return "plan: fd dup order";
  }
  auto threads = reinterpret_cast<const ThreadRec*>(p + h.off_threads);
  i32 prev_tid = 0;
  for (u32 i = 0; i < h.n_threads; ++i) {
    const ThreadRec& t = threads[i];
    if (t.tid <= prev_tid) return "plan: threads not in ascending tid order";
    if (t.tid > (1 << 22)) return "plan: tid above pid_max";  // bounds the stub's pid burning
    prev_tid = t.tid;
    if (!section_ok(t.xstate_off, t.xstate_len, 1, size)) return "plan: xstate out of bounds";
  }
  if (threads[0].tid != 1) return "plan: first thread is not tid 1";
  (void)strings;
  return nullptr;
}

}  // namespace kiln::snapshot::image
