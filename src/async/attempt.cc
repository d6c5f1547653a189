// An attempt's outcome: retry later, or settle the event for good (destination record
// or dead letter), each transition durable before it takes effect.
#include <future>

#include <nlohmann/json.hpp>

#include "async/async_service.h"
#include "common/json_text.h"
#include "common/log.h"
#include "registry/registry.h"

namespace kiln::async {

namespace {

constexpr size_t kMaxLastError = 4096;

OutcomeKind classify(const worker::InvokeResult& r) {
  if (!r.status.ok()) {
    int code = r.status.http_status();
    // Throttles and Kiln's own failures pass; a missing function or a bad event does not.
    return code == 429 || code >= 500 ? OutcomeKind::kRetryablePlatform : OutcomeKind::kPermanentPlatform;
  }
  return r.function_error.empty() ? OutcomeKind::kSuccess : OutcomeKind::kFunctionError;
}

std::string describe(const worker::InvokeResult& r) {
  std::string s = !r.status.ok() ? r.status.type() + ": " + r.status.message() : r.payload;
  if (s.size() > kMaxLastError) s.resize(kMaxLastError);
  return json_text::valid_utf8(s);  // shown by ListDeadLetters; the cut may split a character
}

}  // namespace

void AsyncService::attempt_done(EventRecord e, std::string payload, worker::InvokeResult r,
                                const std::string& version) {
  if (!r.status.ok() && r.status.http_status() == 429) return throttled(std::move(e), r);
  int64_t now = clock_.now_ms();
  OutcomeKind kind = classify(r);
  if (kind == OutcomeKind::kFunctionError) ++e.function_errors;
  if (kind == OutcomeKind::kRetryablePlatform || kind == OutcomeKind::kPermanentPlatform) ++e.platform_errors;
  if (kind != OutcomeKind::kSuccess) e.last_error = describe(r);
  EventInvokeConfig config = configs_.get(e.account_id, e.function_arn, e.qualifier);
  Decision d = decide({e.received_ms, e.attempts, e.function_errors, e.platform_errors}, kind, config.retry(),
                      options_.retry_base_ms, now);
  if (d.kind == Decision::kRetry) {
    e.next_ms = d.next_attempt_ms;
    e.in_flight = false;
    log::info("async: " + e.request_id + " attempt " + std::to_string(e.attempts) + " failed (" +
              e.last_error.substr(0, 200) + "); retry in " + std::to_string(d.next_attempt_ms - now) + " ms");
    store_->reschedule(e, [this, e](Status s) {
      if (!s.ok()) log::error("async: cannot record the retry of " + e.request_id + ": " + s.message());
      release(e.id, e, std::nullopt);  // when not durable, the event runs again at its time
    });
    return;
  }
  AttemptResponse response;
  if (!r.status.ok()) {
    response.status_code = r.status.http_status();
  } else {
    response.executed_version = version;
    response.function_error = r.function_error;
    response.payload = std::move(r.payload);
  }
  bool success = d.kind == Decision::kSucceeded;
  settle(std::move(e), payload, success ? "Success" : d.condition, std::move(response),
         success ? config.on_success : config.on_failure);
}

void AsyncService::throttled(EventRecord e, const worker::InvokeResult& r) {
  // The function did not run: undo the attempt's count. The event's age still bounds
  // it (dispatch settles it as EventAgeExceeded once it is too old).
  --e.attempts;
  e.in_flight = false;
  e.last_error = describe(r);
  e.next_ms = clock_.now_ms() + throttle_delay_ms(options_.retry_base_ms);
  store_->reschedule(e, [this, e](Status s) {
    if (!s.ok()) log::error("async: cannot record the throttle of " + e.request_id + ": " + s.message());
    release(e.id, e, std::nullopt);
  });
}

void AsyncService::settle(EventRecord e, const std::string& payload, const std::string& condition,
                          std::optional<AttemptResponse> response, const std::string& destination) {
  std::optional<EventRecord> follow_up;
  std::optional<DeadLetter> dead;
  if (!destination.empty()) {
    RecordInput in;
    in.now_ms = clock_.now_ms();
    in.request_id = e.request_id;
    in.qualified_function_arn = e.function_arn + ":" + effective_qualifier(e.qualifier);
    in.condition = condition;
    in.approximate_invoke_count = e.attempts;
    in.request_payload = payload;
    in.response = std::move(response);
    follow_up = destination_event(e, destination, invocation_record(in));
  } else if (condition != "Success") {
    dead = DeadLetter{};
    dead->request_id = e.request_id;
    dead->account_id = e.account_id;
    dead->function_arn = e.function_arn;
    dead->qualifier = e.qualifier;
    dead->payload = payload;
    dead->condition = condition;
    dead->last_error = e.last_error;
    dead->attempts = e.attempts;
    dead->received_ms = e.received_ms;
    dead->failed_ms = clock_.now_ms();
  }
  if (condition != "Success") {
    log::info("async: " + e.request_id + " failed for good (" + condition + ", " + std::to_string(e.attempts) +
              " attempts); " + (destination.empty() ? "kept as a dead letter" : "sent to " + destination));
  }
  std::optional<EventRecord> added;
  if (follow_up) {
    added = *follow_up;
    added->payload.clear();
  }
  store_->finish(e.id, std::move(follow_up), std::move(dead), [this, e, added](Status s) {
    if (!s.ok()) {
      // Not durable: the event stays queued and runs again later (a duplicate run).
      log::error("async: cannot record the outcome of " + e.request_id + ": " + s.message());
      EventRecord again = e;
      again.next_ms = clock_.now_ms() + platform_error_delay_ms(1, options_.retry_base_ms);
      return release(e.id, again, std::nullopt);
    }
    release(e.id, std::nullopt, added);
  });
}

EventRecord AsyncService::destination_event(const EventRecord& source, const std::string& destination_arn,
                                            std::string record) {
  EventRecord d;
  d.id = store_->next_event_id();
  d.request_id = registry::new_uuid();
  d.account_id = source.account_id;
  auto ref = registry::parse_function_ref(destination_arn, options_.region, source.account_id);
  std::string name = ref.ok() ? ref->name : destination_arn;
  d.function_arn = "arn:aws:lambda:" + options_.region + ":" + source.account_id + ":function:" + name;
  d.qualifier = ref.ok() ? ref->qualifier : "";
  d.payload = std::move(record);
  d.received_ms = clock_.now_ms();
  d.next_ms = d.received_ms;
  return d;
}

StatusOr<std::string> AsyncService::replay_dead_letter(const std::string& account, int64_t id) {
  auto dead = store_->dead_letter(account, id);
  if (!dead.ok()) return dead.status();
  EventRecord e;
  e.id = store_->next_event_id();
  e.request_id = registry::new_uuid();
  e.account_id = dead->account_id;
  e.function_arn = dead->function_arn;
  e.qualifier = dead->qualifier;
  e.payload = dead->payload;
  e.received_ms = clock_.now_ms();
  e.next_ms = e.received_ms;
  EventRecord meta = e;
  meta.payload.clear();
  std::promise<Status> p;
  auto f = p.get_future();
  store_->replay(id, std::move(e), [&p](Status s) { p.set_value(std::move(s)); });
  if (Status s = f.get(); !s.ok()) return s;
  {
    std::lock_guard lock(mu_);
    add_ready(meta);
  }
  cv_.notify_all();
  return meta.request_id;
}

}  // namespace kiln::async
