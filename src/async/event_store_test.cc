#include "async/event_store.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <future>

namespace kiln::async {
namespace {

std::filesystem::path temp_db(const char* name) {
  auto dir = std::filesystem::temp_directory_path() / ("kiln-async-" + std::to_string(::getpid()) + "-" + name);
  std::filesystem::remove_all(dir);
  return dir / "events.db";
}

Status wait(std::function<void(EventStore::Done)> submit) {
  std::promise<Status> p;
  auto f = p.get_future();
  submit([&p](Status s) { p.set_value(std::move(s)); });
  return f.get();
}

EventRecord event(EventStore& store, const std::string& request_id, std::string payload = "{}") {
  EventRecord e;
  e.id = store.next_event_id();
  e.request_id = request_id;
  e.account_id = "123456789012";
  e.function_arn = "arn:aws:lambda:us-east-1:123456789012:function:f";
  e.payload = std::move(payload);
  e.received_ms = 1000;
  e.next_ms = 1000;
  return e;
}

TEST(EventStore, CommittedEventsSurviveReopenWithTheirState) {
  auto path = temp_db("reopen");
  int64_t id1, id2;
  {
    auto store = EventStore::open(path);
    ASSERT_TRUE(store.ok()) << store.status().message();
    auto e1 = event(**store, "r1", R"({"n":1})");
    auto e2 = event(**store, "r2");
    id1 = e1.id;
    id2 = e2.id;
    ASSERT_TRUE(wait([&](auto d) { (*store)->insert(e1, d); }).ok());
    ASSERT_TRUE(wait([&](auto d) { (*store)->insert(e2, d); }).ok());
    ASSERT_TRUE(wait([&](auto d) { (*store)->mark_in_flight(id2, 1, d); }).ok());
  }
  auto store = EventStore::open(path);
  ASSERT_TRUE(store.ok());
  auto pending = (*store)->load_pending();
  ASSERT_TRUE(pending.ok());
  ASSERT_EQ(pending->size(), 2u);
  EXPECT_EQ((*pending)[0].request_id, "r1");
  EXPECT_FALSE((*pending)[0].in_flight);
  EXPECT_TRUE((*pending)[1].in_flight);
  EXPECT_EQ((*pending)[1].attempts, 1);
  EXPECT_EQ(*(*store)->payload(id1), R"({"n":1})");
  EXPECT_GT((*store)->next_event_id(), id2);  // ids never reused
}

TEST(EventStore, FinishRemovesAndAddsFollowUpAndDeadLetterAtomically) {
  auto store = EventStore::open(temp_db("finish")).value();
  auto e = event(*store, "r1");
  ASSERT_TRUE(wait([&](auto d) { store->insert(e, d); }).ok());
  auto follow = event(*store, "dest");
  DeadLetter dead;
  dead.request_id = "r1";
  dead.account_id = e.account_id;
  dead.function_arn = e.function_arn;
  dead.condition = "RetriesExhausted";
  ASSERT_TRUE(wait([&](auto d) { store->finish(e.id, follow, dead, d); }).ok());
  auto pending = store->load_pending();
  ASSERT_EQ(pending->size(), 1u);
  EXPECT_EQ((*pending)[0].request_id, "dest");
  auto letters = store->dead_letters(e.account_id, "", 10);
  ASSERT_EQ(letters->size(), 1u);
  EXPECT_EQ((*letters)[0].condition, "RetriesExhausted");
  EXPECT_TRUE(store->dead_letters("999999999999", "", 10)->empty());  // other accounts see none
}

TEST(EventStore, OneBadWriteInABatchFailsAloneAndOthersCommit) {
  auto store = EventStore::open(temp_db("batch")).value();
  auto a = event(*store, "a");
  auto dup = a;  // same primary key: fails
  auto b = event(*store, "b");
  std::vector<std::future<Status>> results;
  std::vector<std::promise<Status>> promises(3);
  for (auto& p : promises) results.push_back(p.get_future());
  store->insert(a, [&](Status s) { promises[0].set_value(s); });
  store->insert(dup, [&](Status s) { promises[1].set_value(s); });
  store->insert(b, [&](Status s) { promises[2].set_value(s); });
  EXPECT_TRUE(results[0].get().ok());
  Status bad = results[1].get();
  EXPECT_FALSE(bad.ok());
  EXPECT_EQ(bad.type(), "ServiceException");
  EXPECT_TRUE(results[2].get().ok());
  EXPECT_EQ(store->load_pending()->size(), 2u);
}

TEST(EventStore, ReplayOfAMissingDeadLetterIsNotFound) {
  auto store = EventStore::open(temp_db("replay")).value();
  Status s = wait([&](auto d) { store->replay(12345, event(*store, "x"), d); });
  EXPECT_EQ(s.type(), "ResourceNotFoundException");
  EXPECT_TRUE(store->load_pending()->empty());
}

TEST(EventStore, AFullDiskRefusesTheWriteAndKeepsNothing) {
  auto path = temp_db("full");
  auto store = EventStore::open(path).value();
  ASSERT_TRUE(wait([&](auto d) { store->insert(event(*store, "small"), d); }).ok());
  // A real write failure: the file size limit makes write(2) fail with EFBIG.
  ::signal(SIGXFSZ, SIG_IGN);
  rlimit old{};
  ::getrlimit(RLIMIT_FSIZE, &old);
  rlimit tiny = old;
  tiny.rlim_cur = 64 * 1024;
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &tiny), 0);
  Status s = wait([&](auto d) { store->insert(event(*store, "big", std::string(256 * 1024, 'x')), d); });
  ::setrlimit(RLIMIT_FSIZE, &old);
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.http_status(), 500);
  EXPECT_NE(s.message().find("could not be made durable"), std::string::npos) << s.message();
  // The store keeps working once there is room again, and the refused event is not there.
  ASSERT_TRUE(wait([&](auto d) { store->insert(event(*store, "after"), d); }).ok());
  auto pending = store->load_pending();
  ASSERT_EQ(pending->size(), 2u);
  EXPECT_EQ((*pending)[1].request_id, "after");
}

TEST(EventStore, OpenFailsCleanlyWhereNoDatabaseCanBe) {
  auto store = EventStore::open("/proc/self/no-such/events.db");
  EXPECT_FALSE(store.ok());
}

}  // namespace
}  // namespace kiln::async
