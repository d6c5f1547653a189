// Where the snapshots of published SnapStart versions live: <data>/snapshots, 0700, root
// only (a snapshot holds a tenant's memory, environment and secrets; no sandbox can
// reach this directory). One directory per version, named by a hash of account,
// function and version, holding the checkpoint image (src/snapshot), the /tmp archive
// and meta.json. A snapshot is written into a "*.partial" directory and renamed into
// place once complete, so no reader ever sees half of one; a Kiln killed mid-snapshot
// leaves a partial directory that open() removes.
#pragma once

#include <filesystem>
#include <mutex>
#include <optional>
#include <string>

#include "common/status.h"
#include "registry/function.h"

namespace kiln::worker {

struct SnapshotMeta {
  std::string account, function, version, revision;  // exactly whose it is
  std::string replay;        // the Runtime API request the runtime was blocked on
  uint64_t bytes = 0;        // on disk, all files
  double checkpoint_ms = 0;  // how long the process was frozen
  int64_t taken_ms = 0;      // epoch ms
};

class SnapshotStore {
 public:
  explicit SnapshotStore(std::filesystem::path dir) : dir_(std::move(dir)) {}

  // Creates the directory (0700) and removes partial snapshots. Call once at start.
  Status open();

  // A fresh, empty directory (0700) to write v's snapshot into.
  StatusOr<std::filesystem::path> begin(const registry::FunctionVersion& v);
  // Writes meta.json into partial and makes it v's snapshot (replacing an older one).
  Status commit(const registry::FunctionVersion& v, const std::filesystem::path& partial, const SnapshotMeta& meta);
  void abort(const std::filesystem::path& partial);

  struct Found {
    std::filesystem::path dir;
    SnapshotMeta meta;
  };
  // v's committed snapshot: only if meta.json names exactly v (account, function,
  // version and revision), so that no snapshot is ever restored for another tenant or
  // another revision whatever the hash does.
  std::optional<Found> find(const registry::FunctionVersion& v) const;
  // Deletes v's snapshot (any revision). Idempotent.
  void remove(const registry::FunctionVersion& v);
  // Number of committed snapshots (for tests and kiln status).
  size_t count() const;

  const std::filesystem::path& dir() const { return dir_; }

 private:
  std::filesystem::path path_for(const registry::FunctionVersion& v) const;

  std::filesystem::path dir_;
  mutable std::mutex mu_;  // serializes commit/remove of one store
};

}  // namespace kiln::worker
