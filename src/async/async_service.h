// Kiln's asynchronous invocations (InvocationType Event, InvokeAsync): the frontend's
// AsyncSink. An event is acknowledged only once it is committed and synced in the
// EventStore (group commit). A poller runs each event through the sync invoke path, at
// least once, taking turns among functions with a bounded number in flight; failed
// attempts are retried as the function's event invoke config says; the outcome goes to
// a destination function as Lambda's invocation record, or into the dead-letter store.
//
// Crash safety: every transition is written before it takes effect (queued → in flight
// with its attempt count → retried at a time / removed with its destination record or
// dead letter, in one transaction). After kill -9, events that were in flight run again:
// that is the one source of duplicates (the function ran, its outcome was not yet
// committed); recovered_in_flight() counts them.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "api/async_sink.h"
#include "async/event_store.h"
#include "async/invocation_record.h"
#include "async/invoke_config.h"
#include "async/retry_policy.h"
#include "async/scheduler.h"
#include "worker/invocation.h"

namespace kiln::api {
class AdminApi;
class Frontend;
}  // namespace kiln::api

namespace kiln::async {

// Wall-clock time in epoch milliseconds (injected so that tests control time).
class Clock {
 public:
  virtual ~Clock() = default;
  virtual int64_t now_ms() const = 0;
};
const Clock& system_clock();

// Runs one attempt as a sync invoke would (Frontend::invoke_function). Must not block;
// `done` runs once, on any thread, and never after the service is destroyed.
using InvokeDone = std::function<void(worker::InvokeResult, const std::string& executed_version)>;
using Invoker = std::function<void(const std::string& account, const std::string& function_arn,
                                   const std::string& qualifier, std::string payload, std::string request_id,
                                   InvokeDone done)>;

// A function's reserved concurrency (nullopt: none), by account and function name. The
// poller never runs more of a function's events at once than this.
using FunctionConcurrency =
    std::function<std::optional<uint64_t>(const std::string& account, const std::string& function_name)>;

struct AsyncOptions {
  std::filesystem::path store_file;      // e.g. DATA_DIR/async/events.db
  std::string region = "us-east-1";
  int64_t retry_base_ms = 60000;         // first retry after this, the second after twice it
  size_t max_in_flight = 0;              // 0 = 2 x cores
  size_t max_in_flight_per_function = 0; // 0 = max_in_flight - 1 (at least 1): one slot stays for others
};

class AsyncService : public api::AsyncSink {
 public:
  // Opens the store and loads the queue (in-flight events become due now).
  // `clock` must outlive the service.
  static StatusOr<std::unique_ptr<AsyncService>> open(AsyncOptions options, Invoker invoker, const Clock& clock);
  // Stops the poller, then commits every queued write.
  ~AsyncService() override;

  void enqueue(api::AsyncEvent event, std::function<void(Status)> done) override;

  // Where the poller reads each function's reserved concurrency. Set before start().
  void set_function_concurrency(FunctionConcurrency concurrency) { concurrency_ = std::move(concurrency); }
  // Starts the poller thread (run_due whenever an event may be due).
  void start();
  // Dispatches every event due now that has a slot. The poller's step; tests call it.
  void run_due();
  // Blocks until no attempt is in progress (tests).
  void wait_idle();

  // Registers the event invoke config operations and the admin actions ListDeadLetters
  // and ReplayDeadLetter. `this` must outlive the frontend's serving.
  void register_with(api::Frontend& frontend, api::AdminApi& admin);

  InvokeConfigs& configs() { return configs_; }
  EventStore& store() { return *store_; }
  size_t recovered_in_flight() const { return recovered_in_flight_; }
  size_t queued() const;
  size_t running() const;

  // Admin actions (exposed for tests): see admin.h for the shapes.
  StatusOr<std::string> replay_dead_letter(const std::string& account, int64_t id);

 private:
  AsyncService(AsyncOptions options, Invoker invoker, const Clock& clock, std::unique_ptr<EventStore> store);
  void run_poller();
  void add_ready(const EventRecord& meta);  // requires mu_
  void dispatch(EventRecord e);
  // Runs the attempt once its start is durable (s ok) or reschedules it.
  void start_attempt(EventRecord e, std::string payload, const Status& s);
  // Runs one step of event e; if it throws, logs it and reschedules e as after a
  // platform error. Input never stops the poller.
  void guarded(const EventRecord& e, const std::function<void()>& step);
  void attempt_done(EventRecord e, std::string payload, worker::InvokeResult r, const std::string& version);
  // A throttled attempt did not run: it is not counted, and the event waits a short,
  // fixed time (or for its function's next slot) rather than backing off.
  void throttled(EventRecord e, const worker::InvokeResult& r);
  std::optional<uint64_t> lane_limit(const std::string& function_key) const;
  // Settles an event for good: destination record or dead letter, then removal.
  void settle(EventRecord e, const std::string& payload, const std::string& condition,
              std::optional<AttemptResponse> response, const std::string& destination);
  void release(int64_t id, std::optional<EventRecord> requeue, std::optional<EventRecord> added);
  EventRecord destination_event(const EventRecord& source, const std::string& destination_arn, std::string record);
  std::string function_key(const EventRecord& e) const { return e.account_id + "\n" + e.function_arn; }

  AsyncOptions options_;
  Invoker invoker_;
  const Clock& clock_;
  std::unique_ptr<EventStore> store_;  // reset first in the destructor: its callbacks use the members below
  InvokeConfigs configs_;
  FunctionConcurrency concurrency_;
  size_t recovered_in_flight_ = 0;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  Scheduler scheduler_;                  // guarded by mu_
  std::map<int64_t, EventRecord> meta_;  // guarded by mu_: queued and running events, without payloads
  bool wake_ = false;                    // guarded by mu_
  bool stopping_ = false;                // guarded by mu_
  std::thread poller_;
};

}  // namespace kiln::async
