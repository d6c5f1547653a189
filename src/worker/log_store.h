// Function logs on disk: one file per log stream under
// <root>/<account>/<function>/<stream file>, each line "<epoch ms> <message>". The
// CloudWatch Logs API (a later issue) reads them back.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

namespace kiln::worker {

class LogStream {
 public:
  LogStream(std::filesystem::path file, std::string name);
  ~LogStream();
  LogStream(const LogStream&) = delete;
  LogStream& operator=(const LogStream&) = delete;

  const std::string& name() const { return name_; }
  // Appends one event per line of `text` (a trailing newline is not an extra event).
  // Thread-safe.
  void append(int64_t epoch_ms, std::string_view text);

 private:
  std::string name_;
  std::mutex mu_;
  int fd_ = -1;  // guarded by mu_
};

class LogStore {
 public:
  explicit LogStore(std::filesystem::path root) : root_(std::move(root)) {}
  // Opens (creates) the stream file for a new sandbox.
  std::unique_ptr<LogStream> open_stream(const std::string& account, const std::string& function,
                                         const std::string& stream_name);

 private:
  std::filesystem::path root_;
};

int64_t epoch_ms_now();

}  // namespace kiln::worker
