#include "async/event_store.h"

#include <cstring>
#include <future>

#include "common/log.h"

namespace kiln::async {

namespace {

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS events(
  id INTEGER PRIMARY KEY, request_id TEXT NOT NULL, account TEXT NOT NULL, function_arn TEXT NOT NULL,
  qualifier TEXT NOT NULL, payload BLOB NOT NULL, received_ms INTEGER NOT NULL, next_ms INTEGER NOT NULL,
  attempts INTEGER NOT NULL, function_errors INTEGER NOT NULL, platform_errors INTEGER NOT NULL,
  in_flight INTEGER NOT NULL, last_error TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS dead_letters(
  id INTEGER PRIMARY KEY AUTOINCREMENT, request_id TEXT NOT NULL, account TEXT NOT NULL,
  function_arn TEXT NOT NULL, qualifier TEXT NOT NULL, payload BLOB NOT NULL, received_ms INTEGER NOT NULL,
  attempts INTEGER NOT NULL, condition TEXT NOT NULL, last_error TEXT NOT NULL, failed_ms INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS dead_letters_by_function ON dead_letters(account, function_arn, id);
CREATE TABLE IF NOT EXISTS invoke_configs(
  account TEXT NOT NULL, function_arn TEXT NOT NULL, qualifier TEXT NOT NULL, config TEXT NOT NULL,
  PRIMARY KEY(account, function_arn, qualifier));
)sql";

Status db_error(sqlite3* db, const std::string& what) {
  return ServiceError("The asynchronous event store failed (" + what + "): " + sqlite3_errmsg(db) +
                      "; the event could not be made durable");
}

// A prepared statement, finalized on scope exit. Binds by 1-based index.
class Stmt {
 public:
  Stmt(sqlite3* db, const char* sql) : db_(db) { rc_ = sqlite3_prepare_v2(db, sql, -1, &s_, nullptr); }
  ~Stmt() { sqlite3_finalize(s_); }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;
  bool ok() const { return rc_ == SQLITE_OK; }
  Stmt& bind(int i, const std::string& v) {
    sqlite3_bind_text(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    return *this;
  }
  Stmt& blob(int i, const std::string& v) {
    sqlite3_bind_blob(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_STATIC);
    return *this;
  }
  Stmt& bind(int i, int64_t v) {
    sqlite3_bind_int64(s_, i, v);
    return *this;
  }
  int step() { return sqlite3_step(s_); }
  // Runs a statement that returns no rows.
  Status run(const char* what) {
    if (!ok() || step() != SQLITE_DONE) return db_error(db_, what);
    return Status::Ok();
  }
  int64_t i64(int c) const { return sqlite3_column_int64(s_, c); }
  std::string text(int c) const {
    const void* p = sqlite3_column_blob(s_, c);
    return p ? std::string(static_cast<const char*>(p), sqlite3_column_bytes(s_, c)) : std::string();
  }

 private:
  sqlite3* db_;
  sqlite3_stmt* s_ = nullptr;
  int rc_;
};

Status exec(sqlite3* db, const char* sql) {
  if (sqlite3_exec(db, sql, nullptr, nullptr, nullptr) != SQLITE_OK) return db_error(db, sql);
  return Status::Ok();
}

Status insert_event(sqlite3* db, const EventRecord& e) {
  Stmt s(db,
         "INSERT INTO events(id, request_id, account, function_arn, qualifier, payload, received_ms, next_ms, "
         "attempts, function_errors, platform_errors, in_flight, last_error) VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?)");
  s.bind(1, e.id).bind(2, e.request_id).bind(3, e.account_id).bind(4, e.function_arn).bind(5, e.qualifier);
  s.blob(6, e.payload).bind(7, e.received_ms).bind(8, e.next_ms).bind(9, int64_t{e.attempts});
  s.bind(10, int64_t{e.function_errors}).bind(11, int64_t{e.platform_errors}).bind(12, int64_t{e.in_flight});
  s.bind(13, e.last_error);
  return s.run("insert event");
}

Status insert_dead_letter(sqlite3* db, const DeadLetter& d) {
  Stmt s(db,
         "INSERT INTO dead_letters(request_id, account, function_arn, qualifier, payload, received_ms, attempts, "
         "condition, last_error, failed_ms) VALUES(?,?,?,?,?,?,?,?,?,?)");
  s.bind(1, d.request_id).bind(2, d.account_id).bind(3, d.function_arn).bind(4, d.qualifier).blob(5, d.payload);
  s.bind(6, d.received_ms).bind(7, int64_t{d.attempts}).bind(8, d.condition).bind(9, d.last_error);
  s.bind(10, d.failed_ms);
  return s.run("insert dead letter");
}

sqlite3* open_connection(const std::filesystem::path& file, std::string* error) {
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(file.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr) !=
      SQLITE_OK) {
    *error = db ? sqlite3_errmsg(db) : "out of memory";
    sqlite3_close(db);
    return nullptr;
  }
  sqlite3_busy_timeout(db, 10000);
  return db;
}

DeadLetter read_dead_letter(const Stmt& s) {
  DeadLetter d;
  d.id = s.i64(0);
  d.request_id = s.text(1);
  d.account_id = s.text(2);
  d.function_arn = s.text(3);
  d.qualifier = s.text(4);
  d.payload = s.text(5);
  d.received_ms = s.i64(6);
  d.attempts = static_cast<int>(s.i64(7));
  d.condition = s.text(8);
  d.last_error = s.text(9);
  d.failed_ms = s.i64(10);
  return d;
}

constexpr const char* kDeadLetterColumns =
    "SELECT id, request_id, account, function_arn, qualifier, payload, received_ms, attempts, condition, "
    "last_error, failed_ms FROM dead_letters ";

}  // namespace

StatusOr<std::unique_ptr<EventStore>> EventStore::open(const std::filesystem::path& file) {
  std::error_code ec;
  std::filesystem::create_directories(file.parent_path(), ec);
  std::string err;
  sqlite3* w = open_connection(file, &err);
  if (!w) return ServiceError("cannot open the asynchronous event store " + file.string() + ": " + err);
  // SAFETY of durability: WAL + synchronous=FULL syncs the log on every commit.
  for (const char* sql : {"PRAGMA journal_mode=WAL", "PRAGMA synchronous=FULL", kSchema}) {
    if (Status s = exec(w, sql); !s.ok()) {
      sqlite3_close(w);
      return s;
    }
  }
  int64_t next_id = 1;
  {
    Stmt s(w, "SELECT COALESCE(MAX(id), 0) FROM events");
    if (s.ok() && s.step() == SQLITE_ROW) next_id = s.i64(0) + 1;
  }
  sqlite3* r = open_connection(file, &err);
  if (!r) {
    sqlite3_close(w);
    return ServiceError("cannot open the asynchronous event store " + file.string() + ": " + err);
  }
  return std::unique_ptr<EventStore>(new EventStore(w, r, next_id));
}

EventStore::EventStore(sqlite3* writer, sqlite3* reader, int64_t next_id)
    : writer_db_(writer), reader_db_(reader), next_id_(next_id) {
  writer_ = std::thread([this] { run_writer(); });
}

EventStore::~EventStore() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  writer_.join();
  sqlite3_close(reader_db_);
  sqlite3_close(writer_db_);
}

void EventStore::submit(Op op, Done done) {
  {
    std::lock_guard lock(mu_);
    if (!stopping_) {
      queue_.push_back({std::move(op), std::move(done)});
      ++submitted_;
      cv_.notify_all();
      return;
    }
  }
  if (done) done(ServiceError("The asynchronous event store is shutting down; the event could not be made durable"));
}

void EventStore::run_writer() {
  std::vector<Write> batch;
  for (;;) {
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;
      batch.swap(queue_);
    }
    commit_batch(batch);
    size_t n = batch.size();
    batch.clear();
    {
      std::lock_guard lock(mu_);
      completed_ += n;
    }
    cv_.notify_all();
  }
}

