#include "logs/log_reader.h"

#include <cstdio>
#include <fstream>

#include <nlohmann/json.hpp>

#include "common/crypto.h"
#include "common/json_text.h"

namespace kiln::logs {

void read_segment(const worker::LogSegment& segment, int64_t start_ms, int64_t end_ms,
                  const std::function<bool(LogEvent&&)>& visit) {
  std::ifstream in(segment.path, std::ios::binary);
  if (!in) return;  // deleted meanwhile (retention, cap): nothing to read
  std::string line;
  uint64_t offset = 0;
  while (std::getline(in, line)) {
    uint64_t at = offset;
    offset += line.size() + 1;
    size_t space = line.find(' ');
    if (space == 0 || space == std::string::npos || space > 19) continue;
    int64_t ts = 0;
    bool digits = true;
    for (size_t i = 0; i < space; ++i) {
      if (line[i] < '0' || line[i] > '9') {
        digits = false;
        break;
      }
      ts = ts * 10 + (line[i] - '0');
    }
    if (!digits || ts < start_ms || ts > end_ms) continue;
    LogEvent ev;
    ev.key = {ts, segment.stream, segment.seq, at};
    ev.message = line.substr(space + 1);
    if (ev.message.empty()) ev.message = " ";  // CloudWatch events are never empty
    if (!visit(std::move(ev))) return;
  }
}

std::string event_id(const EventKey& key) {
  // Digits only, like CloudWatch's: timestamp, a hash of the stream, position.
  std::string h = crypto::sha256(key.stream);
  unsigned long long stream_hash = 0;
  for (int i = 0; i < 6; ++i) stream_hash = (stream_hash << 8) | static_cast<unsigned char>(h[i]);
  char buf[96];
  std::snprintf(buf, sizeof buf, "%015lld%015llu%08llu%012llu", static_cast<long long>(key.timestamp), stream_hash,
                static_cast<unsigned long long>(key.seq), static_cast<unsigned long long>(key.offset));
  return buf;
}

std::string key_token(char kind, const EventKey& key) {
  nlohmann::json j = {std::string(1, kind), key.timestamp, key.stream, key.seq, key.offset};
  return crypto::base64(json_text::dump(j));
}

bool parse_key_token(std::string_view token, char* kind, EventKey* key) {
  std::string raw;
  if (!crypto::base64_decode(token, &raw)) return false;
  auto j = nlohmann::json::parse(raw, nullptr, false);
  if (!j.is_array() || j.size() != 5 || !j[0].is_string() || j[0].get<std::string>().size() != 1 ||
      !j[1].is_number_integer() || !j[2].is_string() || !j[3].is_number_unsigned() || !j[4].is_number_unsigned()) {
    return false;
  }
  *kind = j[0].get<std::string>()[0];
  key->timestamp = j[1].get<int64_t>();
  key->stream = j[2].get<std::string>();
  key->seq = j[3].get<uint64_t>();
  key->offset = j[4].get<uint64_t>();
  return true;
}

}  // namespace kiln::logs
