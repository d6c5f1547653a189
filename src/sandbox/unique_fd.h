// The sandbox layer's owned file descriptor: the common one (src/common/unique_fd.h).
#pragma once

#include "common/unique_fd.h"

namespace kiln::sandbox {
using kiln::UniqueFd;
}  // namespace kiln::sandbox
