// The process the snapshot tests checkpoint and restore: 4 threads, heap, anonymous
// mmap, a private file mapping with a written page, eventfd, epoll, pipe, timerfd.
// Commands on stdin (one per line): "report" prints the state, "pipe" sends a byte
// through the pipe to the pipe thread, which prints "pipe-ok".
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

static volatile uint64_t counter, memchecks;
static volatile int membad;
static int efd, tfd, pipefd[2];
static unsigned char* heap;
static unsigned char* anon;
static unsigned char* filemap;
static volatile int tids[4];
enum { kHeap = 1 << 20, kAnon = 4 << 20, kFile = 64 << 10 };

static void sleep_ms(long ms) {
  struct timespec ts = {0, ms * 1000000L};
  nanosleep(&ts, NULL);
}

static void* counting(void* arg) {
  (void)arg;
  tids[1] = gettid();
  for (;;) {
    counter++;
    if (counter % 50 == 0) {
      uint64_t one = 1;
      if (write(efd, &one, 8) != 8) abort();
    }
    sleep_ms(1);
  }
}

static void* piping(void* arg) {
  (void)arg;
  tids[2] = gettid();
  for (;;) {
    char c;
    if (read(pipefd[0], &c, 1) == 1) {
      printf("pipe-ok %c\n", c);
      fflush(stdout);
    }
  }
}

static void* checking(void* arg) {
  (void)arg;
  tids[3] = gettid();
  for (;;) {
    int bad = 0;
    for (size_t i = 0; i < kHeap; i += 4096) bad |= heap[i] != (unsigned char)(i / 4096 * 7);
    for (size_t i = 0; i < kAnon; i += 4096) bad |= anon[i] != (unsigned char)(i / 4096 * 13 + 1);
    bad |= filemap[0] != 'W' || filemap[4096] != (unsigned char)(4096 % 251);
    if (bad) membad = 1;
    memchecks++;
    sleep_ms(5);
  }
}

int main(void) {
  tids[0] = gettid();
  heap = malloc(kHeap);
  for (size_t i = 0; i < kHeap; i += 4096) heap[i] = (unsigned char)(i / 4096 * 7);
  anon = mmap(NULL, kAnon, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  for (size_t i = 0; i < kAnon; i += 4096) anon[i] = (unsigned char)(i / 4096 * 13 + 1);
  int f = open("/snapdata/data.bin", O_RDONLY | O_CLOEXEC);
  filemap = mmap(NULL, kFile, PROT_READ | PROT_WRITE, MAP_PRIVATE, f, 0);
  if (f < 0 || filemap == MAP_FAILED) return 2;
  filemap[0] = 'W';
  efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  struct itimerspec its = {{0, 5000000}, {0, 5000000}};
  timerfd_settime(tfd, 0, &its, NULL);
  if (pipe2(pipefd, O_CLOEXEC) != 0) return 3;
  int ep = epoll_create1(EPOLL_CLOEXEC);
  struct epoll_event ev = {EPOLLIN, {.u64 = 1}};
  epoll_ctl(ep, EPOLL_CTL_ADD, efd, &ev);
  ev.data.u64 = 2;
  epoll_ctl(ep, EPOLL_CTL_ADD, tfd, &ev);
  ev.data.u64 = 3;
  epoll_ctl(ep, EPOLL_CTL_ADD, 0, &ev);
  pthread_t t;
  pthread_create(&t, NULL, counting, NULL);
  pthread_create(&t, NULL, piping, NULL);
  pthread_create(&t, NULL, checking, NULL);
  uint64_t events = 0, ticks = 0;
  char line[256];
  size_t have = 0;
  printf("ready\n");
  fflush(stdout);
  for (;;) {
    struct epoll_event got[4];
    int n = epoll_wait(ep, got, 4, -1);
    for (int i = 0; i < n; ++i) {
      uint64_t v;
      if (got[i].data.u64 == 1 && read(efd, &v, 8) == 8) events += v;
      if (got[i].data.u64 == 2 && read(tfd, &v, 8) == 8) ticks += v;
      if (got[i].data.u64 != 3) continue;
      ssize_t r = read(0, line + have, sizeof(line) - 1 - have);
      if (r <= 0) return 0;
      have += (size_t)r;
      char* nl;
      while ((nl = memchr(line, '\n', have))) {
        *nl = 0;
        if (strcmp(line, "report") == 0) {
          printf("counter=%lu events=%lu ticks=%lu memchecks=%lu membad=%d pid=%d tids=%d,%d,%d,%d\n",
                 (unsigned long)counter, (unsigned long)events, (unsigned long)ticks, (unsigned long)memchecks,
                 membad, getpid(), tids[0], tids[1], tids[2], tids[3]);
        } else if (strcmp(line, "pipe") == 0) {
          if (write(pipefd[1], "x", 1) != 1) abort();
        }
        fflush(stdout);
        size_t used = (size_t)(nl - line) + 1;
        memmove(line, nl + 1, have - used);
        have -= used;
      }
    }
  }
}
