// Landlock, the second fence behind the read-only mounts: once applied, the process and
// its descendants may only read and execute under /, write under /tmp and use the few
// /dev nodes; from ABI 6 they also cannot signal or reach abstract sockets outside.
#pragma once

namespace kiln::sandbox {

// The Landlock ABI version of the running kernel; 0 when Landlock is absent or disabled.
int landlock_abi();

// Applies the policy to the calling process (inside the sandbox, after pivot_root and
// no_new_privs). Makes only system calls: safe in the child of a multithreaded parent.
// Returns 0 or the errno of the failing step; abi 0 is a no-op.
int apply_landlock(int abi);

}  // namespace kiln::sandbox
