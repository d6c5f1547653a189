// The async component's part of the API: event invoke config operations and the admin
// actions on dead letters (ListDeadLetters, ReplayDeadLetter) used by `kiln dead-letters`.
#include <nlohmann/json.hpp>

#include "api/admin.h"
#include "api/frontend.h"
#include "async/async_service.h"
#include "common/numbers.h"
#include "registry/registry.h"

namespace kiln::async {

using nlohmann::json;

namespace {

constexpr int64_t kDefaultMaxItems = 100;
constexpr int64_t kMaxMaxItems = 10000;

StatusOr<int64_t> read_id(const json& args) {
  auto it = args.find("Id");
  if (it == args.end()) return InvalidParameterValue("Id is required.");
  if (it->is_number_integer()) return it->get<int64_t>();
  if (it->is_string()) {
    const std::string& s = it->get_ref<const std::string&>();
    if (auto n = parse_number<int64_t>(s); n && *n >= 0) return *n;
  }
  return InvalidParameterValue("Id must be a dead letter's Id, as ListDeadLetters gives it.");
}

json dead_letter_json(const DeadLetter& d) {
  return {{"Id", std::to_string(d.id)},
          {"RequestId", d.request_id},
          {"FunctionArn", d.function_arn},
          {"Qualifier", effective_qualifier(d.qualifier)},
          {"Condition", d.condition},
          {"Attempts", d.attempts},
          {"FirstAttemptEpochMs", d.received_ms},  // when the event was accepted
          {"FailedEpochMs", d.failed_ms},
          {"LastError", d.last_error},
          {"Payload", d.payload}};
}

}  // namespace

void AsyncService::register_with(api::Frontend& frontend, api::AdminApi& admin) {
  configs_.register_operations(frontend);
  admin.add_action("ListDeadLetters", [this](const json& args, const api::Principal& caller) -> StatusOr<json> {
    if (!args.is_object()) return InvalidParameterValue("The arguments must be a JSON object.");
    std::string function_arn;
    if (auto fn = args.find("FunctionName"); fn != args.end() && !fn->is_null()) {
      if (!fn->is_string()) return InvalidParameterValue("FunctionName must be a string.");
      // The function may be gone by now: name it from the reference, not the registry.
      auto ref = registry::parse_function_ref(fn->get<std::string>(), options_.region, caller.account_id);
      if (!ref.ok()) return ref.status();
      function_arn = "arn:aws:lambda:" + options_.region + ":" + caller.account_id + ":function:" + ref->name;
    }
    int64_t max_items = kDefaultMaxItems;
    if (auto m = args.find("MaxItems"); m != args.end() && !m->is_null()) {
      if (!m->is_number_integer() || m->get<int64_t>() < 1 || m->get<int64_t>() > kMaxMaxItems) {
        return InvalidParameterValue("MaxItems must be an integer between 1 and " + std::to_string(kMaxMaxItems) + ".");
      }
      max_items = m->get<int64_t>();
    }
    auto list = store_->dead_letters(caller.account_id, function_arn, static_cast<size_t>(max_items));
    if (!list.ok()) return list.status();
    json out = json::array();
    for (const auto& d : *list) out.push_back(dead_letter_json(d));
    return json{{"DeadLetters", out}};
  });
  admin.add_action("ReplayDeadLetter", [this](const json& args, const api::Principal& caller) -> StatusOr<json> {
    if (!args.is_object()) return InvalidParameterValue("The arguments must be a JSON object.");
    auto id = read_id(args);
    if (!id.ok()) return id.status();
    auto request_id = replay_dead_letter(caller.account_id, *id);
    if (!request_id.ok()) return request_id.status();
    return json{{"RequestId", *request_id}};
  });
}

}  // namespace kiln::async
