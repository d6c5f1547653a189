#include "async/invoke_config.h"

#include <chrono>
#include <future>

#include <nlohmann/json.hpp>

#include "api/frontend.h"
#include "common/crypto.h"
#include "common/json_text.h"
#include "common/numbers.h"

namespace kiln::async {

using nlohmann::json;

namespace {

api::ControlResult failed(Status s) { return {std::move(s), 0, ""}; }

std::string query(const api::RouteMatch& m, const char* key) {
  auto it = m.query.find(key);
  return it == m.query.end() ? std::string() : it->second;
}

Status validation(const std::string& value, const std::string& field, const std::string& constraint) {
  return {400, "ValidationException",
          "1 validation error detected: Value '" + value + "' at '" + field +
              "' failed to satisfy constraint: " + constraint};
}

// Reads an optional integer member within [lo, hi].
Status read_int(const json& body, const char* name, const char* field, int lo, int hi, std::optional<int>* out) {
  auto it = body.find(name);
  if (it == body.end() || it->is_null()) return Status::Ok();
  if (!it->is_number_integer()) return InvalidParameterValue(std::string(name) + " must be an integer.");
  int64_t v = it->get<int64_t>();
  if (v < lo) return validation(std::to_string(v), field, "Member must have value greater than or equal to " + std::to_string(lo));
  if (v > hi) return validation(std::to_string(v), field, "Member must have value less than or equal to " + std::to_string(hi));
  *out = static_cast<int>(v);
  return Status::Ok();
}

Status read_destination(const json& dc, const char* which, std::optional<std::string>* out) {
  auto it = dc.find(which);
  if (it == dc.end() || it->is_null()) return Status::Ok();
  if (!it->is_object()) return InvalidParameterValue(std::string("DestinationConfig.") + which + " must be an object.");
  auto d = it->find("Destination");
  if (d == it->end() || d->is_null()) {
    *out = "";
    return Status::Ok();
  }
  if (!d->is_string()) return InvalidParameterValue("Destination must be a string.");
  if (d->get<std::string>().size() > 350) {
    return validation(d->get<std::string>(), "destinationConfig." + std::string(which) + ".destination",
                      "Member must have length less than or equal to 350");
  }
  *out = d->get<std::string>();
  return Status::Ok();
}

double now_epoch_seconds() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count() / 1000.0;
}

}  // namespace

RetrySettings EventInvokeConfig::retry() const {
  RetrySettings r;
  if (maximum_retry_attempts) r.maximum_retry_attempts = *maximum_retry_attempts;
  if (maximum_event_age_seconds) r.maximum_event_age_seconds = *maximum_event_age_seconds;
  return r;
}

json EventInvokeConfig::to_json(const std::string& qualified_arn) const {
  json j = {{"LastModified", last_modified}, {"FunctionArn", qualified_arn}};
  if (maximum_retry_attempts) j["MaximumRetryAttempts"] = *maximum_retry_attempts;
  if (maximum_event_age_seconds) j["MaximumEventAgeInSeconds"] = *maximum_event_age_seconds;
  json dc = {{"OnSuccess", json::object()}, {"OnFailure", json::object()}};
  if (!on_success.empty()) dc["OnSuccess"]["Destination"] = on_success;
  if (!on_failure.empty()) dc["OnFailure"]["Destination"] = on_failure;
  j["DestinationConfig"] = dc;
  return j;
}

StatusOr<EventInvokeConfig> EventInvokeConfig::from_json_text(const std::string& text) {
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return ServiceError("corrupt event invoke config record");
  EventInvokeConfig c;
  if (j.contains("MaximumRetryAttempts")) c.maximum_retry_attempts = j["MaximumRetryAttempts"].get<int>();
  if (j.contains("MaximumEventAgeInSeconds")) c.maximum_event_age_seconds = j["MaximumEventAgeInSeconds"].get<int>();
  c.on_success = j.value("/DestinationConfig/OnSuccess/Destination"_json_pointer, std::string());
  c.on_failure = j.value("/DestinationConfig/OnFailure/Destination"_json_pointer, std::string());
  c.last_modified = j.value("LastModified", 0.0);
  return c;
}

Status validate_destination(const std::string& arn, const std::string& self_arn, const api::ControlContext& ctx) {
  if (arn.empty()) return Status::Ok();
  if (arn.rfind("arn:", 0) != 0) {
    return InvalidParameterValue("The destination ARN " + arn + " is invalid.");
  }
  if (arn.rfind("arn:aws:lambda:", 0) != 0 || arn.find(":function:") == std::string::npos) {
    return InvalidParameterValue("The destination ARN " + arn +
                                 " is not supported: Kiln supports Lambda function destinations only "
                                 "(no SQS, SNS, EventBridge or S3 destinations).");
  }
  auto f = ctx.registry.resolve(ctx.account, arn, "");
  if (!f.ok()) return InvalidParameterValue("The destination function " + arn + " does not exist.");
  if ((*f)->arn() == self_arn) return InvalidParameterValue("You can't specify the function as a destination for itself.");
  return Status::Ok();
}