void EventStore::commit_batch(std::vector<Write>& batch) {
  sqlite3* db = writer_db_;
  std::vector<Status> results(batch.size());
  Status failure = exec(db, "BEGIN IMMEDIATE");
  for (size_t i = 0; i < batch.size() && failure.ok(); ++i) {
    if (Status s = exec(db, "SAVEPOINT w"); !s.ok()) {
      failure = s;
      break;
    }
    results[i] = batch[i].op(db);
    if (results[i].ok()) {
      failure = exec(db, "RELEASE w");
    } else if (sqlite3_get_autocommit(db)) {
      failure = results[i];  // SQLite rolled the whole transaction back (disk full, I/O error)
    } else {
      failure = exec(db, "ROLLBACK TO w");
      if (failure.ok()) failure = exec(db, "RELEASE w");
    }
  }
  if (failure.ok()) failure = exec(db, "COMMIT");
  if (!failure.ok()) {
    if (!sqlite3_get_autocommit(db)) exec(db, "ROLLBACK");
    for (auto& r : results) r = failure;
  }
  for (size_t i = 0; i < batch.size(); ++i) {
    if (!batch[i].done) continue;
    // Boundary: a callback that throws fails its own event, never the writer thread.
    try {
      batch[i].done(results[i]);
    } catch (const std::exception& e) {
      log::error(std::string("async: an event store callback threw: ") + e.what());
    }
  }
}

