#include "worker/snapshot_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "common/crypto.h"
#include "common/json_text.h"
#include "common/log.h"

namespace kiln::worker {
namespace fs = std::filesystem;

namespace {

constexpr const char* kPartial = ".partial";

Status fs_error(const std::string& what, const std::error_code& ec) {
  return ServiceError("snapshot store: " + what + ": " + ec.message());
}

bool fsync_path(const fs::path& p, int flags) {
  int fd = ::open(p.c_str(), flags | O_CLOEXEC);
  if (fd < 0) return false;
  bool ok = ::fsync(fd) == 0;
  ::close(fd);
  return ok;
}

}  // namespace

Status SnapshotStore::open() {
  std::error_code ec;
  fs::create_directories(dir_, ec);
  if (ec) return fs_error("create " + dir_.string(), ec);
  fs::permissions(dir_, fs::perms::owner_all, ec);  // root only: snapshots hold tenants' memory
  if (ec) return fs_error("chmod " + dir_.string(), ec);
  for (const auto& e : fs::directory_iterator(dir_, ec)) {
    const std::string name = e.path().filename().string();
    if (name.size() > 8 && name.find(kPartial) != std::string::npos) {
      std::error_code rm;
      fs::remove_all(e.path(), rm);
      log::info("snapshots: removed an unfinished snapshot " + name);
    }
  }
  return Status::Ok();
}

fs::path SnapshotStore::path_for(const registry::FunctionVersion& v) const {
  std::string key = v.account_id;
  key.push_back('\0');
  key += v.name;
  key.push_back('\0');
  key += v.version;
  return dir_ / crypto::hex(crypto::sha256(key)).substr(0, 40);
}

StatusOr<fs::path> SnapshotStore::begin(const registry::FunctionVersion& v) {
  fs::path p = path_for(v).string() + kPartial + "-" + crypto::hex(crypto::random_bytes(6));
  std::error_code ec;
  fs::create_directory(p, ec);
  if (ec) return fs_error("create " + p.string(), ec);
  fs::permissions(p, fs::perms::owner_all, ec);
  if (ec) return fs_error("chmod " + p.string(), ec);
  return p;
}

Status SnapshotStore::commit(const registry::FunctionVersion& v, const fs::path& partial, const SnapshotMeta& m) {
  nlohmann::json j = {{"account", m.account},     {"function", m.function}, {"version", m.version},
                      {"revision", m.revision},   {"replay", m.replay},     {"bytes", m.bytes},
                      {"checkpoint_ms", m.checkpoint_ms}, {"taken_ms", m.taken_ms}};
  {
    std::ofstream out(partial / "meta.json", std::ios::trunc);
    out << json_text::dump(j);
    if (!out.flush()) return ServiceError("snapshot store: cannot write meta.json");
  }
  ::chmod((partial / "meta.json").c_str(), 0600);
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(partial, ec)) {
    if (e.is_regular_file()) fsync_path(e.path(), O_RDONLY);
  }
  fsync_path(partial, O_RDONLY | O_DIRECTORY);
  std::lock_guard lock(mu_);
  const fs::path final_dir = path_for(v);
  fs::remove_all(final_dir, ec);  // an older snapshot of the same version (a retry)
  fs::rename(partial, final_dir, ec);
  if (ec) return fs_error("rename " + partial.string(), ec);
  fsync_path(dir_, O_RDONLY | O_DIRECTORY);
  return Status::Ok();
}

void SnapshotStore::abort(const fs::path& partial) {
  std::error_code ec;
  fs::remove_all(partial, ec);
}

std::optional<SnapshotStore::Found> SnapshotStore::find(const registry::FunctionVersion& v) const {
  Found f;
  f.dir = path_for(v);
  std::ifstream in(f.dir / "meta.json");
  if (!in) return std::nullopt;
  std::stringstream ss;
  ss << in.rdbuf();
  auto j = json_text::parse_bounded(ss.str());
  if (!j.is_object()) return std::nullopt;
  auto text = [&](const char* k) { return j.contains(k) && j[k].is_string() ? j[k].get<std::string>() : std::string(); };
  f.meta.account = text("account");
  f.meta.function = text("function");
  f.meta.version = text("version");
  f.meta.revision = text("revision");
  f.meta.replay = text("replay");
  if (f.meta.account != v.account_id || f.meta.function != v.name || f.meta.version != v.version ||
      f.meta.revision != v.revision_id || f.meta.replay.empty()) {
    return std::nullopt;
  }
  if (j.contains("bytes") && j["bytes"].is_number_unsigned()) f.meta.bytes = j["bytes"].get<uint64_t>();
  if (j.contains("checkpoint_ms") && j["checkpoint_ms"].is_number()) f.meta.checkpoint_ms = j["checkpoint_ms"].get<double>();
  return f;
}

void SnapshotStore::remove(const registry::FunctionVersion& v) {
  std::lock_guard lock(mu_);
  std::error_code ec;
  if (fs::remove_all(path_for(v), ec) > 0) log::info("snapshots: deleted the snapshot of " + v.arn() + ":" + v.version);
}

size_t SnapshotStore::count() const {
  size_t n = 0;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir_, ec)) {
    if (e.path().filename().string().find(kPartial) == std::string::npos) ++n;
  }
  return n;
}

}  // namespace kiln::worker
