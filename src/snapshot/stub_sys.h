// Raw x86_64 system calls and the few libc-like helpers of the freestanding restore stub.
// No libc: this header includes only kernel UAPI constants.
#pragma once

#include <asm/unistd.h>
#include <linux/futex.h>

namespace kiln::snapshot::stub {

using u64 = unsigned long long;

inline long sys6(long n, long a, long b, long c, long d, long e, long f) {
  long ret;
  register long r10 __asm__("r10") = d;
  register long r8 __asm__("r8") = e;
  register long r9 __asm__("r9") = f;
  __asm__ volatile("syscall"
                   : "=a"(ret)
                   : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
                   : "rcx", "r11", "memory");
  return ret;
}
inline long sys(long n, long a = 0, long b = 0, long c = 0, long d = 0, long e = 0, long f = 0) {
  return sys6(n, a, b, c, d, e, f);
}
template <typename T>
inline long L(T v) { return (long)(v); }

inline bool failed(long r) { return r < 0 && r > -4096; }

}  // namespace kiln::snapshot::stub

extern "C" {
void* memcpy(void* d, const void* s, unsigned long n);
void* memset(void* d, int c, unsigned long n);
int memcmp(const void* a, const void* b, unsigned long n);
void* memmove(void* d, const void* s, unsigned long n);
}
