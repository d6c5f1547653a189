#include "worker/log_store.h"

#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <system_error>

namespace kiln::worker {

int64_t epoch_ms_now() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

LogStream::LogStream(std::filesystem::path file, std::string name) : name_(std::move(name)) {
  // SAFETY: plain open of a path Kiln built; fd owned by this object.
  fd_ = ::open(file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
}

LogStream::~LogStream() {
  if (fd_ >= 0) ::close(fd_);
}

void LogStream::append(int64_t epoch_ms, std::string_view text) {
  if (text.empty()) return;
  std::string out;
  out.reserve(text.size() + 32);
  std::string ts = std::to_string(epoch_ms);
  size_t start = 0;
  while (start < text.size()) {
    size_t nl = text.find('\n', start);
    size_t end = nl == std::string_view::npos ? text.size() : nl;
    out += ts;
    out += ' ';
    out.append(text.substr(start, end - start));
    out += '\n';
    start = end + 1;
  }
  std::lock_guard lock(mu_);
  if (fd_ < 0) return;
  // SAFETY: writes a buffer we own to our fd; a short write on a full disk loses log
  // lines, never function results.
  ssize_t n = ::write(fd_, out.data(), out.size());
  (void)n;
}

std::unique_ptr<LogStream> LogStore::open_stream(const std::string& account, const std::string& function,
                                                 const std::string& stream_name) {
  std::filesystem::path dir = root_ / account / function;
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  std::string file;
  for (char c : stream_name) file += (c == '/' ? '-' : c);
  return std::make_unique<LogStream>(dir / (file + ".log"), stream_name);
}

}  // namespace kiln::worker
