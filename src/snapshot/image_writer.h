// Builds a plan file (image_format.h) from the records the checkpoint collected.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "common/status.h"
#include "snapshot/image_format.h"

namespace kiln::snapshot {

struct PlanBuilder {
  image::PlanHeader header{};
  std::vector<image::VmaRec> vmas;
  std::vector<image::RunRec> runs;
  std::vector<image::FdRec> fds;
  std::vector<image::EpollRec> epoll;
  std::vector<image::SigactionRec> sigactions;
  std::vector<image::ThreadRec> threads;
  std::vector<std::vector<unsigned char>> xstates;  // one per thread
  std::string strings;

  image::Str add_string(const std::string& s);
  // Lays out the sections, fills offsets and the checksum, returns the file bytes.
  std::vector<unsigned char> serialize();
};

// Writes `bytes` to `path` (mode 0600, O_EXCL).
Status write_file_0600(const std::filesystem::path& path, const std::vector<unsigned char>& bytes);

// Reads and validates a plan file.
StatusOr<std::vector<unsigned char>> read_plan(const std::filesystem::path& path);

}  // namespace kiln::snapshot
