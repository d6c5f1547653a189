#include "async/async_service.h"

#include <algorithm>
#include <chrono>
#include <thread>

#include "common/log.h"
#include "registry/registry.h"

namespace kiln::async {

namespace {

class SystemClock : public Clock {
 public:
  int64_t now_ms() const override {
    using namespace std::chrono;
    return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
  }
};

size_t default_in_flight() { return std::max(2u, 2 * std::thread::hardware_concurrency()); }

}  // namespace

const Clock& system_clock() {
  static const SystemClock clock;
  return clock;
}

StatusOr<std::unique_ptr<AsyncService>> AsyncService::open(AsyncOptions options, Invoker invoker,
                                                            const Clock& clock) {
  auto store = EventStore::open(options.store_file);
  if (!store.ok()) return store.status();
  if (options.max_in_flight == 0) options.max_in_flight = default_in_flight();
  if (options.max_in_flight_per_function == 0) {
    options.max_in_flight_per_function = std::max<size_t>(1, options.max_in_flight - 1);
  }
  options.retry_base_ms = std::max<int64_t>(1, options.retry_base_ms);
  std::unique_ptr<AsyncService> s(new AsyncService(std::move(options), std::move(invoker), clock, std::move(*store)));
  if (Status st = s->configs_.load(); !st.ok()) return st;
  auto pending = s->store_->load_pending();
  if (!pending.ok()) return pending.status();
  int64_t now = clock.now_ms();
  std::lock_guard lock(s->mu_);
  for (auto& e : *pending) {
    if (e.in_flight) {
      // The attempt's outcome was never recorded: run it again (a possible duplicate).
      ++s->recovered_in_flight_;
      e.next_ms = now;
      e.in_flight = false;
    }
    s->add_ready(e);
  }
  if (!pending->empty()) {
    log::info("async: " + std::to_string(pending->size()) + " queued events recovered, " +
              std::to_string(s->recovered_in_flight_) + " of them were in flight and run again");
  }
  return s;
}

AsyncService::AsyncService(AsyncOptions options, Invoker invoker, const Clock& clock,
                           std::unique_ptr<EventStore> store)
    : options_(std::move(options)),
      invoker_(std::move(invoker)),
      clock_(clock),
      store_(std::move(store)),
      configs_(*store_),
      scheduler_(options_.max_in_flight, options_.max_in_flight_per_function,
                 [this](const std::string& key) { return lane_limit(key); }) {}

std::optional<uint64_t> AsyncService::lane_limit(const std::string& function_key) const {
  if (!concurrency_) return std::nullopt;
  // function_key is "account\nfunction ARN"; the ARN is unqualified: its name ends it.
  size_t nl = function_key.find('\n');
  size_t colon = function_key.rfind(':');
  if (nl == std::string::npos || colon == std::string::npos || colon < nl) return std::nullopt;
  return concurrency_(function_key.substr(0, nl), function_key.substr(colon + 1));
}

AsyncService::~AsyncService() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (poller_.joinable()) poller_.join();
  store_.reset();  // commits what is queued; its callbacks still see live members
}

void AsyncService::add_ready(const EventRecord& meta) {
  meta_[meta.id] = meta;
  scheduler_.add(meta.id, function_key(meta), meta.next_ms);
  wake_ = true;
}

size_t AsyncService::queued() const {
  std::lock_guard lock(mu_);
  return scheduler_.queued();
}

size_t AsyncService::running() const {
  std::lock_guard lock(mu_);
  return scheduler_.running();
}

void AsyncService::enqueue(api::AsyncEvent event, std::function<void(Status)> done) {
  EventRecord e;
  e.id = store_->next_event_id();
  e.request_id = std::move(event.request_id);
  e.account_id = std::move(event.account_id);
  e.function_arn = std::move(event.function_arn);
  e.qualifier = std::move(event.qualifier);
  e.payload = std::move(event.payload);
  e.received_ms = event.received_epoch_ms ? event.received_epoch_ms : clock_.now_ms();
  e.next_ms = e.received_ms;
  EventRecord meta = e;
  meta.payload.clear();
  store_->insert(std::move(e), [this, meta = std::move(meta), done = std::move(done)](Status s) {
    if (s.ok()) {
      {
        std::lock_guard lock(mu_);
        add_ready(meta);
      }
      cv_.notify_all();
    } else {
      log::warn("async: refused event " + meta.request_id + ": " + s.message());
    }
    done(std::move(s));
  });
}