void EventStore::flush() {
  std::unique_lock lock(mu_);
  uint64_t target = submitted_;
  cv_.wait(lock, [&] { return completed_ >= target; });
}

void EventStore::insert(EventRecord e, Done done) {
  submit([e = std::move(e)](sqlite3* db) { return insert_event(db, e); }, std::move(done));
}

void EventStore::mark_in_flight(int64_t id, int attempts, Done done) {
  submit(
      [id, attempts](sqlite3* db) {
        Stmt s(db, "UPDATE events SET in_flight = 1, attempts = ? WHERE id = ?");
        return s.bind(1, int64_t{attempts}).bind(2, id).run("mark in flight");
      },
      std::move(done));
}

void EventStore::reschedule(const EventRecord& e, Done done) {
  submit(
      [e](sqlite3* db) {
        Stmt s(db,
               "UPDATE events SET in_flight = 0, next_ms = ?, attempts = ?, function_errors = ?, "
               "platform_errors = ?, last_error = ? WHERE id = ?");
        s.bind(1, e.next_ms).bind(2, int64_t{e.attempts}).bind(3, int64_t{e.function_errors});
        return s.bind(4, int64_t{e.platform_errors}).bind(5, e.last_error).bind(6, e.id).run("reschedule");
      },
      std::move(done));
}

void EventStore::finish(int64_t id, std::optional<EventRecord> follow_up, std::optional<DeadLetter> dead, Done done) {
  submit(
      [id, follow_up = std::move(follow_up), dead = std::move(dead)](sqlite3* db) {
        if (Status s = Stmt(db, "DELETE FROM events WHERE id = ?").bind(1, id).run("finish"); !s.ok()) return s;
        if (follow_up) {
          if (Status s = insert_event(db, *follow_up); !s.ok()) return s;
        }
        if (dead) return insert_dead_letter(db, *dead);
        return Status::Ok();
      },
      std::move(done));
}

void EventStore::replay(int64_t dead_letter_id, EventRecord e, Done done) {
  submit(
      [dead_letter_id, e = std::move(e)](sqlite3* db) {
        Stmt del(db, "DELETE FROM dead_letters WHERE id = ? AND account = ?");
        if (Status s = del.bind(1, dead_letter_id).bind(2, e.account_id).run("replay"); !s.ok()) return s;
        if (sqlite3_changes(db) == 0) return ResourceNotFound("Dead letter " + std::to_string(dead_letter_id) + " not found.");
        return insert_event(db, e);
      },
      std::move(done));
}

void EventStore::put_config(ConfigRow row, Done done) {
  submit(
      [row = std::move(row)](sqlite3* db) {
        Stmt s(db, "INSERT OR REPLACE INTO invoke_configs(account, function_arn, qualifier, config) VALUES(?,?,?,?)");
        return s.bind(1, row.account_id).bind(2, row.function_arn).bind(3, row.qualifier).bind(4, row.config_json)
            .run("put config");
      },
      std::move(done));
}

void EventStore::delete_config(std::string account_id, std::string function_arn, std::string qualifier, Done done) {
  submit(
      [=](sqlite3* db) {
        Stmt s(db, "DELETE FROM invoke_configs WHERE account = ? AND function_arn = ? AND qualifier = ?");
        return s.bind(1, account_id).bind(2, function_arn).bind(3, qualifier).run("delete config");
      },
      std::move(done));
}

