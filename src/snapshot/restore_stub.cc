// kiln-restore: the freestanding first process of a restored sandbox. Static, no libc,
// linked at image::kStubBase with its stack in its own .bss. It rebuilds the image's
// address space, fds, signal actions and threads around itself, then parks every thread
// and tells the tracer (restore.cc) it is ready; the tracer sets the registers and unmaps
// the stub. Protocol: see restore.h. Inputs: fd 3 plan, fd 4 pages, fd 5 ready pipe.
//
// /proc/self/exe keeps pointing at this binary after the restore (PR_SET_MM_EXE_FILE
// needs CAP_SYS_RESOURCE, which the sandbox does not have).
#include <asm/unistd.h>
#include <linux/futex.h>

#include "snapshot/image_format.h"
#include "snapshot/stub_sys.h"

using namespace kiln::snapshot::image;
using kiln::snapshot::stub::failed;
using kiln::snapshot::stub::L;
using kiln::snapshot::stub::sys;

extern "C" {
void* memcpy(void* d, const void* s, unsigned long n) {
  auto* dd = static_cast<unsigned char*>(d);
  auto* ss = static_cast<const unsigned char*>(s);
  while (n--) *dd++ = *ss++;
  return d;
}
void* memmove(void* d, const void* s, unsigned long n) {
  auto* dd = static_cast<unsigned char*>(d);
  auto* ss = static_cast<const unsigned char*>(s);
  if (dd < ss) return memcpy(d, s, n);
  while (n--) dd[n] = ss[n];
  return d;
}
void* memset(void* d, int c, unsigned long n) {
  auto* dd = static_cast<unsigned char*>(d);
  while (n--) *dd++ = static_cast<unsigned char>(c);
  return d;
}
int memcmp(const void* a, const void* b, unsigned long n) {
  auto* x = static_cast<const unsigned char*>(a);
  auto* y = static_cast<const unsigned char*>(b);
  for (unsigned long i = 0; i < n; ++i) {
    if (x[i] != y[i]) return x[i] < y[i] ? -1 : 1;
  }
  return 0;
}
}

