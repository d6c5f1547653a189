#include "worker/log_store.h"
#include "common/json_text.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <system_error>

#include <nlohmann/json.hpp>

namespace kiln::worker {

namespace fs = std::filesystem;

int64_t epoch_ms_now() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

namespace {

constexpr std::string_view kGroupFile = "group.json";

bool plain_char(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
         c == '$' || c == '[' || c == ']' || (c == '.');
}

int64_t mtime_ms(const struct stat& st) {
  return static_cast<int64_t>(st.st_mtim.tv_sec) * 1000 + st.st_mtim.tv_nsec / 1000000;
}

nlohmann::json read_group_file(const fs::path& dir) {
  std::ifstream in(dir / kGroupFile);
  if (!in) return nlohmann::json::object();
  std::stringstream ss;
  ss << in.rdbuf();
  auto j = nlohmann::json::parse(ss.str(), nullptr, false);
  return j.is_object() ? j : nlohmann::json::object();
}

bool write_group_file(const fs::path& dir, const nlohmann::json& j) {
  fs::path tmp = dir / "group.json.tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << json_text::dump(j);
    if (!out) return false;
  }
  std::error_code ec;
  fs::rename(tmp, dir / kGroupFile, ec);
  return !ec;
}

uint64_t sum_bytes(const std::vector<LogSegment>& segs) {
  uint64_t n = 0;
  for (const auto& s : segs) n += s.bytes;
  return n;
}

}  // namespace

std::string LogStore::encode_name(std::string_view stream) {
  std::string out;
  for (unsigned char c : stream) {
    if (plain_char(c) && c != '.') {
      out += static_cast<char>(c);
    } else {
      char buf[4];
      std::snprintf(buf, sizeof buf, "%%%02X", c);
      out += buf;
    }
  }
  return out;
}

std::optional<std::string> LogStore::decode_name(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out += s[i];
      continue;
    }
    if (i + 2 >= s.size()) return std::nullopt;
    auto nibble = [](char c) -> int {
      if (c >= '0' && c <= '9') return c - '0';
      if (c >= 'A' && c <= 'F') return c - 'A' + 10;
      return -1;
    };
    int hi = nibble(s[i + 1]), lo = nibble(s[i + 2]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out += static_cast<char>(hi * 16 + lo);
    i += 2;
  }
  return out;
}

std::vector<LogSegment> list_segments(const fs::path& dir) {
  std::vector<LogSegment> out;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    std::string file = it->path().filename().string();
    // <encoded>.<seq>.log; the encoded name holds no '.'.
    if (file.size() < 12 || file.substr(file.size() - 4) != ".log") continue;
    size_t dot = file.find('.');
    if (dot == std::string::npos || dot + 4 >= file.size()) continue;
    std::string seq = file.substr(dot + 1, file.size() - 4 - dot - 1);
    if (seq.empty() || seq.find_first_not_of("0123456789") != std::string::npos || seq.size() > 12) continue;
    auto name = LogStore::decode_name(std::string_view(file).substr(0, dot));
    if (!name) continue;
    struct stat st {};
    // SAFETY: stat of a path we just listed; a racing delete only fails the call.
    if (::stat(it->path().c_str(), &st) != 0) continue;
    out.push_back({it->path(), *name, std::stoull(seq), static_cast<uint64_t>(st.st_size), mtime_ms(st)});
  }
  std::sort(out.begin(), out.end(), [](const LogSegment& a, const LogSegment& b) {
    return a.stream != b.stream ? a.stream < b.stream : a.seq < b.seq;
  });
  return out;
}

LogStream::LogStream(LogStore& store, std::shared_ptr<LogGroupState> group, fs::path dir, std::string name)
    : store_(store), group_(std::move(group)), dir_(std::move(dir)), name_(std::move(name)),
      file_prefix_(LogStore::encode_name(name_) + ".") {
  std::lock_guard lock(mu_);
  generation_ = group_->generation.load();
  open_segment_locked();
}

