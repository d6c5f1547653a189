// Reading function log events back from the LogStore's segment files.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <tuple>

#include "worker/log_store.h"

namespace kiln::logs {

// Where an event sits: unique within a log group, ordered as events are served.
struct EventKey {
  int64_t timestamp = 0;
  std::string stream;
  uint64_t seq = 0;
  uint64_t offset = 0;
  bool operator<(const EventKey& o) const {
    return std::tie(timestamp, stream, seq, offset) < std::tie(o.timestamp, o.stream, o.seq, o.offset);
  }
};

struct LogEvent {
  EventKey key;
  std::string message;
};

// Calls `visit` for each well-formed event of `segment` in file order, with timestamps
// in [start_ms, end_ms]; stops when it returns false. Malformed lines are skipped.
// Blocking (reads the file).
void read_segment(const worker::LogSegment& segment, int64_t start_ms, int64_t end_ms,
                  const std::function<bool(LogEvent&&)>& visit);

// The event id CloudWatch Logs clients see (stable, unique within the group).
std::string event_id(const EventKey& key);

// Opaque pagination tokens: an event position, and a plain index.
std::string key_token(char kind, const EventKey& key);
bool parse_key_token(std::string_view token, char* kind, EventKey* key);

}  // namespace kiln::logs
