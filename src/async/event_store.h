// The durable side of asynchronous invocations: queued events, dead letters and event
// invoke configs in one SQLite database (WAL, synchronous=FULL).
//
// Writes are group-committed: every write is queued to one writer thread, which runs
// whatever accumulated in a single transaction (one savepoint per write, so that one
// bad write fails alone) and calls each write's `done` after the commit is synced, or
// with the error that kept it from being durable. A `done(Ok)` therefore means the
// change survives kill -9 and power loss (as far as fdatasync does).
// Reads use a separate connection and see every committed write.
#pragma once

#include <sqlite3.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/status.h"

namespace kiln::async {

struct EventRecord {
  int64_t id = 0;
  std::string request_id;   // the event's identity, kept across retries
  std::string account_id;
  std::string function_arn; // unqualified
  std::string qualifier;    // "" = $LATEST
  std::string payload;      // empty in records from load_pending()
  int64_t received_ms = 0;
  int64_t next_ms = 0;      // not before
  int attempts = 0;
  int function_errors = 0;
  int platform_errors = 0;
  bool in_flight = false;   // an attempt had started and its outcome was not recorded
  std::string last_error;
};

struct DeadLetter {
  int64_t id = 0;
  std::string request_id, account_id, function_arn, qualifier, payload, condition, last_error;
  int attempts = 0;
  int64_t received_ms = 0;
  int64_t failed_ms = 0;
};

struct ConfigRow {
  std::string account_id, function_arn, qualifier, config_json;
};

class EventStore {
 public:
  using Done = std::function<void(Status)>;

  // Opens (creating) the database at `file`, its folder included.
  static StatusOr<std::unique_ptr<EventStore>> open(const std::filesystem::path& file);
  // Commits every write queued so far, then stops the writer.
  ~EventStore();

  // A fresh event id (thread-safe; ids only grow).
  int64_t next_event_id() { return next_id_.fetch_add(1); }

  // Writes: thread-safe, never block; `done` runs on the writer thread and must not block.
  void insert(EventRecord e, Done done);
  void mark_in_flight(int64_t id, int attempts, Done done);
  // Records an attempt's outcome for a retry: counters, next_ms, last_error, not in flight.
  void reschedule(const EventRecord& e, Done done);
  // Removes the event and, in the same transaction, queues `follow_up` (a destination's
  // invocation record) and/or keeps a dead letter.
  void finish(int64_t id, std::optional<EventRecord> follow_up, std::optional<DeadLetter> dead, Done done);
  // Removes dead letter `dead_letter_id` and queues `e` in its place (NotFound if gone).
  void replay(int64_t dead_letter_id, EventRecord e, Done done);
  void put_config(ConfigRow row, Done done);
  void delete_config(std::string account_id, std::string function_arn, std::string qualifier, Done done);
  // Blocks until every write queued before the call has been committed (or failed).
  void flush();

  // Reads: thread-safe, block on SQLite.
  StatusOr<std::vector<EventRecord>> load_pending();
  StatusOr<std::string> payload(int64_t id);
  // For metrics: events waiting or running, the oldest one's receive time (0 if none),
  // and dead letters kept. Reads the store (scrape time only).
  struct QueueStats {
    uint64_t depth = 0;
    int64_t oldest_received_ms = 0;
    uint64_t dead_letters = 0;
  };
  StatusOr<QueueStats> queue_stats();

  // Dead letters of an account, oldest first; function_arn "" = all functions.
  StatusOr<std::vector<DeadLetter>> dead_letters(const std::string& account_id, const std::string& function_arn,
                                                 size_t limit);
  StatusOr<DeadLetter> dead_letter(const std::string& account_id, int64_t id);
  StatusOr<std::vector<ConfigRow>> configs();

 private:
  using Op = std::function<Status(sqlite3*)>;
  struct Write {
    Op op;
    Done done;
  };
  EventStore(sqlite3* writer, sqlite3* reader, int64_t next_id);
  void submit(Op op, Done done);
  void run_writer();
  void commit_batch(std::vector<Write>& batch);

  sqlite3* writer_db_;  // used by the writer thread only (and the constructor)
  sqlite3* reader_db_;  // guarded by reader_mu_
  std::mutex reader_mu_;
  std::atomic<int64_t> next_id_;

  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Write> queue_;  // guarded by mu_
  bool stopping_ = false;     // guarded by mu_
  uint64_t submitted_ = 0;    // guarded by mu_: writes queued
  uint64_t completed_ = 0;    // guarded by mu_: writes whose done has run
  std::thread writer_;
};

}  // namespace kiln::async