LogStream::~LogStream() {
  if (fd_ >= 0) ::close(fd_);
}

void LogStream::open_segment_locked() {
  if (fd_ >= 0) ::close(fd_);
  ++seq_;
  char seq[16];
  std::snprintf(seq, sizeof seq, "%06llu", static_cast<unsigned long long>(seq_));
  path_ = dir_ / (file_prefix_ + seq + ".log");
  std::error_code ec;
  fs::create_directories(dir_, ec);
  // SAFETY: plain open of a path Kiln built; fd owned by this object.
  fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  segment_size_ = 0;
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
  const LogLimits limits = store_.limits();
  bool over = false;
  fs::path keep;
  {
    std::lock_guard lock(mu_);
    uint64_t generation = group_->generation.load(std::memory_order_acquire);
    if (generation != generation_) {
      // Files were deleted (retention, cap, DeleteLogGroup): if ours went, start anew.
      generation_ = generation;
      struct stat st {};
      if (::stat(path_.c_str(), &st) != 0) {
        {
          std::lock_guard group_lock(group_->mu);
          LogStore::ensure_group_file_locked(dir_);
        }
        open_segment_locked();
      }
    }
    if (segment_size_ >= limits.segment_bytes) open_segment_locked();
    if (fd_ < 0) return;
    // SAFETY: writes a buffer we own to our fd; a short write on a full disk loses log
    // lines, never function results.
    ssize_t n = ::write(fd_, out.data(), out.size());
    if (n > 0) {
      segment_size_ += static_cast<uint64_t>(n);
      over = group_->bytes.fetch_add(static_cast<uint64_t>(n)) + static_cast<uint64_t>(n) >
             limits.max_bytes_per_function;
    }
    if (over) keep = path_;
  }
  if (over) {
    std::unique_lock group_lock(group_->mu, std::try_to_lock);
    if (!group_lock.owns_lock()) return;  // another stream of this group is evicting
    store_.evict_locked(*group_, dir_, keep);
  }
}

LogStore::LogStore(fs::path root, LogLimits limits) : root_(std::move(root)), limits_(limits) {}

void LogStore::set_limits(LogLimits limits) {
  std::lock_guard lock(mu_);
  limits_ = limits;
}

LogLimits LogStore::limits() const {
  std::lock_guard lock(mu_);
  return limits_;
}

std::shared_ptr<LogGroupState> LogStore::state(const std::string& account, const std::string& function,
                                               const fs::path& d) {
  std::lock_guard lock(mu_);
  auto& slot = groups_[account + "/" + function];
  if (!slot) {
    slot = std::make_shared<LogGroupState>();
    slot->bytes = sum_bytes(list_segments(d));
  }
  return slot;
}

std::unique_ptr<LogStream> LogStore::open_stream(const std::string& account, const std::string& function,
                                                 const std::string& stream_name) {
  fs::path d = dir(account, function);
  std::error_code ec;
  fs::create_directories(d, ec);
  auto group = state(account, function, d);
  {
    std::lock_guard lock(group->mu);
    ensure_group_file_locked(d);
  }
  return std::make_unique<LogStream>(*this, std::move(group), d, stream_name);
}

void LogStore::ensure_group_file_locked(const fs::path& d) {
  std::error_code ec;
  if (fs::exists(d / kGroupFile, ec)) return;
  fs::create_directories(d, ec);
  write_group_file(d, nlohmann::json{{"creationTime", epoch_ms_now()}});
}