StatusOr<std::vector<EventRecord>> EventStore::load_pending() {
  std::lock_guard lock(reader_mu_);
  Stmt s(reader_db_,
         "SELECT id, request_id, account, function_arn, qualifier, received_ms, next_ms, attempts, function_errors, "
         "platform_errors, in_flight, last_error FROM events ORDER BY id");
  if (!s.ok()) return db_error(reader_db_, "load events");
  std::vector<EventRecord> out;
  int rc;
  while ((rc = s.step()) == SQLITE_ROW) {
    EventRecord e;
    e.id = s.i64(0);
    e.request_id = s.text(1);
    e.account_id = s.text(2);
    e.function_arn = s.text(3);
    e.qualifier = s.text(4);
    e.received_ms = s.i64(5);
    e.next_ms = s.i64(6);
    e.attempts = static_cast<int>(s.i64(7));
    e.function_errors = static_cast<int>(s.i64(8));
    e.platform_errors = static_cast<int>(s.i64(9));
    e.in_flight = s.i64(10) != 0;
    e.last_error = s.text(11);
    out.push_back(std::move(e));
  }
  if (rc != SQLITE_DONE) return db_error(reader_db_, "load events");
  return out;
}

StatusOr<std::string> EventStore::payload(int64_t id) {
  std::lock_guard lock(reader_mu_);
  Stmt s(reader_db_, "SELECT payload FROM events WHERE id = ?");
  s.bind(1, id);
  int rc = s.ok() ? s.step() : SQLITE_ERROR;
  if (rc == SQLITE_ROW) return s.text(0);
  if (rc == SQLITE_DONE) return ResourceNotFound("event " + std::to_string(id) + " is gone");
  return db_error(reader_db_, "read payload");
}

StatusOr<std::vector<DeadLetter>> EventStore::dead_letters(const std::string& account_id,
                                                           const std::string& function_arn, size_t limit) {
  std::lock_guard lock(reader_mu_);
  std::string sql = std::string(kDeadLetterColumns) + "WHERE account = ?1 AND (?2 = '' OR function_arn = ?2) ORDER BY id LIMIT ?3";
  Stmt s(reader_db_, sql.c_str());
  if (!s.ok()) return db_error(reader_db_, "list dead letters");
  s.bind(1, account_id).bind(2, function_arn).bind(3, static_cast<int64_t>(limit));
  std::vector<DeadLetter> out;
  int rc;
  while ((rc = s.step()) == SQLITE_ROW) out.push_back(read_dead_letter(s));
  if (rc != SQLITE_DONE) return db_error(reader_db_, "list dead letters");
  return out;
}

StatusOr<EventStore::QueueStats> EventStore::queue_stats() {
  std::lock_guard lock(reader_mu_);
  QueueStats q;
  Stmt events(reader_db_, "SELECT COUNT(*), COALESCE(MIN(received_ms), 0) FROM events");
  if (!events.ok() || events.step() != SQLITE_ROW) return db_error(reader_db_, "count events");
  q.depth = static_cast<uint64_t>(events.i64(0));
  q.oldest_received_ms = events.i64(1);
  Stmt dead(reader_db_, "SELECT COUNT(*) FROM dead_letters");
  if (!dead.ok() || dead.step() != SQLITE_ROW) return db_error(reader_db_, "count dead letters");
  q.dead_letters = static_cast<uint64_t>(dead.i64(0));
  return q;
}

StatusOr<DeadLetter> EventStore::dead_letter(const std::string& account_id, int64_t id) {
  std::lock_guard lock(reader_mu_);
  std::string sql = std::string(kDeadLetterColumns) + "WHERE account = ? AND id = ?";
  Stmt s(reader_db_, sql.c_str());
  s.bind(1, account_id).bind(2, id);
  int rc = s.ok() ? s.step() : SQLITE_ERROR;
  if (rc == SQLITE_ROW) return read_dead_letter(s);
  if (rc == SQLITE_DONE) return ResourceNotFound("Dead letter " + std::to_string(id) + " not found.");
  return db_error(reader_db_, "read dead letter");
}

StatusOr<std::vector<ConfigRow>> EventStore::configs() {
  std::lock_guard lock(reader_mu_);
  Stmt s(reader_db_, "SELECT account, function_arn, qualifier, config FROM invoke_configs");
  if (!s.ok()) return db_error(reader_db_, "load configs");
  std::vector<ConfigRow> out;
  int rc;
  while ((rc = s.step()) == SQLITE_ROW) out.push_back({s.text(0), s.text(1), s.text(2), s.text(3)});
  if (rc != SQLITE_DONE) return db_error(reader_db_, "load configs");
  return out;
}

}  // namespace kiln::async
