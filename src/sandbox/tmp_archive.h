// A sandbox's /tmp, saved with its snapshot and unpacked into the /tmp of every sandbox
// restored from it (Lambda keeps /tmp written during init in the snapshot).
//
// The format is Kiln's own and simple: "KILNTMP1", then one record per directory,
// regular file or symbolic link in pre-order (a directory before what it holds), then an
// end record. Sockets, fifos and devices are left out. The tree is written by hostile
// code, so both directions treat it as hostile: packing never follows a link and
// bounds depth, count and bytes; unpacking refuses any path that is absolute, has an
// empty, "." or ".." component, or whose parent is not a directory it made itself, and
// never follows a link it finds.
#pragma once

#include <sys/types.h>

#include <cstdint>

#include "common/status.h"

namespace kiln::sandbox {

struct TmpArchiveLimits {
  uint64_t max_bytes = 10240ull << 20;  // file contents and link targets, in total
  uint32_t max_entries = 100000;
  uint32_t max_depth = 64;
};

// Writes the tree under dir_fd (a directory fd; not closed) to out_fd. A tree beyond the
// limits fails with a message naming the limit.
Status pack_tmp_tree(int dir_fd, int out_fd, const TmpArchiveLimits& limits = {});

// Unpacks the archive read from archive_fd (from its current offset) under dir_fd, every
// entry owned by uid/gid; at most max_bytes of contents. Fails on the first bad record;
// what was unpacked before stays (the caller discards the whole /tmp then).
Status unpack_tmp_archive(int archive_fd, int dir_fd, uid_t uid, gid_t gid, uint64_t max_bytes);

}  // namespace kiln::sandbox
