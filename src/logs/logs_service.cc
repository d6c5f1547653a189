#include "logs/logs_service.h"

#include <boost/asio/post.hpp>
#include <boost/beast/http/field.hpp>

#include <algorithm>

#include "api/frontend.h"
#include "common/json_text.h"
#include "common/log.h"
#include "common/numbers.h"
#include "logs/input.h"
#include "logs/log_reader.h"

namespace kiln::logs {

using nlohmann::json;
namespace http = boost::beast::http;

namespace {

constexpr std::string_view kTargetPrefix = "Logs_20140328.";
constexpr std::string_view kLambdaPrefix = "/aws/lambda/";
constexpr int kRetentionDays[] = {1,   3,   5,   7,   14,  30,  60,   90,   120,  150,  180,
                                  365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653};

bool function_name_ok(std::string_view name) {
  if (name.empty() || name.size() > 170) return false;
  for (char c : name) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_')) return false;
  }
  return true;
}

net::Response reply(int status, const std::string& body, const std::string& request_id) {
  net::Response r(static_cast<http::status>(status), 11);
  r.set(http::field::content_type, "application/x-amz-json-1.1");
  r.set("x-amzn-RequestId", request_id);
  r.body() = body;
  r.prepare_payload();
  return r;
}

net::Response error_reply(const Status& s, const std::string& request_id) {
  net::Response r = reply(s.http_status(), json_text::dump(json{{"__type", s.type()}, {"message", s.message()}}), request_id);
  r.set("x-amzn-ErrorType", s.type());
  return r;
}

// Offsets into a sorted listing, as opaque tokens.
std::string index_token(size_t i) { return "i" + std::to_string(i); }
StatusOr<size_t> parse_index_token(const json& in) {
  auto it = in.find("nextToken");
  if (it == in.end() || it->is_null()) return size_t{0};
  if (!it->is_string()) return InvalidParameter("The specified nextToken is not valid.");
  std::string t = it->get<std::string>();
  auto n = t.size() > 1 && t[0] == 'i' ? parse_number<size_t>(std::string_view(t).substr(1)) : std::nullopt;
  if (!n) return InvalidParameter("The specified nextToken is not valid.");
  return *n;
}

}  // namespace

LogsService::LogsService(worker::LogStore& store, std::string region, unsigned threads)
    : store_(store), region_(std::move(region)),
      pool_(std::make_unique<boost::asio::thread_pool>(threads ? threads : 2)) {}

LogsService::~LogsService() { pool_->join(); }

void LogsService::post(std::function<void()> work) { boost::asio::post(*pool_, std::move(work)); }

StatusOr<json> LogsService::call(std::string_view op, const json& in, const std::string& account) {
  if (!in.is_object()) return Status(400, "SerializationException", "The request body must be a JSON object");
  if (op == "DescribeLogGroups") return describe_log_groups(in, account);
  if (op == "DescribeLogStreams") return describe_log_streams(in, account);
  if (op == "GetLogEvents") return get_log_events(in, account);
  if (op == "FilterLogEvents") return filter_log_events(in, account);
  if (op == "DeleteLogGroup") return delete_log_group(in, account);
  if (op == "PutRetentionPolicy") return put_retention_policy(in, account, false);
  if (op == "DeleteRetentionPolicy") return put_retention_policy(in, account, true);
  return Status(400, "UnknownOperationException",
                "Kiln does not implement the CloudWatch Logs operation " + std::string(op) + ".");
}

void LogsService::attach(api::Frontend& frontend) {
  frontend.add_service("logs", [this](net::Request&& request, const api::Principal& caller,
                                                 const std::string& request_id, net::ResponderPtr responder) {
    std::string target(request["X-Amz-Target"]);
    if (request.method() != http::verb::post || target.rfind(kTargetPrefix, 0) != 0) {
      return responder->respond(error_reply(
          {400, "UnknownOperationException", "Expected POST / with X-Amz-Target: Logs_20140328.<Operation>"},
          request_id));
    }
    json in = request.body().empty() ? json::object() : json::parse(request.body(), nullptr, false);
    if (in.is_discarded()) {
      return responder->respond(
          error_reply({400, "SerializationException", "The request body is not valid JSON"}, request_id));
    }
    post([this, op = target.substr(kTargetPrefix.size()), in = std::move(in),
                           account = caller.account_id, request_id, responder] {
      // Exception boundary: one request's failure answers that request only.
      StatusOr<json> out = Status(500, "ServiceUnavailableException", "Kiln failed to handle the request.");
      try {
        out = call(op, in, account);
      } catch (const std::exception& e) {
        log::error("logs: " + op + " threw: " + e.what());
      }
      if (!out.ok()) return responder->respond(error_reply(out.status(), request_id));
      responder->respond(reply(200, json_text::dump(*out), request_id));
    });
  });
}

