// CgroupLayout against fake cgroup trees (plain directories): which files get which
// values on v1 and v2. Real cgroups are exercised by jail_test.
#include "sandbox/cgroup.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "sandbox/test_util.h"

namespace kiln::sandbox {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;
using testing::write_file;

std::string slurp(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(CgroupPath, FindsV1ControllersAndTheUnifiedEntry) {
  const std::string self = "9:name=systemd:/\n4:memory:/svc/kiln\n2:cpu,cpuacct:/c\n0::/unified/x\n";
  EXPECT_EQ(*cgroup_path_of(self, "memory"), "/svc/kiln");
  EXPECT_EQ(*cgroup_path_of(self, "cpu"), "/c");
  EXPECT_EQ(*cgroup_path_of(self, ""), "/unified/x");
  EXPECT_FALSE(cgroup_path_of(self, "pids").ok());
  EXPECT_FALSE(cgroup_path_of("garbage", "").ok());
}

TEST(CgroupLayout, V2EnablesControllersAndWritesLimits) {
  TempDir root;
  write_file(root.path() / "cgroup.controllers", "cpuset cpu io memory pids\n", 0644);
  write_file(root.path() / "system.slice/kiln.service/cgroup.controllers", "cpu memory pids\n", 0644);
  auto layout = CgroupLayout::detect(root.path(), "0::/system.slice/kiln.service\n", "kiln");
  ASSERT_TRUE(layout.ok()) << layout.status().message();
  EXPECT_TRUE(layout->v2());
  const fs::path own = root.path() / "system.slice/kiln.service";
  EXPECT_EQ(slurp(own / "cgroup.subtree_control"), "+memory +pids +cpu");
  EXPECT_EQ(slurp(own / "kiln/cgroup.subtree_control"), "+memory +pids +cpu");

  CgroupLimits limits;
  limits.memory_bytes = 256ull << 20;
  limits.pids_max = 77;
  limits.vcpus = 0.5;
  limits.cpu_quota = true;
  auto cg = layout->create("sb-1", limits);
  ASSERT_TRUE(cg.ok()) << cg.status().message();
  const fs::path d = own / "kiln/sb-1";
  EXPECT_EQ(slurp(d / "memory.max"), "268435456");
  EXPECT_EQ(slurp(d / "memory.swap.max"), "0");
  // v2's memory.max counts socket buffers: no v1 kmem file is written.
  EXPECT_FALSE(fs::exists(d / "memory.kmem.tcp.limit_in_bytes"));
  EXPECT_EQ(slurp(d / "pids.max"), "77");
  EXPECT_EQ(slurp(d / "cpu.weight"), "50");
  EXPECT_EQ(slurp(d / "cpu.max"), "50000 100000");
  EXPECT_GE(cg->clone_into_fd(), 0);
  EXPECT_FALSE(cg->out_of_memory());
  write_file(d / "memory.events", "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n", 0644);
  write_file(d / "memory.peak", "123456\n", 0644);
  EXPECT_TRUE(cg->out_of_memory());
  EXPECT_EQ(cg->peak_memory_bytes(), 123456u);
  EXPECT_FALSE(layout->create("sb-1", limits).ok());  // ids are unique
}

// A prefix of several levels ("kiln/<instance>"): each level gets the controllers.
TEST(CgroupLayout, V2EnablesControllersAtEveryLevelOfThePrefix) {
  TempDir root;
  write_file(root.path() / "cgroup.controllers", "cpu memory pids\n", 0644);
  write_file(root.path() / "k/cgroup.controllers", "memory pids\n", 0644);
  auto layout = CgroupLayout::detect(root.path(), "0::/k\n", "kiln/inst-1");
  ASSERT_TRUE(layout.ok()) << layout.status().message();
  EXPECT_EQ(layout->bases()[0], root.path() / "k/kiln/inst-1");
  EXPECT_EQ(slurp(root.path() / "k/kiln/cgroup.subtree_control"), "+memory +pids");
  EXPECT_EQ(slurp(root.path() / "k/kiln/inst-1/cgroup.subtree_control"), "+memory +pids");
  layout->remove_bases();
  EXPECT_TRUE(fs::exists(root.path() / "k/kiln/inst-1"));  // not empty: the fake control files
}

TEST(CgroupNames, DataDirTagsDifferAndStartTimesNameProcesses) {
  EXPECT_EQ(data_dir_tag("/a/data/sandboxes"), data_dir_tag("/a/data/./sandboxes"));
  EXPECT_NE(data_dir_tag("/a/data/sandboxes"), data_dir_tag("/b/data/sandboxes"));
  EXPECT_EQ(data_dir_tag("/a").size(), 17u);
  EXPECT_GT(process_start_time(::getpid()), 0u);
  EXPECT_EQ(process_start_time(999999999), 0u);
}

TEST(CgroupLayout, V2WithoutMemoryControllerFails) {
  TempDir root;
  write_file(root.path() / "cgroup.controllers", "memory pids\n", 0644);
  write_file(root.path() / "k/cgroup.controllers", "pids\n", 0644);
  EXPECT_FALSE(CgroupLayout::detect(root.path(), "0::/k\n", "kiln").ok());
}

TEST(CgroupLayout, V1UsesEachHierarchyUnderKilnsOwnCgroup) {
  TempDir root;
  for (const char* c : {"memory", "pids", "cpu"}) fs::create_directories(root.path() / c);
  auto layout = CgroupLayout::detect(root.path(), "4:memory:/api/x\n3:pids:/\n2:cpu,cpuacct:/\n", "kiln");
  ASSERT_TRUE(layout.ok()) << layout.status().message();
  EXPECT_FALSE(layout->v2());
  ASSERT_EQ(layout->bases().size(), 3u);
  EXPECT_EQ(layout->bases()[0], root.path() / "memory/api/x/kiln");
  EXPECT_EQ(layout->bases()[1], root.path() / "pids/kiln");
  CgroupLimits limits;
  limits.memory_bytes = 128ull << 20;
  limits.vcpus = 1.0;
  auto cg = layout->create("sb-2", limits);
  ASSERT_TRUE(cg.ok()) << cg.status().message();
  EXPECT_EQ(slurp(root.path() / "memory/api/x/kiln/sb-2/memory.limit_in_bytes"), "134217728");
  EXPECT_EQ(slurp(root.path() / "memory/api/x/kiln/sb-2/memory.memsw.limit_in_bytes"), "134217728");
  // v1 leaves socket buffers out of memory.limit_in_bytes: they get the same bound.
  EXPECT_EQ(slurp(root.path() / "memory/api/x/kiln/sb-2/memory.kmem.tcp.limit_in_bytes"), "134217728");
  EXPECT_EQ(slurp(root.path() / "pids/kiln/sb-2/pids.max"), "1024");
  EXPECT_EQ(slurp(root.path() / "cpu/kiln/sb-2/cpu.shares"), "1024");
  EXPECT_EQ(cg->clone_into_fd(), -1);
  write_file(root.path() / "memory/api/x/kiln/sb-2/memory.oom_control",
             "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n", 0644);
  EXPECT_TRUE(cg->out_of_memory());
}

// A pooled shell's cgroup: created without limits, renamed to the sandbox's id at
// activation, then limited (memory and pids first, the CPU share once the runtime runs).
TEST(CgroupLayout, V1ShellCgroupIsRenamedThenLimited) {
  TempDir root;
  for (const char* c : {"memory", "pids", "cpu"}) fs::create_directories(root.path() / c);
  auto layout = CgroupLayout::detect(root.path(), "4:memory:/\n3:pids:/\n2:cpu,cpuacct:/\n", "kiln");
  ASSERT_TRUE(layout.ok()) << layout.status().message();
  auto cg = layout->create_unlimited("shell-1");
  ASSERT_TRUE(cg.ok()) << cg.status().message();
  EXPECT_FALSE(fs::exists(root.path() / "memory/kiln/shell-1/memory.limit_in_bytes"));
  ASSERT_TRUE(layout->create_unlimited("taken").ok());
  EXPECT_FALSE(cg->rename("taken").ok());  // another sandbox's id: refused, nothing moved
  ASSERT_TRUE(cg->rename("sb-3").ok());
  for (const char* c : {"memory", "pids", "cpu"}) {
    EXPECT_FALSE(fs::exists(root.path() / c / "kiln/shell-1")) << c;
    EXPECT_TRUE(fs::exists(root.path() / c / "kiln/sb-3/cgroup.procs")) << c;
  }
  CgroupLimits limits;
  limits.memory_bytes = 64ull << 20;
  limits.pids_max = 40;
  limits.vcpus = 0.5;
  ASSERT_TRUE(cg->set_limits(limits).ok());
  EXPECT_EQ(slurp(root.path() / "memory/kiln/sb-3/memory.limit_in_bytes"), "67108864");
  EXPECT_EQ(slurp(root.path() / "pids/kiln/sb-3/pids.max"), "40");
  EXPECT_FALSE(fs::exists(root.path() / "cpu/kiln/sb-3/cpu.shares"));
  cg->set_cpu(limits);
  EXPECT_EQ(slurp(root.path() / "cpu/kiln/sb-3/cpu.shares"), "512");
  write_file(root.path() / "memory/kiln/sb-3/memory.max_usage_in_bytes", "4096\n", 0644);
  EXPECT_EQ(cg->peak_memory_bytes(), 4096u);  // read where the cgroup now is
}

TEST(CgroupLayout, NoMemoryControllerFails) {
  TempDir root;
  fs::create_directories(root.path() / "pids");
  EXPECT_FALSE(CgroupLayout::detect(root.path(), "3:pids:/\n", "kiln").ok());
}

}  // namespace
}  // namespace kiln::sandbox