namespace {

// Constants (x86_64 values) so that no libc header is needed.
constexpr long kProtRead = 1, kProtWrite = 2;
constexpr long kMapShared = 1, kMapPrivate = 2, kMapFixed = 0x10, kMapAnon = 0x20,
               kMapGrowsdown = 0x100, kMapNoreserve = 0x4000;
constexpr long kMremapMaymove = 1, kMremapFixed = 2;
constexpr int kOCloexec = 02000000, kOCreatEtc = 0100 | 0200 | 01000 | 0400;
constexpr int kFSetfd = 2, kFSetfl = 4, kFDupfdCloexec = 1030;
constexpr int kSeekSet = 0;
constexpr int kPrSetName = 15, kPrSetMm = 35, kPrSetMmMap = 14;
constexpr int kEpollCtlAdd = 1;
constexpr int kAfInet = 2, kSockStream = 1, kIpprotoTcp = 6, kTcpNodelay = 1, kSolSocket = 1,
              kSoKeepalive = 9;
constexpr long kCloneThreadFlags = 0x100 | 0x200 | 0x400 | 0x800 | 0x10000 | 0x40000;
constexpr int kSigchld = 17;

alignas(4096) unsigned char g_plan[kMaxPlanSize];
u64 g_plan_size;
alignas(16) unsigned char g_main_stack[256 * 1024];
alignas(16) unsigned char g_thread_stacks[kMaxThreads][16 * 1024];
int g_pages_fd = -1, g_ready_fd = -1;
bool g_eager;  // argv[1] == "--eager"
volatile int g_park_word;
volatile int g_threads_ready;
const PlanHeader* H;

const VmaRec* vmas() { return reinterpret_cast<const VmaRec*>(g_plan + H->off_vmas); }
const RunRec* runs() { return reinterpret_cast<const RunRec*>(g_plan + H->off_runs); }
const FdRec* fds() { return reinterpret_cast<const FdRec*>(g_plan + H->off_fds); }
const EpollRec* epolls() { return reinterpret_cast<const EpollRec*>(g_plan + H->off_epoll); }
const SigactionRec* sigactions() { return reinterpret_cast<const SigactionRec*>(g_plan + H->off_sigactions); }
const ThreadRec* threads() { return reinterpret_cast<const ThreadRec*>(g_plan + H->off_threads); }
const char* str(const Str& s) { return reinterpret_cast<const char*>(g_plan + H->off_strings + s.off); }

unsigned long slen(const char* s) {
  unsigned long n = 0;
  while (s[n]) ++n;
  return n;
}

// Reports `what` (and the errno) on the ready pipe and ends the sandbox's first process.
[[noreturn]] void die(const char* what, long err = 0) {
  char msg[512];
  unsigned long n = 0;
  msg[n++] = 'E';
  for (const char* p = "kiln-restore: "; *p && n < 400; ++p) msg[n++] = *p;
  for (const char* p = what; *p && n < 480; ++p) msg[n++] = *p;
  if (err) {
    const char* e = " (errno ";
    while (*e) msg[n++] = *e++;
    long v = err < 0 ? -err : err;
    char digits[20];
    int k = 0;
    do { digits[k++] = static_cast<char>('0' + v % 10); v /= 10; } while (v && k < 19);
    while (k) msg[n++] = digits[--k];
    msg[n++] = ')';
  }
  int fd = g_ready_fd >= 0 ? g_ready_fd : kReadyFd;
  sys(__NR_write, fd, L(msg), n);
  sys(__NR_exit_group, 127);
  __builtin_unreachable();
}

long check(long r, const char* what) {
  if (failed(r)) die(what, r);
  return r;
}

void read_all(int fd, unsigned char* buf, u64 len, const char* what) {
  u64 done = 0;
  while (done < len) {
    long r = sys(__NR_read, fd, L(buf + done), len - done);
    if (r == -4) continue;  // EINTR
    if (r <= 0) die(what, r);
    done += static_cast<u64>(r);
  }
}

void pread_all(int fd, unsigned char* buf, u64 len, u64 off, const char* what) {
  u64 done = 0;
  while (done < len) {
    long r = sys(__NR_pread64, fd, L(buf + done), len - done, L(off + done));
    if (r == -4) continue;
    if (r <= 0) die(what, r);
    done += static_cast<u64>(r);
  }
}

struct Stat {  // x86_64 struct stat
  u64 dev, ino, nlink;
  unsigned int mode, uid, gid, pad0;
  u64 rdev;
  long long size, blksize, blocks;
  u64 atime, atime_ns, mtime, mtime_ns, ctime, ctime_ns;
  long long unused[3];
};

void load_plan() {
  Stat st;
  check(sys(__NR_fstat, kPlanFd, L(&st)), "fstat plan");
  if (st.size < static_cast<long long>(sizeof(PlanHeader)) || st.size > kMaxPlanSize) die("plan size out of bounds");
  g_plan_size = static_cast<u64>(st.size);
  read_all(kPlanFd, g_plan, g_plan_size, "read plan");
  if (const char* err = validate_plan(g_plan, g_plan_size)) die(err);
  H = reinterpret_cast<const PlanHeader*>(g_plan);
  check(sys(__NR_fstat, kPagesFd, L(&st)), "fstat pages");
  if (static_cast<u64>(st.size) != H->pages_size) die("pages file size does not match the plan");
}

// Moves the pages and ready fds above every fd of the image; closes everything else
// except the inherited 0, 1, 2.
void move_inputs() {
  const long low = static_cast<long>(H->max_fd) + 1 > 6 ? static_cast<long>(H->max_fd) + 1 : 6;
  g_pages_fd = static_cast<int>(check(sys(__NR_fcntl, kPagesFd, kFDupfdCloexec, low), "move pages fd"));
  g_ready_fd = static_cast<int>(check(sys(__NR_fcntl, kReadyFd, kFDupfdCloexec, g_pages_fd + 1), "move ready fd"));
  const int lo = g_pages_fd < g_ready_fd ? g_pages_fd : g_ready_fd;
  const int hi = g_pages_fd < g_ready_fd ? g_ready_fd : g_pages_fd;
  if (lo > 3) sys(__NR_close_range, 3, lo - 1, 0);
  if (hi - lo > 1) sys(__NR_close_range, lo + 1, hi - 1, 0);
  sys(__NR_close_range, hi + 1, ~0u, 0);
}

struct Special {
  u64 start = 0, end = 0;
};
Special g_cur[3];  // current vvar, vvar_vclock, vdso

u64 parse_hex(const char*& p) {
  u64 v = 0;
  for (;; ++p) {
    char c = *p;
    if (c >= '0' && c <= '9') v = v * 16 + static_cast<u64>(c - '0');
    else if (c >= 'a' && c <= 'f') v = v * 16 + static_cast<u64>(c - 'a' + 10);
    else return v;
  }
}

bool ends_with(const char* line, unsigned long n, const char* suffix) {
  unsigned long m = slen(suffix);
  return n >= m && memcmp(line + n - m, suffix, m) == 0;
}

// Finds where the kernel put [vvar], [vvar_vclock] and [vdso] for this process.
void find_specials() {
  static char buf[65536];
  long fd = check(sys(__NR_open, L("/proc/self/maps"), 0, 0), "open /proc/self/maps");
  u64 n = 0;
  for (;;) {
    long r = sys(__NR_read, fd, L(buf + n), sizeof(buf) - 1 - n);
    if (r <= 0) break;
    n += static_cast<u64>(r);
  }
  sys(__NR_close, fd);
  buf[n] = 0;
  char* line = buf;
  while (*line) {
    char* eol = line;
    while (*eol && *eol != '\n') ++eol;
    unsigned long len = static_cast<unsigned long>(eol - line);
    const char* p = line;
    u64 s = parse_hex(p);
    ++p;
    u64 e = parse_hex(p);
    int idx = -1;
    if (ends_with(line, len, "[vvar]")) idx = 0;
    else if (ends_with(line, len, "[vvar_vclock]")) idx = 1;
    else if (ends_with(line, len, "[vdso]")) idx = 2;
    if (idx >= 0) g_cur[idx] = {s, e};
    line = *eol ? eol + 1 : eol;
  }
}

// Moves the kernel's special mappings out of the way, unmaps everything that is not the
// stub, then moves the specials to where the image had them.
void reset_address_space() {
  find_specials();
  const u32 kinds[3] = {kVmaVvar, kVmaVvarVclock, kVmaVdso};
  Special want[3];
  for (u32 i = 0; i < H->n_vmas; ++i) {
    for (int k = 0; k < 3; ++k) {
      if (vmas()[i].kind == kinds[k]) want[k] = {vmas()[i].start, vmas()[i].end};
    }
  }
  u64 scratch = kStubScratch;
  Special parked[3];
  for (int k = 0; k < 3; ++k) {
    if (!g_cur[k].start) continue;
    if (!want[k].start) die("the kernel maps a special mapping the image does not have");
    if (want[k].end - want[k].start != g_cur[k].end - g_cur[k].start) die("vdso/vvar size differs from the image");
    u64 len = g_cur[k].end - g_cur[k].start;
    check(sys(__NR_mremap, L(g_cur[k].start), L(len), L(len), kMremapMaymove | kMremapFixed, L(scratch)),
          "park special mapping");
    parked[k] = {scratch, scratch + len};
    scratch += len;
  }
  for (int k = 0; k < 3; ++k) {
    if (want[k].start && !g_cur[k].start) die("the image has a special mapping this kernel does not");
  }
  check(sys(__NR_munmap, 0, L(kStubBase)), "unmap below the stub");
  const u64 top = 0x7ffffffff000ULL;
  check(sys(__NR_munmap, L(kStubBase + kStubSize), L(top - (kStubBase + kStubSize))), "unmap above the stub");
  for (int k = 0; k < 3; ++k) {
    if (!parked[k].start) continue;
    u64 len = parked[k].end - parked[k].start;
    check(sys(__NR_mremap, L(parked[k].start), L(len), L(len), kMremapMaymove | kMremapFixed, L(want[k].start)),
          "move special mapping");
  }
}

long open_checked_file(const VmaRec& v) {
  const int mode = (v.kind == kVmaFileShared && (v.prot & kProtWrite)) ? 2 /*O_RDWR*/ : 0 /*O_RDONLY*/;
  long fd = sys(__NR_open, L(str(v.path)), mode | kOCloexec, 0);
  if (failed(fd)) die("open a mapped file", fd);
  Stat st;
  check(sys(__NR_fstat, fd, L(&st)), "fstat a mapped file");
  if (static_cast<u64>(st.size) != v.file_size || static_cast<long long>(st.mtime) != v.mtime_sec ||
      static_cast<long long>(st.mtime_ns) != v.mtime_nsec) {
    die("a mapped file changed since the checkpoint");
  }
  return fd;
}

void map_vma(const VmaRec& v) {
  const u64 len = v.end - v.start;
  const long rw = kProtRead | kProtWrite;
  switch (v.kind) {
    case kVmaAnon:
      check(sys(__NR_mmap, L(v.start), L(len), L(v.prot), kMapPrivate | kMapFixed, g_pages_fd, L(v.pages_off)),
            "map anonymous memory from pages");
      if (g_eager && (v.prot & kProtWrite)) {
        // Private copies of every saved page now, in one call per run, instead of one
        // write fault each later (trades page-cache sharing for fewer faults).
        for (u32 r = 0; r < v.n_runs; ++r) {
          const RunRec& run = runs()[v.first_run + r];
          sys(__NR_madvise, L(v.start + run.first_page * kPageSize), L(run.n_pages * kPageSize), 23 /*MADV_POPULATE_WRITE*/);
        }
      }
      break;
    case kVmaNone:
      check(sys(__NR_mmap, L(v.start), L(len), L(v.prot), kMapPrivate | kMapFixed | kMapAnon | kMapNoreserve, -1, 0),
            "map PROT_NONE memory");
      break;
    case kVmaStack: {
      check(sys(__NR_mmap, L(v.start), L(len), rw, kMapPrivate | kMapFixed | kMapAnon | kMapGrowsdown, -1, 0),
            "map the stack");
      pread_all(g_pages_fd, reinterpret_cast<unsigned char*>(v.start), len, v.pages_off, "read the stack");
      check(sys(__NR_mprotect, L(v.start), L(len), L(v.prot)), "protect the stack");
      break;
    }
    case kVmaFile: {
      long fd = open_checked_file(v);
      long prot = v.n_runs ? (v.prot | rw) : v.prot;
      check(sys(__NR_mmap, L(v.start), L(len), prot, kMapPrivate | kMapFixed, fd, L(v.file_off)), "map a file");
      sys(__NR_close, fd);
      for (u32 r = 0; r < v.n_runs; ++r) {
        const RunRec& run = runs()[v.first_run + r];
        u64 off = run.first_page * kPageSize;
        pread_all(g_pages_fd, reinterpret_cast<unsigned char*>(v.start + off), run.n_pages * kPageSize,
                  v.pages_off + off, "read saved file pages");
      }
      if (v.n_runs) check(sys(__NR_mprotect, L(v.start), L(len), L(v.prot)), "protect a file mapping");
      break;
    }
    case kVmaFileShared: {
      long fd = open_checked_file(v);
      check(sys(__NR_mmap, L(v.start), L(len), L(v.prot), kMapShared | kMapFixed, fd, L(v.file_off)), "map a shared file");
      sys(__NR_close, fd);
      break;
    }
    default:
      break;  // specials: moved already
  }
}

struct PrctlMmMap {  // struct prctl_mm_map
  u64 start_code, end_code, start_data, end_data, start_brk, brk, start_stack, arg_start, arg_end,
      env_start, env_end;
  u64* auxv;
  unsigned int auxv_size;
  unsigned int exe_fd;
};

void set_mm() {
  static u64 auxv[kMaxAuxvWords];
  memcpy(auxv, H->auxv, sizeof(u64) * H->auxv_words);
  PrctlMmMap m{H->start_code, H->end_code, H->start_data, H->end_data, H->start_brk, H->brk,
               H->start_stack, H->arg_start, H->arg_end, H->env_start, H->env_end,
               auxv, static_cast<unsigned int>(H->auxv_words * sizeof(u64)), ~0u};
  check(sys(__NR_prctl, kPrSetMm, kPrSetMmMap, L(&m), sizeof(m), 0), "PR_SET_MM_MAP");
}

struct SockaddrIn {
  unsigned short family, port;
  unsigned int addr;
  unsigned char zero[8];
};

long make_fd(const FdRec& f) {
  const int nonblock_cloexec = (f.flags & 04000) | kOCloexec;  // O_NONBLOCK
  switch (f.kind) {
    case kFdFile: {
      long fd = sys(__NR_open, L(str(f.path)), (f.flags & ~kOCreatEtc) | kOCloexec, 0);
      if (failed(fd)) die("reopen a file", fd);
      if (f.pos) sys(__NR_lseek, fd, L(f.pos), kSeekSet);
      return fd;
    }
    case kFdPipe: {
      int p[2];
      check(sys(__NR_pipe2, L(p), kOCloexec), "pipe2");
      // Lift both ends above every image fd first so neither lands on the other's target.
      long hi[2];
      for (int k = 0; k < 2; ++k) {
        hi[k] = check(sys(__NR_fcntl, p[k], kFDupfdCloexec, L(H->max_fd) + 1), "lift a pipe end");
        sys(__NR_close, p[k]);
      }
      if (f.path.len) {  // bytes that were unread at the checkpoint
        check(sys(__NR_write, hi[1], L(str(f.path)), f.path.len) == f.path.len ? 0 : -5, "refill a pipe");
      }
      const bool is_read = (f.flags & 3) == 0;
      long mine = is_read ? hi[0] : hi[1];
      long other = is_read ? hi[1] : hi[0];
      check(sys(__NR_dup3, other, f.peer_fd, 0), "place the other pipe end");
      sys(__NR_close, other);
      return mine;
    }
    case kFdEventfd:
      return check(sys(__NR_eventfd2, L(f.a), nonblock_cloexec | (f.b ? 1 : 0)), "eventfd2");
    case kFdEpoll:
      return check(sys(__NR_epoll_create1, kOCloexec), "epoll_create1");
    case kFdTimerfd: {
      long fd = check(sys(__NR_timerfd_create, L(f.a), nonblock_cloexec), "timerfd_create");
      u64 value = f.b, interval = f.c;
      if (!value && f.d) value = 1;  // expirations not read yet: fire at once
      if (value || interval) {
        long long its[4] = {static_cast<long long>(interval / 1000000000ULL), static_cast<long long>(interval % 1000000000ULL),
                            static_cast<long long>(value / 1000000000ULL), static_cast<long long>(value % 1000000000ULL)};
        check(sys(__NR_timerfd_settime, fd, 0, L(its), 0), "timerfd_settime");
      }
      return fd;
    }
    case kFdSignalfd: {
      u64 mask = f.a;
      return check(sys(__NR_signalfd4, -1, L(&mask), 8, nonblock_cloexec), "signalfd4");
    }
    case kFdApiSocket: {
      long fd = check(sys(__NR_socket, kAfInet, kSockStream | kOCloexec, 0), "socket");
      SockaddrIn sa{static_cast<unsigned short>(kAfInet),
                    static_cast<unsigned short>(((f.a & 0xff) << 8) | ((f.a >> 8) & 0xff)),
                    0x0100007fu, {}};
      long r;
      do { r = sys(__NR_connect, fd, L(&sa), sizeof(sa)); } while (r == -4);
      check(r, "connect to the Runtime API");
      int one = 1;
      if (f.b) sys(__NR_setsockopt, fd, kIpprotoTcp, kTcpNodelay, L(&one), sizeof(one));
      if (f.c) sys(__NR_setsockopt, fd, kSolSocket, kSoKeepalive, L(&one), sizeof(one));
      return fd;
    }
  }
  die("unknown fd kind");
}

void restore_fds() {
  for (u32 i = 0; i < H->n_fds; ++i) {
    const FdRec& f = fds()[i];
    long fd;
    if (f.dup_of >= 0) {
      check(sys(__NR_dup3, f.dup_of, f.fd, f.cloexec ? kOCloexec : 0), "dup an fd");
      continue;
    }
    fd = f.dup_of == -3 ? f.fd : make_fd(f);  // -3: the other end of a pipe, placed already
    if (fd != f.fd) {
      check(sys(__NR_dup3, fd, f.fd, 0), "place an fd");
      sys(__NR_close, fd);
    }
    sys(__NR_fcntl, f.fd, kFSetfd, f.cloexec ? 1 : 0);
    if (f.kind == kFdFile || f.kind == kFdPipe || f.kind == kFdApiSocket) {
      sys(__NR_fcntl, f.fd, kFSetfl, L(f.flags & (02000 | 04000 | 040000)));  // APPEND NONBLOCK DIRECT
    }
  }
  for (u32 i = 0; i < H->n_epoll; ++i) {
    const EpollRec& e = epolls()[i];
    struct __attribute__((packed)) {
      unsigned int events;
      u64 data;
    } ev{e.events, e.data};
    check(sys(__NR_epoll_ctl, e.epfd, kEpollCtlAdd, e.tfd, L(&ev)), "epoll_ctl");
  }
}

void restore_process_state() {
  for (u32 i = 0; i < H->n_sigactions; ++i) {
    const SigactionRec& s = sigactions()[i];
    u64 ksa[4] = {s.handler, s.flags, s.restorer, s.mask};
    check(sys(__NR_rt_sigaction, s.sig, L(ksa), 0, 8), "rt_sigaction");
  }
  sys(__NR_umask, H->umask);
  sys(__NR_personality, H->personality);
  check(sys(__NR_chdir, L(str(H->cwd))), "chdir");
}

// Per-thread kernel state every restored thread sets for itself.
void restore_thread_state(const ThreadRec& t) {
  sys(__NR_set_tid_address, L(t.tid_address));
  if (t.robust_head) check(sys(__NR_set_robust_list, L(t.robust_head), L(t.robust_len)), "set_robust_list");
  if (t.ss_sp || t.ss_size) {
    struct { u64 sp; int flags; int pad; u64 size; } ss{t.ss_sp, t.ss_flags & ~1 /*SS_ONSTACK*/, 0, t.ss_size};
    check(sys(__NR_sigaltstack, L(&ss), 0), "sigaltstack");
  }
  if (t.rseq_ptr) check(sys(__NR_rseq, L(t.rseq_ptr), t.rseq_size, 0, t.rseq_sig), "rseq");
  sys(__NR_prctl, kPrSetName, L(t.comm), 0, 0, 0);
}

[[noreturn]] void park() {
  for (;;) sys(__NR_futex, L(&g_park_word), FUTEX_WAIT_PRIVATE, 0, 0, 0, 0);
}

extern "C" [[noreturn]] void stub_thread_main(const ThreadRec* t) {
  restore_thread_state(*t);
  __atomic_add_fetch(&g_threads_ready, 1, __ATOMIC_SEQ_CST);
  sys(__NR_futex, L(&g_threads_ready), FUTEX_WAKE_PRIVATE, 1, 0, 0, 0);
  park();
}

// clone(flags, stack) whose child calls stub_thread_main(arg) on `stack`.
extern "C" long stub_clone_thread(long flags, void* stack, const ThreadRec* arg);
__asm__(
    ".text\n"
    ".globl stub_clone_thread\n"
    "stub_clone_thread:\n"
    "  push %r12\n"            // keeps the stack aligned like a normal call frame
    "  mov %rdx, -8(%rsi)\n"    // also on the child's stack
    "  sub $16, %rsi\n"
    "  mov $56, %eax\n"         // __NR_clone(flags, stack, 0, 0, 0)
    "  xor %edx, %edx\n"
    "  xor %r10d, %r10d\n"
    "  xor %r8d, %r8d\n"
    "  syscall\n"
    "  test %rax, %rax\n"
    "  jnz 1f\n"
    "  mov 8(%rsp), %rdi\n"     // child: arg from its stack
    "  and $-16, %rsp\n"
    "  call stub_thread_main\n"
    "  ud2\n"
    "1:\n"
    "  pop %r12\n"
    "  ret\n");

// Creates the image's other threads with their exact tids: this process is pid 1 of a
// fresh pid namespace, which allocates pids in order, so gaps are burned with children
// that exit at once and are reaped.
void restore_threads() {
  long last = 1;
  for (u32 i = 1; i < H->n_threads; ++i) {
    const ThreadRec& t = threads()[i];
    while (last + 1 < t.tid) {
      long pid = check(sys(__NR_clone, kSigchld, 0, 0, 0, 0), "clone a pid burner");
      if (pid == 0) sys(__NR_exit, 0);
      int status;
      sys(__NR_wait4, pid, L(&status), 0x40000000 /*__WALL*/, 0);
      if (pid >= t.tid) die("cannot reproduce a thread id: pid allocation went past it");
      last = pid;
    }
    long tid = check(stub_clone_thread(kCloneThreadFlags, g_thread_stacks[i] + sizeof(g_thread_stacks[i]), &t),
                     "clone a thread");
    if (tid != t.tid) die("a restored thread got a different tid");
    last = tid;
  }
  for (;;) {
    int ready = __atomic_load_n(&g_threads_ready, __ATOMIC_SEQ_CST);
    if (ready == static_cast<int>(H->n_threads) - 1) break;
    sys(__NR_futex, L(&g_threads_ready), FUTEX_WAIT_PRIVATE, ready, 0, 0, 0);
  }
}

}  // namespace

