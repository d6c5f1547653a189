// GetLogEvents and FilterLogEvents: reading events back, with CloudWatch's tokens.
#include <algorithm>
#include <climits>
#include <set>

#include "logs/filter_pattern.h"
#include "logs/input.h"
#include "logs/log_reader.h"
#include "logs/logs_service.h"

namespace kiln::logs {

using nlohmann::json;

namespace {

constexpr size_t kMaxResponseBytes = 1 << 20;  // CloudWatch's 1 MB per response
constexpr int64_t kDefaultLimit = 10000;

struct Range {
  int64_t start = 0;
  int64_t end = INT64_MAX;
};

Status read_range(const json& in, Range* r) {
  std::optional<int64_t> start, end;
  if (Status s = input::optional_int(in, "startTime", 0, INT64_MAX, &start); !s.ok()) return s;
  if (Status s = input::optional_int(in, "endTime", 0, INT64_MAX, &end); !s.ok()) return s;
  r->start = start.value_or(0);
  r->end = end.value_or(INT64_MAX);
  if (r->end < r->start) return InvalidParameter("endTime must not be before startTime.");
  return {};
}

size_t event_bytes(const LogEvent& e) { return e.message.size() + 26; }  // CloudWatch's accounting

}  // namespace

StatusOr<json> LogsService::get_log_events(const json& in, const std::string& account) {
  auto function = group_function(in, account);
  if (!function.ok()) return function.status();
  std::optional<std::string> stream, token;
  std::optional<int64_t> limit;
  std::optional<bool> from_head;
  Range range;
  if (Status s = input::optional_string(in, "logStreamName", 1, 512, &stream); !s.ok()) return s;
  if (!stream) return input::bad("logStreamName", "Member must not be null");
  if (Status s = input::optional_string(in, "nextToken", 1, 4096, &token); !s.ok()) return s;
  if (Status s = input::optional_int(in, "limit", 1, 10000, &limit); !s.ok()) return s;
  if (Status s = input::optional_bool(in, "startFromHead", &from_head); !s.ok()) return s;
  if (Status s = read_range(in, &range); !s.ok()) return s;
  char kind = 'f';
  EventKey at;
  if (token && (!parse_key_token(*token, &kind, &at) || (kind != 'f' && kind != 'b') || at.stream != *stream)) {
    return InvalidParameter("The specified nextToken is invalid.");
  }
  auto g = store_.group(account, *function);
  if (!g) return LogResourceNotFound("The specified log group does not exist.");
  std::vector<worker::LogSegment> segments;  // the stream's, in seq order
  for (auto& seg : g->segments) {
    if (seg.stream == *stream) segments.push_back(std::move(seg));
  }
  if (segments.empty()) return LogResourceNotFound("The specified log stream does not exist.");

  // Reads only what the page needs: from the token's position (or the stream's head or
  // end) until `limit` events or CloudWatch's 1 MB, plus one event to know what follows.
  const size_t max = static_cast<size_t>(limit.value_or(kDefaultLimit));
  const bool forward = token ? kind == 'f' : from_head.value_or(false);
  const StreamPosition at_pos{at.seq, at.offset};
  uint64_t bytes_read = 0;
  std::vector<LogEvent> page;
  size_t page_bytes = 0;
  auto take = [&](LogEvent&& e) {
    if (page.size() == max || page_bytes + event_bytes(e) > kMaxResponseBytes) return false;
    page_bytes += event_bytes(e);
    page.push_back(std::move(e));
    return true;
  };
  std::optional<EventKey> next;  // the first event after the page, when there is one
  auto first_from = [&](StreamPosition from) {
    read_stream_forward(segments, from, range.start, range.end, &bytes_read, [&](LogEvent&& e) {
      next = e.key;
      return false;
    });
  };
  if (forward) {
    read_stream_forward(segments, token ? at_pos : StreamPosition{}, range.start, range.end, &bytes_read,
                        [&](LogEvent&& e) {
                          if (take(std::move(e))) return true;
                          next = e.key;
                          return false;
                        });
  } else {
    read_stream_backward(segments, token ? std::optional<StreamPosition>(at_pos) : std::nullopt, range.start,
                         range.end, &bytes_read, take);
    std::reverse(page.begin(), page.end());
    if (token) first_from(at_pos);
  }
  bytes_read_ += bytes_read;

  json out_events = json::array();
  for (const auto& e : page) {
    out_events.push_back({{"timestamp", e.key.timestamp}, {"message", e.message}, {"ingestionTime", e.key.timestamp}});
  }
  // Forward token: the next event's position, else just past the last event returned,
  // else the token given (CloudWatch answers the same token at the end of a stream).
  // Backward token: the first event returned, else the token given.
  EventKey fwd, back;
  fwd.stream = back.stream = *stream;
  if (next) {
    fwd = *next;
  } else if (!page.empty()) {
    fwd = page.back().key;
    fwd.offset += 1;  // just past the last event
  } else if (token) {
    fwd = at;
  }
  if (!page.empty()) {
    back = page.front().key;
  } else if (token) {
    back = at;
  }
  return json{{"events", out_events},
              {"nextForwardToken", key_token('f', fwd)},
              {"nextBackwardToken", key_token('b', back)}};
}

StatusOr<json> LogsService::filter_log_events(const json& in, const std::string& account) {
  auto function = group_function(in, account);
  if (!function.ok()) return function.status();
  std::optional<std::string> prefix, pattern_text, token;
  std::optional<int64_t> limit;
  Range range;
  if (Status s = input::optional_string(in, "logStreamNamePrefix", 1, 512, &prefix); !s.ok()) return s;
  if (Status s = input::optional_string(in, "filterPattern", 0, 1024, &pattern_text); !s.ok()) return s;
  if (Status s = input::optional_string(in, "nextToken", 1, 4096, &token); !s.ok()) return s;
  if (Status s = input::optional_int(in, "limit", 1, 10000, &limit); !s.ok()) return s;
  if (Status s = read_range(in, &range); !s.ok()) return s;
  std::set<std::string> names;
  if (auto it = in.find("logStreamNames"); it != in.end() && !it->is_null()) {
    if (!it->is_array() || it->empty() || it->size() > 100) {
      return input::bad("logStreamNames", "Member must have length between 1 and 100");
    }
    for (const auto& n : *it) {
      if (!n.is_string()) return input::bad("logStreamNames", "Member must be a list of strings");
      names.insert(n.get<std::string>());
    }
    if (prefix) return InvalidParameter("Cannot specify both logStreamNames and logStreamNamePrefix.");
  }
  auto pattern = FilterPattern::parse(pattern_text.value_or(""));
  if (!pattern.ok()) return pattern.status();
  char kind = 0;
  EventKey after;
  bool have_after = false;
  if (token) {
    if (!parse_key_token(*token, &kind, &after) || kind != 'n') {
      return InvalidParameter("The specified nextToken is invalid.");
    }
    have_after = true;
  }
  auto g = store_.group(account, *function);
  if (!g) return LogResourceNotFound("The specified log group does not exist.");

  const size_t max = static_cast<size_t>(limit.value_or(kDefaultLimit));
  std::vector<LogEvent> events;
  bool more = false;
  std::string current;
  size_t taken = 0, taken_bytes = 0;  // per stream: each stream is time-ordered, so its
                                      // first `max` matches are all a page can need
  for (const auto& seg : g->segments) {
    if (!names.empty() && !names.count(seg.stream)) continue;
    if (prefix && seg.stream.rfind(*prefix, 0) != 0) continue;
    if (seg.stream != current) {
      current = seg.stream;
      taken = taken_bytes = 0;
    }
    if (taken >= max || taken_bytes >= kMaxResponseBytes) {
      more = true;
      continue;
    }
    if (seg.mtime_ms < range.start) continue;  // last written before the range
    read_segment(seg, range.start, range.end, [&](LogEvent&& e) {
      if (have_after && !(after < e.key)) return true;
      if (!pattern->matches(e.message)) return true;
      if (taken >= max || taken_bytes >= kMaxResponseBytes) {
        more = true;
        return false;
      }
      ++taken;
      taken_bytes += event_bytes(e);
      events.push_back(std::move(e));
      return true;
    });
  }
  std::sort(events.begin(), events.end(), [](const LogEvent& a, const LogEvent& b) { return a.key < b.key; });
  size_t n = 0, bytes = 0;
  while (n < events.size() && n < max && bytes + event_bytes(events[n]) <= kMaxResponseBytes) {
    bytes += event_bytes(events[n++]);
  }
  if (n < events.size()) more = true;
  json out_events = json::array();
  for (size_t i = 0; i < n; ++i) {
    const auto& e = events[i];
    out_events.push_back({{"logStreamName", e.key.stream},
                          {"timestamp", e.key.timestamp},
                          {"message", e.message},
                          {"ingestionTime", e.key.timestamp},
                          {"eventId", event_id(e.key)}});
  }
  json out = {{"events", out_events}, {"searchedLogStreams", json::array()}};
  if (more && n > 0) out["nextToken"] = key_token('n', events[n - 1].key);
  return out;
}

}  // namespace kiln::logs