StatusOr<std::string> LogsService::group_function(const json& in, const std::string& account) const {
  std::optional<std::string> name, ident;
  if (Status s = input::optional_string(in, "logGroupName", 1, 512, &name); !s.ok()) return s;
  if (Status s = input::optional_string(in, "logGroupIdentifier", 1, 2048, &ident); !s.ok()) return s;
  if (name && ident) return InvalidParameter("Specify logGroupName or logGroupIdentifier, not both.");
  if (!name && !ident) return InvalidParameter("Either logGroupName or logGroupIdentifier must be specified.");
  std::string group = name ? *name : *ident;
  if (ident && ident->rfind("arn:", 0) == 0) {
    // arn:aws:logs:REGION:ACCOUNT:log-group:NAME[:*]
    std::string arn = *ident;
    if (arn.size() > 2 && arn.substr(arn.size() - 2) == ":*") arn.resize(arn.size() - 2);
    std::string want = "arn:aws:logs:" + region_ + ":" + account + ":log-group:";
    if (arn.rfind(want, 0) != 0) return LogResourceNotFound("The specified log group does not exist.");
    group = arn.substr(want.size());
  }
  if (group.rfind(kLambdaPrefix, 0) != 0 || !function_name_ok(std::string_view(group).substr(kLambdaPrefix.size()))) {
    return LogResourceNotFound("The specified log group does not exist.");
  }
  return group.substr(kLambdaPrefix.size());
}

json LogsService::group_json(const std::string& account, const worker::LogGroupInfo& g) const {
  std::string name = std::string(kLambdaPrefix) + g.function;
  std::string arn = "arn:aws:logs:" + region_ + ":" + account + ":log-group:" + name;
  json j = {{"logGroupName", name},     {"creationTime", g.creation_ms},  {"metricFilterCount", 0},
            {"arn", arn + ":*"},        {"logGroupArn", arn},             {"storedBytes", g.bytes},
            {"logGroupClass", "STANDARD"}};
  if (g.retention_days) j["retentionInDays"] = *g.retention_days;
  return j;
}

StatusOr<json> LogsService::describe_log_groups(const json& in, const std::string& account) {
  std::optional<std::string> prefix;
  std::optional<int64_t> limit;
  if (Status s = input::optional_string(in, "logGroupNamePrefix", 1, 512, &prefix); !s.ok()) return s;
  if (Status s = input::optional_int(in, "limit", 1, 50, &limit); !s.ok()) return s;
  auto start = parse_index_token(in);
  if (!start.ok()) return start.status();
  json groups = json::array();
  std::vector<std::string> names;
  for (const auto& f : store_.functions(account)) {
    std::string name = std::string(kLambdaPrefix) + f;
    if (!prefix || name.rfind(*prefix, 0) == 0) names.push_back(f);
  }
  size_t end = std::min(names.size(), *start + static_cast<size_t>(limit.value_or(50)));
  for (size_t i = *start; i < end; ++i) {
    if (auto g = store_.group(account, names[i])) groups.push_back(group_json(account, *g));
  }
  json out = {{"logGroups", groups}};
  if (end < names.size()) out["nextToken"] = index_token(end);
  return out;
}

