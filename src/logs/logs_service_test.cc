#include "logs/logs_service.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <future>
#include <thread>

#include "logs/log_reader.h"

namespace kiln::logs {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

class LogsServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("kiln-logs-test-" + std::to_string(::getpid()) + "-" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    store_ = std::make_unique<worker::LogStore>(dir_);
    service_ = std::make_unique<LogsService>(*store_, "us-east-1");
  }
  void TearDown() override { fs::remove_all(dir_); }

  json ok(const char* op, json in, const std::string& account = "111111111111") {
    auto out = service_->call(op, in, account);
    EXPECT_TRUE(out.ok()) << op << ": " << out.status().type() << " " << out.status().message();
    return out.ok() ? *out : json();
  }
  std::string error(const char* op, json in, const std::string& account = "111111111111") {
    auto out = service_->call(op, in, account);
    EXPECT_FALSE(out.ok()) << op;
    return out.ok() ? "" : out.status().type();
  }

  fs::path dir_;
  std::unique_ptr<worker::LogStore> store_;
  std::unique_ptr<LogsService> service_;
};

TEST_F(LogsServiceTest, StreamNamesWithSlashesAndBracketsRoundTrip) {
  std::string name = "2026/01/02/[$LATEST]abc%def.x";
  EXPECT_EQ(worker::LogStore::decode_name(worker::LogStore::encode_name(name)), name);
  EXPECT_EQ(worker::LogStore::encode_name(name).find('/'), std::string::npos);
  EXPECT_EQ(worker::LogStore::encode_name(name).find('.'), std::string::npos);
  EXPECT_FALSE(worker::LogStore::decode_name("%4").has_value());
  EXPECT_FALSE(worker::LogStore::decode_name("%zz").has_value());
}

TEST_F(LogsServiceTest, DescribesGroupsAndStreamsOfTheCallersAccountOnly) {
  auto s1 = store_->open_stream("111111111111", "fn-a", "2026/01/01/[$LATEST]one");
  s1->append(1000, "hello\nworld\n");
  auto s2 = store_->open_stream("222222222222", "fn-b", "2026/01/01/[$LATEST]two");
  s2->append(1000, "other tenant");
  json groups = ok("DescribeLogGroups", json::object());
  ASSERT_EQ(groups["logGroups"].size(), 1u);
  EXPECT_EQ(groups["logGroups"][0]["logGroupName"], "/aws/lambda/fn-a");
  EXPECT_EQ(groups["logGroups"][0]["arn"], "arn:aws:logs:us-east-1:111111111111:log-group:/aws/lambda/fn-a:*");
  json streams = ok("DescribeLogStreams", {{"logGroupName", "/aws/lambda/fn-a"}});
  ASSERT_EQ(streams["logStreams"].size(), 1u);
  EXPECT_EQ(streams["logStreams"][0]["logStreamName"], "2026/01/01/[$LATEST]one");
  EXPECT_EQ(streams["logStreams"][0]["firstEventTimestamp"], 1000);
  EXPECT_EQ(error("DescribeLogStreams", {{"logGroupName", "/aws/lambda/fn-b"}}), "ResourceNotFoundException");
  EXPECT_EQ(error("DescribeLogStreams", {{"logGroupName", "/aws/lambda/../222222222222/fn-b"}}),
            "ResourceNotFoundException");
  EXPECT_EQ(error("GetLogEvents", {{"logGroupName", "/aws/lambda/fn-b"}, {"logStreamName", "x"}}),
            "ResourceNotFoundException");
}