void AsyncService::start() {
  poller_ = std::thread([this] { run_poller(); });
}

void AsyncService::run_poller() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    wake_ = false;
    lock.unlock();
    run_due();
    lock.lock();
    if (stopping_ || wake_) continue;
    auto due = scheduler_.next_due_ms();
    if (!due) {
      cv_.wait(lock, [&] { return stopping_ || wake_; });
    } else {
      int64_t wait = std::clamp<int64_t>(*due - clock_.now_ms(), 0, 1000);
      if (wait > 0) cv_.wait_for(lock, std::chrono::milliseconds(wait), [&] { return stopping_ || wake_; });
    }
  }
}

void AsyncService::run_due() {
  for (;;) {
    EventRecord e;
    {
      std::lock_guard lock(mu_);
      if (stopping_) return;
      auto id = scheduler_.take(clock_.now_ms());
      if (!id) return;
      e = meta_.at(*id);
    }
    guarded(e, [&] { dispatch(e); });
  }
}

void AsyncService::guarded(const EventRecord& e, const std::function<void()>& step) {
  // Exception boundary for one event: it is retried later like a platform error; the
  // poller and every other event go on.
  try {
    step();
    return;
  } catch (const std::exception& x) {
    log::error("async: handling event " + e.request_id + " threw: " + x.what());
  } catch (...) {
    log::error("async: handling event " + e.request_id + " threw");
  }
  EventRecord again = e;
  again.in_flight = false;
  again.next_ms = clock_.now_ms() + platform_error_delay_ms(++again.platform_errors, options_.retry_base_ms);
  release(e.id, again, std::nullopt);
}

void AsyncService::wait_idle() {
  std::unique_lock lock(mu_);
  cv_.wait(lock, [&] { return scheduler_.running() == 0; });
}

void AsyncService::release(int64_t id, std::optional<EventRecord> requeue, std::optional<EventRecord> added) {
  {
    std::lock_guard lock(mu_);
    scheduler_.finished(id);
    if (requeue) {
      add_ready(*requeue);
    } else {
      meta_.erase(id);
    }
    if (added) add_ready(*added);
    wake_ = true;
  }
  cv_.notify_all();
}

void AsyncService::dispatch(EventRecord e) {
  int64_t now = clock_.now_ms();
  RetrySettings retry = configs_.get(e.account_id, e.function_arn, e.qualifier).retry();
  auto payload = store_->payload(e.id);
  if (!payload.ok()) {
    log::error("async: cannot read event " + e.request_id + ": " + payload.status().message());
    e.next_ms = now + platform_error_delay_ms(++e.platform_errors, options_.retry_base_ms);
    return release(e.id, e, std::nullopt);
  }
  if (now > expiry_ms({e.received_ms, e.attempts, e.function_errors, e.platform_errors}, retry)) {
    auto dest = configs_.get(e.account_id, e.function_arn, e.qualifier).on_failure;
    return settle(std::move(e), *payload, "EventAgeExceeded", std::nullopt, dest);
  }
  ++e.attempts;
  store_->mark_in_flight(e.id, e.attempts, [this, e, payload = std::move(*payload)](Status s) mutable {
    guarded(e, [&] { start_attempt(e, std::move(payload), s); });
  });
}

void AsyncService::start_attempt(EventRecord e, std::string payload, const Status& s) {
  if (!s.ok()) {  // not durable: do not run it; try again later
    log::error("async: cannot record attempt of " + e.request_id + ": " + s.message());
    --e.attempts;
    e.next_ms = clock_.now_ms() + platform_error_delay_ms(1, options_.retry_base_ms);
    return release(e.id, e, std::nullopt);
  }
  std::string copy = payload;
  invoker_(e.account_id, e.function_arn, e.qualifier, std::move(copy), e.request_id,
           [this, e, payload = std::move(payload)](worker::InvokeResult r, const std::string& version) mutable {
             guarded(e, [&] { attempt_done(e, std::move(payload), std::move(r), version); });
           });
}

}  // namespace kiln::async
