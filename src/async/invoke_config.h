// Event invoke configs (Put/Get/Update/Delete/ListFunctionEventInvokeConfig(s)): retry
// settings and Lambda destinations per function and qualifier, durable in the
// EventStore and served from memory to the poller.
#pragma once

#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <tuple>

#include <nlohmann/json_fwd.hpp>

#include "api/control_operations.h"
#include "async/event_store.h"
#include "async/retry_policy.h"

namespace kiln::api {
class Frontend;
}

namespace kiln::async {

struct EventInvokeConfig {
  std::optional<int> maximum_retry_attempts;
  std::optional<int> maximum_event_age_seconds;
  std::string on_success;  // a Kiln function ARN, or ""
  std::string on_failure;
  double last_modified = 0;  // epoch seconds

  RetrySettings retry() const;
  nlohmann::json to_json(const std::string& qualified_arn) const;
  static StatusOr<EventInvokeConfig> from_json_text(const std::string& text);
};

// "$LATEST" when qualifier is empty.
inline std::string effective_qualifier(const std::string& q) { return q.empty() ? "$LATEST" : q; }

class InvokeConfigs {
 public:
  // `store` must outlive this.
  explicit InvokeConfigs(EventStore& store) : store_(store) {}
  // Loads every config from the store. Call once, before serving.
  Status load();

  // The config for events of (account, unqualified ARN, qualifier); defaults if none.
  EventInvokeConfig get(const std::string& account, const std::string& function_arn,
                        const std::string& qualifier) const;

  // Registers the five control operations. `this` must outlive the frontend's serving.
  void register_operations(api::Frontend& frontend);

  // The control operations (exposed for tests).
  api::ControlResult put(const api::RouteMatch& m, const std::string& body, const api::ControlContext& ctx,
                         bool update);
  api::ControlResult fetch(const api::RouteMatch& m, const api::ControlContext& ctx);
  api::ControlResult remove(const api::RouteMatch& m, const api::ControlContext& ctx);
  api::ControlResult list(const api::RouteMatch& m, const api::ControlContext& ctx);

 private:
  using Key = std::tuple<std::string, std::string, std::string>;  // account, unqualified ARN, qualifier
  Status write(std::function<void(EventStore::Done)> submit);

  EventStore& store_;
  mutable std::mutex mu_;
  std::map<Key, EventInvokeConfig> configs_;  // guarded by mu_
};

// Checks a destination ARN: a Kiln function of this account that exists, not the
// function itself. `self_arn` is the configured function's unqualified ARN.
Status validate_destination(const std::string& arn, const std::string& self_arn, const api::ControlContext& ctx);

}  // namespace kiln::async