extern "C" [[noreturn]] void stub_main(const long* initial_sp) {
  // initial_sp -> argc, argv[0], argv[1], ...
  if (initial_sp[0] >= 2) {
    const char* a = reinterpret_cast<const char*>(initial_sp[2]);
    g_eager = a && memcmp(a, "--eager", 8) == 0;
  }
  u64 all = ~0ULL;
  sys(__NR_rt_sigprocmask, 2 /*SIG_SETMASK*/, L(&all), 0, 8);
  if (sys(__NR_getpid) != 1) die("kiln-restore must be pid 1 of a new pid namespace");
  load_plan();
  move_inputs();
  reset_address_space();
  for (u32 i = 0; i < H->n_vmas; ++i) map_vma(vmas()[i]);
  set_mm();
  restore_fds();
  restore_process_state();
  restore_threads();
  restore_thread_state(threads()[0]);
  sys(__NR_close, g_pages_fd);
  char ok = 'R';
  check(sys(__NR_write, g_ready_fd, L(&ok), 1), "report ready");
  sys(__NR_close, g_ready_fd);
  park();
}

__asm__(
    ".text\n"
    ".globl _start\n"
    "_start:\n"
    "  mov %rsp, %rdi\n"          // the kernel's stack: argc, argv
    "  lea g_stack_top(%rip), %rsp\n"
    "  mov (%rsp), %rsp\n"
    "  and $-16, %rsp\n"
    "  call stub_main\n"
    "  ud2\n");

extern "C" {
__attribute__((used)) void* g_stack_top = g_main_stack + sizeof(g_main_stack);
}