TEST_F(LogsServiceTest, GetLogEventsPagesForwardAndBackward) {
  auto s = store_->open_stream("111111111111", "fn", "s1");
  for (int i = 0; i < 5; ++i) s->append(1000 + i, "line " + std::to_string(i));
  json in = {{"logGroupName", "/aws/lambda/fn"}, {"logStreamName", "s1"}, {"startFromHead", true}, {"limit", 2}};
  json page = ok("GetLogEvents", in);
  ASSERT_EQ(page["events"].size(), 2u);
  EXPECT_EQ(page["events"][0]["message"], "line 0");
  std::vector<std::string> seen;
  for (int round = 0; round < 5; ++round) {
    for (auto& e : page["events"]) seen.push_back(e["message"]);
    in["nextToken"] = page["nextForwardToken"];
    json next = ok("GetLogEvents", in);
    if (next["nextForwardToken"] == page["nextForwardToken"]) break;  // the end: same token
    page = next;
  }
  EXPECT_EQ(seen, (std::vector<std::string>{"line 0", "line 1", "line 2", "line 3", "line 4"}));
  json tail = ok("GetLogEvents", {{"logGroupName", "/aws/lambda/fn"}, {"logStreamName", "s1"}, {"limit", 2}});
  ASSERT_EQ(tail["events"].size(), 2u);
  EXPECT_EQ(tail["events"][1]["message"], "line 4");
  json before = ok("GetLogEvents", {{"logGroupName", "/aws/lambda/fn"}, {"logStreamName", "s1"}, {"limit", 2},
                                    {"nextToken", tail["nextBackwardToken"]}});
  ASSERT_EQ(before["events"].size(), 2u);
  EXPECT_EQ(before["events"][0]["message"], "line 1");
  EXPECT_EQ(error("GetLogEvents", {{"logGroupName", "/aws/lambda/fn"}, {"logStreamName", "s1"}, {"nextToken", "zz"}}),
            "InvalidParameterException");
  EXPECT_EQ(error("GetLogEvents", {{"logGroupName", "/aws/lambda/fn"}, {"logStreamName", "nope"}}),
            "ResourceNotFoundException");
}

TEST_F(LogsServiceTest, GetLogEventsReadsOnlyWhatAPageNeedsOfALargeStream) {
  auto s = store_->open_stream("111111111111", "fn", "big");
  std::string chunk;
  for (int i = 0; i < 1000; ++i) chunk += std::string(190, 'x') + " " + std::to_string(i) + "\n";
  for (int i = 0; i < 40; ++i) s->append(1000 + i, chunk);  // 40,000 events, about 8 MB
  const uint64_t stream_bytes = store_->group("111111111111", "fn")->bytes;
  ASSERT_GT(stream_bytes, 7u << 20);
  const uint64_t bound = 3 * 64 * 1024;  // a page of 10 small events, plus a block either side

  json in = {{"logGroupName", "/aws/lambda/fn"}, {"logStreamName", "big"}, {"limit", 10}};
  uint64_t before = service_->bytes_read();
  json tail = ok("GetLogEvents", in);
  ASSERT_EQ(tail["events"].size(), 10u);
  EXPECT_EQ(tail["events"][9]["timestamp"], 1039);
  EXPECT_LE(service_->bytes_read() - before, bound) << "the stream's end was not read by seeking";

  before = service_->bytes_read();
  json head = ok("GetLogEvents", {{"logGroupName", "/aws/lambda/fn"}, {"logStreamName", "big"}, {"limit", 10},
                                  {"startFromHead", true}});
  ASSERT_EQ(head["events"].size(), 10u);
  EXPECT_EQ(head["events"][0]["timestamp"], 1000);
  EXPECT_LE(service_->bytes_read() - before, bound);

  // From a token in the middle: the page starts there without reading what precedes it.
  before = service_->bytes_read();
  json back = ok("GetLogEvents", {{"logGroupName", "/aws/lambda/fn"}, {"logStreamName", "big"}, {"limit", 10},
                                  {"nextToken", tail["nextBackwardToken"]}});
  ASSERT_EQ(back["events"].size(), 10u);
  EXPECT_LE(service_->bytes_read() - before, bound);
}