Status InvokeConfigs::load() {
  auto rows = store_.configs();
  if (!rows.ok()) return rows.status();
  std::lock_guard lock(mu_);
  for (const auto& r : *rows) {
    auto c = EventInvokeConfig::from_json_text(r.config_json);
    if (!c.ok()) return c.status();
    configs_[{r.account_id, r.function_arn, r.qualifier}] = *c;
  }
  return Status::Ok();
}

EventInvokeConfig InvokeConfigs::get(const std::string& account, const std::string& function_arn,
                                     const std::string& qualifier) const {
  std::lock_guard lock(mu_);
  auto it = configs_.find({account, function_arn, effective_qualifier(qualifier)});
  return it == configs_.end() ? EventInvokeConfig{} : it->second;
}

Status InvokeConfigs::write(std::function<void(EventStore::Done)> submit) {
  std::promise<Status> p;
  auto f = p.get_future();
  submit([&p](Status s) { p.set_value(std::move(s)); });
  return f.get();
}

api::ControlResult InvokeConfigs::put(const api::RouteMatch& m, const std::string& body,
                                      const api::ControlContext& ctx, bool update) {
  std::string qualifier = query(m, "Qualifier");
  auto f = ctx.registry.resolve(ctx.account, m.params.at("FunctionName"), qualifier);
  if (!f.ok()) return failed(f.status());
  auto ref = registry::parse_function_ref(m.params.at("FunctionName"), ctx.region, ctx.account);
  std::string q = effective_qualifier(!qualifier.empty() ? qualifier : (ref.ok() ? ref->qualifier : ""));
  json j = body.empty() ? json::object() : json::parse(body, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    return failed(InvalidRequestContent("Could not parse request body into json: the body is not a JSON object"));
  }
  std::optional<int> retries, age;
  std::optional<std::string> on_success, on_failure;
  if (Status s = read_int(j, "MaximumRetryAttempts", "maximumRetryAttempts", 0, 2, &retries); !s.ok()) return failed(s);
  if (Status s = read_int(j, "MaximumEventAgeInSeconds", "maximumEventAgeInSeconds", 60, 21600, &age); !s.ok()) {
    return failed(s);
  }
  if (auto dc = j.find("DestinationConfig"); dc != j.end() && !dc->is_null()) {
    if (!dc->is_object()) return failed(InvalidParameterValue("DestinationConfig must be an object."));
    if (Status s = read_destination(*dc, "OnSuccess", &on_success); !s.ok()) return failed(s);
    if (Status s = read_destination(*dc, "OnFailure", &on_failure); !s.ok()) return failed(s);
  }
  for (const auto* d : {&on_success, &on_failure}) {
    if (*d) {
      if (Status s = validate_destination(**d, (*f)->arn(), ctx); !s.ok()) return failed(s);
    }
  }
  Key key{ctx.account, (*f)->arn(), q};
  EventInvokeConfig c;
  if (update) {
    std::lock_guard lock(mu_);
    auto it = configs_.find(key);
    if (it == configs_.end()) {
      return failed(ResourceNotFound("The function " + (*f)->arn() + ":" + q + " doesn't have an EventInvokeConfig"));
    }
    c = it->second;
  }
  if (retries || !update) c.maximum_retry_attempts = retries;
  if (age || !update) c.maximum_event_age_seconds = age;
  if (on_success || !update) c.on_success = on_success.value_or("");
  if (on_failure || !update) c.on_failure = on_failure.value_or("");
  c.last_modified = now_epoch_seconds();
  std::string qualified = (*f)->arn() + ":" + q;
  json record = c.to_json(qualified);
  Status s = write([&](EventStore::Done done) {
    store_.put_config({ctx.account, (*f)->arn(), q, json_text::dump(record)}, std::move(done));
  });
  if (!s.ok()) return failed(s);
  {
    std::lock_guard lock(mu_);
    configs_[key] = c;
  }
  return {Status::Ok(), 200, json_text::dump(record)};
}