StatusOr<json> LogsService::describe_log_streams(const json& in, const std::string& account) {
  auto function = group_function(in, account);
  if (!function.ok()) return function.status();
  std::optional<std::string> prefix, order;
  std::optional<bool> descending;
  std::optional<int64_t> limit;
  if (Status s = input::optional_string(in, "logStreamNamePrefix", 1, 512, &prefix); !s.ok()) return s;
  if (Status s = input::optional_string(in, "orderBy", 1, 64, &order); !s.ok()) return s;
  if (Status s = input::optional_bool(in, "descending", &descending); !s.ok()) return s;
  if (Status s = input::optional_int(in, "limit", 1, 50, &limit); !s.ok()) return s;
  if (order && *order != "LogStreamName" && *order != "LastEventTime") {
    return input::bad("orderBy", "Member must satisfy enum value set: [LogStreamName, LastEventTime]");
  }
  bool by_time = order && *order == "LastEventTime";
  if (by_time && prefix) return InvalidParameter("Cannot order by LastEventTime with a logStreamNamePrefix.");
  auto start = parse_index_token(in);
  if (!start.ok()) return start.status();
  auto g = store_.group(account, *function);
  if (!g) return LogResourceNotFound("The specified log group does not exist.");

  struct Stream {
    std::string name;
    uint64_t bytes = 0;
    int64_t last = 0;
    int64_t first = -1;
    const worker::LogSegment* first_segment = nullptr;
  };
  std::vector<Stream> streams;
  for (const auto& seg : g->segments) {
    if (prefix && seg.stream.rfind(*prefix, 0) != 0) continue;
    if (streams.empty() || streams.back().name != seg.stream) streams.push_back({seg.stream, 0, 0, -1, &seg});
    streams.back().bytes += seg.bytes;
    streams.back().last = std::max(streams.back().last, seg.mtime_ms);
  }
  if (by_time) {
    std::stable_sort(streams.begin(), streams.end(), [](const Stream& a, const Stream& b) { return a.last < b.last; });
  }
  if (descending.value_or(false)) std::reverse(streams.begin(), streams.end());
  size_t end = std::min(streams.size(), *start + static_cast<size_t>(limit.value_or(50)));
  json out_streams = json::array();
  std::string arn_prefix = "arn:aws:logs:" + region_ + ":" + account + ":log-group:" + std::string(kLambdaPrefix) +
                           *function + ":log-stream:";
  for (size_t i = *start; i < end; ++i) {
    Stream& s = streams[i];
    read_segment(*s.first_segment, 0, INT64_MAX, [&](LogEvent&& ev) {
      s.first = ev.key.timestamp;
      return false;
    });
    json j = {{"logStreamName", s.name},  {"creationTime", s.first >= 0 ? s.first : s.last},
              {"lastIngestionTime", s.last}, {"arn", arn_prefix + s.name}, {"storedBytes", s.bytes},
              {"uploadSequenceToken", "1"}};
    if (s.first >= 0) {
      j["firstEventTimestamp"] = s.first;
      j["lastEventTimestamp"] = s.last;
    }
    out_streams.push_back(std::move(j));
  }
  json out = {{"logStreams", out_streams}};
  if (end < streams.size()) out["nextToken"] = index_token(end);
  return out;
}

StatusOr<json> LogsService::delete_log_group(const json& in, const std::string& account) {
  auto function = group_function(in, account);
  if (!function.ok()) return function.status();
  if (Status s = store_.delete_group(account, *function); !s.ok()) return s;
  return json::object();
}

StatusOr<json> LogsService::put_retention_policy(const json& in, const std::string& account, bool remove) {
  auto function = group_function(in, account);
  if (!function.ok()) return function.status();
  std::optional<int> days;
  if (!remove) {
    std::optional<int64_t> v;
    if (Status s = input::optional_int(in, "retentionInDays", INT32_MIN, INT32_MAX, &v); !s.ok()) return s;
    if (!v) return InvalidParameter("1 validation error detected: Value null at 'retentionInDays' failed to satisfy "
                                    "constraint: Member must not be null");
    if (std::find(std::begin(kRetentionDays), std::end(kRetentionDays), *v) == std::end(kRetentionDays)) {
      return InvalidParameter("1 validation error detected: Value '" + std::to_string(*v) +
                              "' at 'retentionInDays' failed to satisfy constraint: Member must satisfy enum value "
                              "set: [1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, "
                              "2192, 2557, 2922, 3288, 3653]");
    }
    days = static_cast<int>(*v);
  }
  if (Status s = store_.set_retention(account, *function, days); !s.ok()) return s;
  if (days) store_.enforce_retention(worker::epoch_ms_now());
  return json::object();
}

}  // namespace kiln::logs