void LogStore::evict_locked(LogGroupState& group, const fs::path& d, const fs::path& keep) {
  auto segs = list_segments(d);
  uint64_t total = sum_bytes(segs);
  const uint64_t target = limits().max_bytes_per_function / 10 * 9;
  // The newest segment of each stream may still be open for writing: keep those.
  std::map<std::string, uint64_t> newest;
  for (const auto& s : segs) newest[s.stream] = std::max(newest[s.stream], s.seq);
  std::vector<const LogSegment*> order;
  for (const auto& s : segs) {
    if (s.path != keep && newest[s.stream] != s.seq) order.push_back(&s);
  }
  std::sort(order.begin(), order.end(), [](const LogSegment* a, const LogSegment* b) {
    return a->mtime_ms != b->mtime_ms ? a->mtime_ms < b->mtime_ms : a->seq < b->seq;
  });
  bool deleted = false;
  for (const LogSegment* s : order) {
    if (total <= target) break;
    std::error_code ec;
    if (fs::remove(s->path, ec)) {
      total -= s->bytes;
      deleted = true;
    }
  }
  group.bytes = total;
  if (deleted) group.generation.fetch_add(1, std::memory_order_release);
}

std::vector<std::string> LogStore::functions(const std::string& account) const {
  std::vector<std::string> out;
  std::error_code ec;
  for (fs::directory_iterator it(root_ / account, ec), end; !ec && it != end; it.increment(ec)) {
    if (it->is_directory(ec) && fs::exists(it->path() / kGroupFile, ec)) out.push_back(it->path().filename());
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::optional<LogGroupInfo> LogStore::group(const std::string& account, const std::string& function) const {
  fs::path d = dir(account, function);
  std::error_code ec;
  if (!fs::exists(d / kGroupFile, ec)) return std::nullopt;
  LogGroupInfo info;
  info.function = function;
  auto j = read_group_file(d);
  info.creation_ms = j.value("creationTime", int64_t{0});
  if (j.contains("retentionInDays") && j["retentionInDays"].is_number_integer()) {
    info.retention_days = j["retentionInDays"].get<int>();
  }
  info.segments = list_segments(d);
  info.bytes = sum_bytes(info.segments);
  return info;
}

Status LogStore::delete_group(const std::string& account, const std::string& function) {
  fs::path d = dir(account, function);
  std::error_code ec;
  if (!fs::exists(d / kGroupFile, ec)) {
    return {400, "ResourceNotFoundException", "The specified log group does not exist."};
  }
  auto group = state(account, function, d);
  std::lock_guard lock(group->mu);
  fs::remove_all(d, ec);
  if (ec) return ServiceError("cannot delete the log group: " + ec.message());
  group->bytes = 0;
  group->generation.fetch_add(1, std::memory_order_release);
  return {};
}

Status LogStore::set_retention(const std::string& account, const std::string& function, std::optional<int> days) {
  fs::path d = dir(account, function);
  std::error_code ec;
  if (!fs::exists(d / kGroupFile, ec)) {
    return {400, "ResourceNotFoundException", "The specified log group does not exist."};
  }
  auto group = state(account, function, d);
  std::lock_guard lock(group->mu);
  auto j = read_group_file(d);
  if (days) {
    j["retentionInDays"] = *days;
  } else {
    j.erase("retentionInDays");
  }
  if (!write_group_file(d, j)) return ServiceError("cannot write the log group's settings");
  return {};
}

uint64_t LogStore::enforce_retention(int64_t now_ms) {
  uint64_t freed = 0;
  std::error_code ec;
  for (fs::directory_iterator acct(root_, ec), end; !ec && acct != end; acct.increment(ec)) {
    std::string account = acct->path().filename();
    for (const std::string& function : functions(account)) {
      auto info = group(account, function);
      if (!info || !info->retention_days) continue;
      int64_t cutoff = now_ms - static_cast<int64_t>(*info->retention_days) * 86400000;
      auto g = state(account, function, dir(account, function));
      std::lock_guard lock(g->mu);
      bool deleted = false;
      for (const auto& s : info->segments) {
        std::error_code rec;
        if (s.mtime_ms < cutoff && fs::remove(s.path, rec)) {
          freed += s.bytes;
          g->bytes -= std::min<uint64_t>(g->bytes.load(), s.bytes);
          deleted = true;
        }
      }
      if (deleted) g->generation.fetch_add(1, std::memory_order_release);
    }
  }
  return freed;
}

}  // namespace kiln::worker