TEST_F(LogsServiceTest, GetLogEventsTokensWalkAStreamOfManySegmentsBothWays) {
  store_->set_limits({256u << 20, 4096});  // small segments: a page crosses their borders
  auto s = store_->open_stream("111111111111", "fn", "s");
  std::vector<std::string> all;
  for (int i = 0; i < 600; ++i) {
    all.push_back("event " + std::to_string(i) + (i % 7 ? "" : std::string(100, '.')));
    s->append(1000 + i, all.back());
  }
  ASSERT_GT(store_->group("111111111111", "fn")->segments.size(), 2u);
  json base = {{"logGroupName", "/aws/lambda/fn"}, {"logStreamName", "s"}, {"limit", 7}};

  // Forward from the head to the end; at the end the same token comes back.
  json in = base;
  in["startFromHead"] = true;
  std::vector<std::string> seen;
  std::string token;
  for (int round = 0; round < 200; ++round) {
    json page = ok("GetLogEvents", in);
    for (auto& e : page["events"]) seen.push_back(e["message"]);
    if (page["events"].empty()) {
      EXPECT_EQ(page["nextForwardToken"], token) << "the end answers the token it was given";
      break;
    }
    token = page["nextForwardToken"];
    in["nextToken"] = token;
  }
  EXPECT_EQ(seen, all);

  // Backward from the end to the head; at the head the same backward token comes back.
  in = base;
  std::vector<std::string> reversed;
  json first_page;
  for (int round = 0; round < 200; ++round) {
    json page = ok("GetLogEvents", in);
    if (round == 0) first_page = page;
    for (size_t i = page["events"].size(); i > 0; --i) reversed.push_back(page["events"][i - 1]["message"]);
    if (page["events"].empty()) {
      EXPECT_EQ(page["nextBackwardToken"], in["nextToken"]);
      break;
    }
    in["nextToken"] = page["nextBackwardToken"];
  }
  EXPECT_EQ(std::vector<std::string>(reversed.rbegin(), reversed.rend()), all);

  // The forward token of a backward page continues right after it: here, the end.
  json after = ok("GetLogEvents", {{"logGroupName", "/aws/lambda/fn"}, {"logStreamName", "s"},
                                   {"nextToken", first_page["nextForwardToken"]}});
  EXPECT_TRUE(after["events"].empty());
  // ... and from a middle page, the next events in order.
  json mid_in = base;
  mid_in["startFromHead"] = true;
  json mid = ok("GetLogEvents", mid_in);
  // The token decides the direction: a forward token reads on from event 7.
  json mid_next = ok("GetLogEvents", {{"logGroupName", "/aws/lambda/fn"}, {"logStreamName", "s"}, {"limit", 3},
                                      {"nextToken", mid["nextForwardToken"]}});
  ASSERT_EQ(mid_next["events"].size(), 3u);
  EXPECT_EQ(mid_next["events"][0]["message"], all[7]);
  // Backward from there: the three before it; its forward token resumes right after them.
  json mid_back = ok("GetLogEvents", {{"logGroupName", "/aws/lambda/fn"}, {"logStreamName", "s"}, {"limit", 3},
                                      {"nextToken", mid_next["nextBackwardToken"]}});
  ASSERT_EQ(mid_back["events"].size(), 3u);
  EXPECT_EQ(mid_back["events"][2]["message"], all[6]);
  json resumed = ok("GetLogEvents", {{"logGroupName", "/aws/lambda/fn"}, {"logStreamName", "s"}, {"limit", 2},
                                     {"nextToken", mid_back["nextForwardToken"]}});
  ASSERT_EQ(resumed["events"].size(), 2u);
  EXPECT_EQ(resumed["events"][0]["message"], all[7]);
  // A time range still bounds the events.
  json ranged = ok("GetLogEvents", {{"logGroupName", "/aws/lambda/fn"}, {"logStreamName", "s"}, {"startFromHead", true},
                                    {"startTime", 1100}, {"endTime", 1102}});
  ASSERT_EQ(ranged["events"].size(), 3u);
  EXPECT_EQ(ranged["events"][0]["message"], all[100]);
}

TEST_F(LogsServiceTest, QueriesRunOnTheServicesOwnPool) {
  // Every thread of the logs pool is busy: work posted elsewhere (the control pool) is
  // not behind it, and the logs work runs once a thread frees.
  LogsService svc(*store_, "us-east-1", 1);
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::promise<std::thread::id> ran_on;
  svc.post([released] { released.wait(); });
  svc.post([&ran_on] { ran_on.set_value(std::this_thread::get_id()); });
  auto ran = ran_on.get_future();
  EXPECT_EQ(ran.wait_for(std::chrono::milliseconds(50)), std::future_status::timeout);
  release.set_value();
  EXPECT_NE(ran.get(), std::this_thread::get_id());
}

