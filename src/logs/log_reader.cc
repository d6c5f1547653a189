#include "logs/log_reader.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <string>

#include <nlohmann/json.hpp>

#include "common/crypto.h"
#include "common/json_text.h"

namespace kiln::logs {

namespace {

constexpr size_t kBlock = 64 * 1024;  // bytes per read: a page never holds more than this beyond itself

// Parses "<epoch ms> <message>" at `offset` of `segment`; nullopt when malformed or
// outside [start_ms, end_ms].
std::optional<LogEvent> parse_line(std::string_view line, const worker::LogSegment& segment, uint64_t offset,
                                   int64_t start_ms, int64_t end_ms) {
  size_t space = line.find(' ');
  if (space == 0 || space == std::string_view::npos || space > 19) return std::nullopt;
  int64_t ts = 0;
  for (size_t i = 0; i < space; ++i) {
    if (line[i] < '0' || line[i] > '9') return std::nullopt;
    ts = ts * 10 + (line[i] - '0');
  }
  if (ts < start_ms || ts > end_ms) return std::nullopt;
  LogEvent ev;
  ev.key = {ts, segment.stream, segment.seq, offset};
  ev.message = std::string(line.substr(space + 1));
  if (ev.message.empty()) ev.message = " ";  // CloudWatch events are never empty
  return ev;
}

// An open segment file, read with pread. A file deleted meanwhile (retention, cap)
// reads as empty.
class SegmentFile {
 public:
  explicit SegmentFile(const std::filesystem::path& path) : fd_(::open(path.c_str(), O_RDONLY | O_CLOEXEC)) {}
  ~SegmentFile() {
    if (fd_ >= 0) ::close(fd_);
  }
  SegmentFile(const SegmentFile&) = delete;
  SegmentFile& operator=(const SegmentFile&) = delete;
  bool ok() const { return fd_ >= 0; }
  uint64_t size() const {
    struct stat st {};
    // SAFETY: fstat of the descriptor this object owns.
    return fd_ >= 0 && ::fstat(fd_, &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
  }
  // Appends up to n bytes at `at` to *out; returns how many.
  size_t read(uint64_t at, size_t n, std::string* out, uint64_t* bytes_read) const {
    size_t old = out->size();
    out->resize(old + n);
    // SAFETY: reads into the n bytes just reserved at the end of *out.
    ssize_t got = ::pread(fd_, out->data() + old, n, static_cast<off_t>(at));
    size_t k = got > 0 ? static_cast<size_t>(got) : 0;
    out->resize(old + k);
    *bytes_read += k;
    return k;
  }

 private:
  int fd_;
};

// Visits the lines of one segment from `from` on; false when visit stopped.
bool forward_segment(const worker::LogSegment& seg, uint64_t from, int64_t start_ms, int64_t end_ms,
                     uint64_t* bytes_read, const std::function<bool(LogEvent&&)>& visit) {
  SegmentFile file(seg.path);
  if (!file.ok()) return true;
  std::string buf;     // file bytes [base, base + buf.size())
  uint64_t base = from;
  bool skip_partial = false;
  if (from > 0) {
    // `from` may point inside a line (just past an event): start at the next line then.
    std::string prev;
    if (file.read(from - 1, 1, &prev, bytes_read) == 1 && prev[0] != '\n') skip_partial = true;
  }
  size_t scan = 0;  // lines before `scan` in buf have been handled
  for (;;) {
    size_t nl = buf.find('\n', scan);
    if (nl == std::string::npos) {
      buf.erase(0, scan);
      base += scan;
      scan = 0;
      if (file.read(base + buf.size(), kBlock, &buf, bytes_read) == 0) {
        if (buf.empty() || skip_partial) return true;
        auto ev = parse_line(buf, seg, base, start_ms, end_ms);  // a last line without its newline
        return !ev || visit(std::move(*ev));
      }
      continue;
    }
    std::string_view line(buf.data() + scan, nl - scan);
    uint64_t offset = base + scan;
    scan = nl + 1;
    if (skip_partial) {
      skip_partial = false;
      continue;
    }
    if (auto ev = parse_line(line, seg, offset, start_ms, end_ms); ev && !visit(std::move(*ev))) return false;
  }
}

// Visits the lines of one segment that start before `end` (a line start), last first.
bool backward_segment(const worker::LogSegment& seg, std::optional<uint64_t> end, int64_t start_ms,
                      int64_t end_ms, uint64_t* bytes_read, const std::function<bool(LogEvent&&)>& visit) {
  SegmentFile file(seg.path);
  if (!file.ok()) return true;
  uint64_t pos = end ? std::min(*end, file.size()) : file.size();
  std::string buf;  // file bytes [pos, pos + buf.size()): lines not yet visited
  for (;;) {
    while (!buf.empty()) {
      size_t line_end = buf.size();
      if (buf[line_end - 1] == '\n') --line_end;
      size_t nl = line_end == 0 ? std::string::npos : buf.rfind('\n', line_end - 1);
      if (nl == std::string::npos && pos != 0) break;  // the line's start is in the previous block
      size_t line_start = nl == std::string::npos ? 0 : nl + 1;
      std::string_view line(buf.data() + line_start, line_end - line_start);
      if (auto ev = parse_line(line, seg, pos + line_start, start_ms, end_ms); ev && !visit(std::move(*ev))) {
        return false;
      }
      buf.resize(line_start);
    }
    if (pos == 0) return true;
    size_t n = static_cast<size_t>(std::min<uint64_t>(kBlock, pos));
    std::string block;
    if (file.read(pos - n, n, &block, bytes_read) != n) return true;  // truncated meanwhile
    pos -= n;
    buf.insert(0, block);
  }
}

}  // namespace

void read_segment(const worker::LogSegment& segment, int64_t start_ms, int64_t end_ms,
                  const std::function<bool(LogEvent&&)>& visit) {
  uint64_t ignored = 0;
  forward_segment(segment, 0, start_ms, end_ms, &ignored, visit);
}

void read_stream_forward(const std::vector<worker::LogSegment>& segments, StreamPosition from, int64_t start_ms,
                         int64_t end_ms, uint64_t* bytes_read, const std::function<bool(LogEvent&&)>& visit) {
  for (const auto& seg : segments) {
    if (seg.seq < from.seq) continue;
    if (seg.mtime_ms < start_ms) continue;  // last written before the range
    if (!forward_segment(seg, seg.seq == from.seq ? from.offset : 0, start_ms, end_ms, bytes_read, visit)) return;
  }
}

void read_stream_backward(const std::vector<worker::LogSegment>& segments, std::optional<StreamPosition> before,
                          int64_t start_ms, int64_t end_ms, uint64_t* bytes_read,
                          const std::function<bool(LogEvent&&)>& visit) {
  for (auto it = segments.rbegin(); it != segments.rend(); ++it) {
    const auto& seg = *it;
    if (before && seg.seq > before->seq) continue;
    if (seg.mtime_ms < start_ms) continue;
    std::optional<uint64_t> end;
    if (before && seg.seq == before->seq) end = before->offset;
    if (!backward_segment(seg, end, start_ms, end_ms, bytes_read, visit)) return;
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
