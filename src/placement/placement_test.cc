#include "placement/placement.h"

#include <gtest/gtest.h>

#include <map>

namespace kiln::placement {
namespace {

struct FakeWorker : WorkerSlot {
  uint64_t n = 0;
  bool open = true;
  uint64_t load() const override { return n; }
  bool accepting() const override { return open; }
};

TEST(Placement, NoWorkerAcceptingGivesNull) {
  FakeWorker w;
  w.open = false;
  PlacementService p({&w});
  EXPECT_EQ(p.pick(), nullptr);
}

TEST(Placement, SkipsWorkersThatDoNotAccept) {
  FakeWorker full, free;
  full.open = false;
  PlacementService p({&full, &free}, 1);
  for (int i = 0; i < 20; ++i) EXPECT_EQ(p.pick(), &free);
}

TEST(Placement, SpreadsABurstAcrossWorkers) {
  std::vector<FakeWorker> workers(4);
  std::vector<WorkerSlot*> slots;
  for (auto& w : workers) slots.push_back(&w);
  PlacementService p(slots, 42);
  for (int i = 0; i < 400; ++i) static_cast<FakeWorker*>(p.pick())->n++;
  for (auto& w : workers) {
    EXPECT_GT(w.n, 80u);
    EXPECT_LT(w.n, 120u);
  }
}

}  // namespace
}  // namespace kiln::placement