TEST_F(LogsServiceTest, FilterLogEventsMergesStreamsByTimeWithPatternsAndTokens) {
  auto a = store_->open_stream("111111111111", "fn", "a");
  auto b = store_->open_stream("111111111111", "fn", "b");
  a->append(10, "ERROR one");
  b->append(11, "INFO two");
  a->append(12, "ERROR three");
  b->append(13, "ERROR four");
  json all = ok("FilterLogEvents", {{"logGroupName", "/aws/lambda/fn"}});
  ASSERT_EQ(all["events"].size(), 4u);
  EXPECT_EQ(all["events"][1]["message"], "INFO two");
  EXPECT_FALSE(all.contains("nextToken"));
  json errors = ok("FilterLogEvents", {{"logGroupName", "/aws/lambda/fn"}, {"filterPattern", "ERROR"}, {"limit", 2}});
  ASSERT_EQ(errors["events"].size(), 2u);
  ASSERT_TRUE(errors.contains("nextToken"));
  json rest = ok("FilterLogEvents", {{"logGroupName", "/aws/lambda/fn"}, {"filterPattern", "ERROR"}, {"limit", 2},
                                     {"nextToken", errors["nextToken"]}});
  ASSERT_EQ(rest["events"].size(), 1u);
  EXPECT_EQ(rest["events"][0]["message"], "ERROR four");
  json ranged = ok("FilterLogEvents", {{"logGroupName", "/aws/lambda/fn"}, {"startTime", 11}, {"endTime", 12}});
  EXPECT_EQ(ranged["events"].size(), 2u);
  json only_b = ok("FilterLogEvents", {{"logGroupName", "/aws/lambda/fn"}, {"logStreamNames", {"b"}}});
  EXPECT_EQ(only_b["events"].size(), 2u);
  EXPECT_NE(all["events"][0]["eventId"], all["events"][1]["eventId"]);
  EXPECT_EQ(error("FilterLogEvents", {{"logGroupName", "/aws/lambda/fn"}, {"limit", 0}}), "InvalidParameterException");
  EXPECT_EQ(error("FilterLogEvents", {{"logGroupName", "/aws/lambda/fn"}, {"filterPattern", "{ $.a = 1 }"}}),
            "InvalidParameterException");
  EXPECT_EQ(error("FilterLogEvents", {{"logGroupName", "/aws/lambda/fn"}, {"nextToken", "bad"}}),
            "InvalidParameterException");
}

TEST_F(LogsServiceTest, SizeCapDeletesOldestSegmentsFirst) {
  store_->set_limits({/*max_bytes_per_function=*/20000, /*segment_bytes=*/2000});
  auto s = store_->open_stream("111111111111", "fn", "flood");
  std::string line(99, 'x');
  for (int i = 0; i < 2000; ++i) s->append(1000 + i, line);  // 200 KB through a 20 KB cap
  auto g = store_->group("111111111111", "fn");
  ASSERT_TRUE(g);
  EXPECT_LE(g->bytes, 20000u + 2100u);
  json events = ok("FilterLogEvents", {{"logGroupName", "/aws/lambda/fn"}});
  ASSERT_FALSE(events["events"].empty());
  EXPECT_EQ(events["events"].back()["timestamp"], 1000 + 1999);  // the newest survive
  EXPECT_GT(events["events"][0]["timestamp"].get<int64_t>(), 1000);
}

TEST_F(LogsServiceTest, RetentionAndDeleteLogGroup) {
  auto s = store_->open_stream("111111111111", "fn", "s");
  s->append(1000, "old");
  EXPECT_EQ(error("PutRetentionPolicy", {{"logGroupName", "/aws/lambda/fn"}, {"retentionInDays", 2}}),
            "InvalidParameterException");
  ok("PutRetentionPolicy", {{"logGroupName", "/aws/lambda/fn"}, {"retentionInDays", 1}});
  EXPECT_EQ(ok("DescribeLogGroups", json::object())["logGroups"][0]["retentionInDays"], 1);
  // Two days later the segment, last written "now", is past retention.
  EXPECT_GT(store_->enforce_retention(worker::epoch_ms_now() + 2 * 86400000LL), 0u);
  s->append(2000, "after the sweep");  // the stream starts a new segment
  json events = ok("FilterLogEvents", {{"logGroupName", "/aws/lambda/fn"}});
  ASSERT_EQ(events["events"].size(), 1u);
  EXPECT_EQ(events["events"][0]["message"], "after the sweep");
  ok("DeleteRetentionPolicy", {{"logGroupName", "/aws/lambda/fn"}});
  EXPECT_FALSE(ok("DescribeLogGroups", json::object())["logGroups"][0].contains("retentionInDays"));
  ok("DeleteLogGroup", {{"logGroupName", "/aws/lambda/fn"}});
  EXPECT_TRUE(ok("DescribeLogGroups", json::object())["logGroups"].empty());
  EXPECT_EQ(error("DeleteLogGroup", {{"logGroupName", "/aws/lambda/fn"}}), "ResourceNotFoundException");
  EXPECT_EQ(error("CreateExportTask", json::object()), "UnknownOperationException");
}

}  // namespace
}  // namespace kiln::logs
