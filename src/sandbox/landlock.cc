#include "sandbox/landlock.h"

#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <initializer_list>

namespace kiln::sandbox {
namespace {

// The stable kernel ABI, spelled out here so older headers still build.
constexpr uint64_t kExecute = 1ull << 0, kWriteFile = 1ull << 1, kReadFile = 1ull << 2,
                   kReadDir = 1ull << 3, kTruncate = 1ull << 14, kIoctlDev = 1ull << 15;
constexpr uint64_t kScopeAbstractUnix = 1ull << 0, kScopeSignal = 1ull << 1;
constexpr uint32_t kCreateVersion = 1u << 0;
constexpr int kRulePathBeneath = 1;

struct RulesetAttr {
  uint64_t handled_access_fs;
  uint64_t handled_access_net;
  uint64_t scoped;
};
struct __attribute__((packed)) PathBeneathAttr {
  uint64_t allowed_access;
  int32_t parent_fd;
};

uint64_t handled_fs(int abi) {
  uint64_t all = (1ull << 13) - 1;  // ABI 1: execute .. make_sym
  if (abi >= 2) all |= 1ull << 13;  // refer
  if (abi >= 3) all |= kTruncate;
  if (abi >= 5) all |= kIoctlDev;
  return all;
}

// SAFETY: path is a NUL-terminated literal; the O_PATH fd is closed before returning.
int allow(int ruleset, const char* path, uint64_t access) {
  int fd = ::open(path, O_PATH | O_CLOEXEC);
  if (fd < 0) return errno == ENOENT ? 0 : errno;
  PathBeneathAttr rule{access, fd};
  int rc = static_cast<int>(::syscall(SYS_landlock_add_rule, ruleset, kRulePathBeneath, &rule, 0));
  int err = rc == 0 ? 0 : errno;
  ::close(fd);
  return err;
}

}  // namespace

int landlock_abi() {
  long v = ::syscall(SYS_landlock_create_ruleset, nullptr, 0, kCreateVersion);
  return v > 0 ? static_cast<int>(v) : 0;
}

int apply_landlock(int abi) {
  if (abi <= 0) return 0;
  const uint64_t all = handled_fs(abi);
  RulesetAttr attr{all, 0, abi >= 6 ? (kScopeAbstractUnix | kScopeSignal) : 0};
  size_t size = abi >= 6 ? sizeof(RulesetAttr) : abi >= 4 ? 16 : 8;
  int ruleset = static_cast<int>(::syscall(SYS_landlock_create_ruleset, &attr, size, 0));
  if (ruleset < 0) return errno;
  const uint64_t device = (kReadFile | kWriteFile | kTruncate | kIoctlDev) & all;
  int err = allow(ruleset, "/", kExecute | kReadFile | kReadDir);
  if (!err) err = allow(ruleset, "/tmp", all);
  for (const char* dev : {"/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom"}) {
    if (!err) err = allow(ruleset, dev, device);
  }
  if (!err && ::syscall(SYS_landlock_restrict_self, ruleset, 0) != 0) err = errno;
  ::close(ruleset);
  return err;
}

}  // namespace kiln::sandbox