api::ControlResult InvokeConfigs::fetch(const api::RouteMatch& m, const api::ControlContext& ctx) {
  std::string qualifier = query(m, "Qualifier");
  auto f = ctx.registry.resolve(ctx.account, m.params.at("FunctionName"), qualifier);
  if (!f.ok()) return failed(f.status());
  auto ref = registry::parse_function_ref(m.params.at("FunctionName"), ctx.region, ctx.account);
  std::string q = effective_qualifier(!qualifier.empty() ? qualifier : (ref.ok() ? ref->qualifier : ""));
  std::lock_guard lock(mu_);
  auto it = configs_.find({ctx.account, (*f)->arn(), q});
  if (it == configs_.end()) {
    return failed(ResourceNotFound("The function " + (*f)->arn() + ":" + q + " doesn't have an EventInvokeConfig"));
  }
  return {Status::Ok(), 200, json_text::dump(it->second.to_json((*f)->arn() + ":" + q))};
}

api::ControlResult InvokeConfigs::remove(const api::RouteMatch& m, const api::ControlContext& ctx) {
  std::string qualifier = query(m, "Qualifier");
  auto f = ctx.registry.resolve(ctx.account, m.params.at("FunctionName"), qualifier);
  if (!f.ok()) return failed(f.status());
  auto ref = registry::parse_function_ref(m.params.at("FunctionName"), ctx.region, ctx.account);
  std::string q = effective_qualifier(!qualifier.empty() ? qualifier : (ref.ok() ? ref->qualifier : ""));
  Key key{ctx.account, (*f)->arn(), q};
  {
    std::lock_guard lock(mu_);
    if (!configs_.count(key)) {
      return failed(ResourceNotFound("The function " + (*f)->arn() + ":" + q + " doesn't have an EventInvokeConfig"));
    }
  }
  Status s = write([&](EventStore::Done done) { store_.delete_config(ctx.account, (*f)->arn(), q, std::move(done)); });
  if (!s.ok()) return failed(s);
  std::lock_guard lock(mu_);
  configs_.erase(key);
  return {Status::Ok(), 204, ""};
}

api::ControlResult InvokeConfigs::list(const api::RouteMatch& m, const api::ControlContext& ctx) {
  auto f = ctx.registry.resolve(ctx.account, m.params.at("FunctionName"), "");
  if (!f.ok()) return failed(f.status());
  int64_t max_items = 50;
  if (std::string max = query(m, "MaxItems"); !max.empty()) {
    auto n = parse_number<int64_t>(max);
    if (!n || *n < 1 || *n > 50) {
      return failed(validation(max, "maxItems", "Member must have value between 1 and 50"));
    }
    max_items = *n;
  }
  std::string after;
  if (std::string marker = query(m, "Marker"); !marker.empty() && !crypto::base64_decode(marker, &after)) {
    return failed(InvalidParameterValue("Invalid marker: " + marker));
  }
  json items = json::array();
  std::string last;
  bool more = false;
  std::lock_guard lock(mu_);
  for (auto it = configs_.lower_bound({ctx.account, (*f)->arn(), ""}); it != configs_.end(); ++it) {
    const auto& [account, arn, q] = it->first;
    if (account != ctx.account || arn != (*f)->arn()) break;
    if (!after.empty() && q <= after) continue;
    if (static_cast<int64_t>(items.size()) == max_items) {
      more = true;
      break;
    }
    items.push_back(it->second.to_json(arn + ":" + q));
    last = q;
  }
  json out = {{"FunctionEventInvokeConfigs", items}};
  if (more) out["NextMarker"] = crypto::base64(last);
  return {Status::Ok(), 200, json_text::dump(out)};
}

void InvokeConfigs::register_operations(api::Frontend& frontend) {
  using api::ControlContext;
  using api::RouteMatch;
  frontend.add_control_operation("PutFunctionEventInvokeConfig",
                                 [this](const RouteMatch& m, const std::string& b, const ControlContext& c) {
                                   return put(m, b, c, /*update=*/false);
                                 });
  frontend.add_control_operation("UpdateFunctionEventInvokeConfig",
                                 [this](const RouteMatch& m, const std::string& b, const ControlContext& c) {
                                   return put(m, b, c, /*update=*/true);
                                 });
  frontend.add_control_operation("GetFunctionEventInvokeConfig",
                                 [this](const RouteMatch& m, const std::string&, const ControlContext& c) {
                                   return fetch(m, c);
                                 });
  frontend.add_control_operation("DeleteFunctionEventInvokeConfig",
                                 [this](const RouteMatch& m, const std::string&, const ControlContext& c) {
                                   return remove(m, c);
                                 });
  frontend.add_control_operation("ListFunctionEventInvokeConfigs",
                                 [this](const RouteMatch& m, const std::string&, const ControlContext& c) {
                                   return list(m, c);
                                 });
}

}  // namespace kiln::async
