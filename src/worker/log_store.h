// Function logs on disk, bounded. Layout under the store's root:
//   <root>/<account>/<function>/group.json           {"creationTime": ms, "retentionInDays": n}
//   <root>/<account>/<function>/<stream>.<seq>.log    segments of one log stream
// <stream> is the stream name percent-encoded (every byte outside [A-Za-z0-9._$[]-]
// becomes %XX), <seq> a 6-digit segment number; a stream is its segments in seq order.
// Each line of a segment is one event: "<epoch ms> <message>\n".
// Bounds: a stream rolls to a new segment every `segment_bytes`; when a function's
// files exceed `max_bytes_per_function`, whole segments go, least recently written
// first, until it is under 90% of the cap (a stream's open segment is never deleted,
// so the overshoot is at most one segment per live sandbox). Retention (days) deletes
// segments last written before the cutoff. The CloudWatch Logs API (src/logs) reads
// the files back.
#pragma once

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace kiln::worker {

struct LogLimits {
  uint64_t max_bytes_per_function = 256ull << 20;
  uint64_t segment_bytes = 1ull << 20;
};

// Shared by every stream of one function's log group: its byte count and a generation
// bumped whenever files are deleted under the streams' feet.
struct LogGroupState {
  std::mutex mu;                       // serializes eviction and deletion in this group
  std::atomic<uint64_t> bytes{0};      // bytes of every segment file
  std::atomic<uint64_t> generation{0};
};

class LogStore;

class LogStream {
 public:
  LogStream(LogStore& store, std::shared_ptr<LogGroupState> group, std::filesystem::path dir,
            std::string name);
  ~LogStream();
  LogStream(const LogStream&) = delete;
  LogStream& operator=(const LogStream&) = delete;

  const std::string& name() const { return name_; }
  // Appends one event per line of `text` (a trailing newline is not an extra event).
  // Thread-safe. Never blocks on other functions' logs; a full disk loses lines.
  void append(int64_t epoch_ms, std::string_view text);

 private:
  void open_segment_locked();

  LogStore& store_;
  std::shared_ptr<LogGroupState> group_;
  std::filesystem::path dir_;
  std::string name_;
  std::string file_prefix_;  // encoded name + "."
  std::mutex mu_;
  int fd_ = -1;                  // guarded by mu_
  uint64_t seq_ = 0;             // guarded by mu_
  uint64_t segment_size_ = 0;    // guarded by mu_
  uint64_t generation_ = 0;      // guarded by mu_
  std::filesystem::path path_;   // guarded by mu_
};

// One segment file as listed.
struct LogSegment {
  std::filesystem::path path;
  std::string stream;  // decoded stream name
  uint64_t seq = 0;
  uint64_t bytes = 0;
  int64_t mtime_ms = 0;  // last write
};

struct LogGroupInfo {
  std::string function;
  int64_t creation_ms = 0;
  std::optional<int> retention_days;
  uint64_t bytes = 0;
  std::vector<LogSegment> segments;  // sorted by (stream, seq)
};

// Thread-safe.
class LogStore {
 public:
  explicit LogStore(std::filesystem::path root, LogLimits limits = {});
  void set_limits(LogLimits limits);
  LogLimits limits() const;

  // Opens (creates) the stream for a new sandbox.
  std::unique_ptr<LogStream> open_stream(const std::string& account, const std::string& function,
                                         const std::string& stream_name);

  // Reading side (the Logs API). Function names of an account that have a log group.
  std::vector<std::string> functions(const std::string& account) const;
  std::optional<LogGroupInfo> group(const std::string& account, const std::string& function) const;
  // Deletes every file of the group. ResourceNotFound (logs' error type) if absent.
  Status delete_group(const std::string& account, const std::string& function);
  // nullopt removes the retention (never expire).
  Status set_retention(const std::string& account, const std::string& function, std::optional<int> days);
  // Deletes segments older than their group's retention. Returns bytes freed.
  uint64_t enforce_retention(int64_t now_ms);

  static std::string encode_name(std::string_view stream);
  static std::optional<std::string> decode_name(std::string_view file_part);

 private:
  friend class LogStream;
  std::shared_ptr<LogGroupState> state(const std::string& account, const std::string& function,
                                       const std::filesystem::path& dir);
  // Requires group->mu held. Deletes least recently written segments (not `keep`)
  // until the group is under 90% of the cap.
  void evict_locked(LogGroupState& group, const std::filesystem::path& dir, const std::filesystem::path& keep);
  // Writes group.json with a creation time if the group has none (new, or deleted by
  // DeleteLogGroup while a sandbox still logs). Requires the group's mu held.
  static void ensure_group_file_locked(const std::filesystem::path& dir);
  std::filesystem::path dir(const std::string& account, const std::string& function) const {
    return root_ / account / function;
  }

  const std::filesystem::path root_;
  mutable std::mutex mu_;
  LogLimits limits_;                                              // guarded by mu_
  std::map<std::string, std::shared_ptr<LogGroupState>> groups_;  // guarded by mu_
};

int64_t epoch_ms_now();
// Lists a group directory's segments (sorted by stream, seq). Missing dir: empty.
std::vector<LogSegment> list_segments(const std::filesystem::path& dir);

}  // namespace kiln::worker
