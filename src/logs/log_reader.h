// Reading function log events back from the LogStore's segment files.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

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

// A position in one stream: events are ordered by (seq, offset).
struct StreamPosition {
  uint64_t seq = 0;
  uint64_t offset = 0;
};

// Reads one stream's events in order, starting at the first event at or after `from`,
// reading only from there on (a seek, not a scan), in bounded blocks; stops when
// `visit` returns false. `segments` are the stream's, in seq order. Events outside
// [start_ms, end_ms] are skipped. Adds the bytes it read to *bytes_read. Blocking.
void read_stream_forward(const std::vector<worker::LogSegment>& segments, StreamPosition from, int64_t start_ms,
                         int64_t end_ms, uint64_t* bytes_read, const std::function<bool(LogEvent&&)>& visit);
// The same backward: events strictly before `before` (nullopt: from the stream's end),
// last first, reading the files from the end in bounded blocks.
void read_stream_backward(const std::vector<worker::LogSegment>& segments, std::optional<StreamPosition> before,
                          int64_t start_ms, int64_t end_ms, uint64_t* bytes_read,
                          const std::function<bool(LogEvent&&)>& visit);

// The event id CloudWatch Logs clients see (stable, unique within the group).
std::string event_id(const EventKey& key);

// Opaque pagination tokens: an event position, and a plain index.
std::string key_token(char kind, const EventKey& key);
bool parse_key_token(std::string_view token, char* kind, EventKey* key);

}  // namespace kiln::logs
