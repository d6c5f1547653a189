#!/usr/bin/env python3
"""Splits `perf script -F ip,sym` call stacks of kiln serve into the components of the
warm invoke path (used by scripts/profile_warm_path.sh perf). Each sample goes to the
most specific component found on its stack (innermost frame first), then is split
into user space and kernel by its leaf frame.

  perf_components.py SCRIPT.txt CPU_US_PER_INVOKE
"""
import collections
import sys

# (component, substrings of a frame); the first component whose marker appears on the
# stack, walking from the leaf outwards, wins. More specific markers come first.
RULES = [
    ("log store write", ["LogStream", "LogStore", "flush_log_locked"]),
    ("cgroup peak-memory read", ["peak_memory_bytes", "read_control"]),
    ("runtime output pipe read", ["drain_output_locked"]),
    ("SigV4 verification", ["verify_sigv4", "sigv4", "Sigv4", "SigV4", "credential_scope"]),
    ("routing (operation match)", ["kiln::api::route", "api::route("]),
    ("request id / trace id (random)", ["request_id", "fast_random_bytes", "RAND_bytes"]),
    ("invoke: registry, limiter, assignment", ["registry::", "Registry", "assignment::", "Assignment",
                                               "concurrency::", "Limiter", "Frontend::execute",
                                               "Frontend::run_invoke", "Frontend::invoke", "json_response",
                                               "nlohmann"]),
    ("Runtime API handling (deliver, complete)", ["Environment::", "runtime_api", "route_runtime_request"]),
    ("frontend handle (copy headers, Call)", ["Frontend::handle", "Frontend::dispatch"]),
    ("HTTP request read + parse (recvmsg, Beast parser)", ["read_some_op", "basic_parser", "Connection::read",
                                                           "on_read_some", "read_request", "reactive_socket_recv"]),
    ("timers (tcp_stream deadlines)", ["timer_queue", "deadline_timer_service", "timeout_handler",
                                      "expires_after", "expires_never", "wait_handler", "steady_timer"]),
    ("event loop (epoll_wait, strand, posts)", ["epoll_reactor", "scheduler", "strand", "executor_op",
                                               "executor_function", "epoll_wait"]),
]


WRITE_MARKS = ["do_write", "write_some_op", "write_op", "write_msg_op"]
LEAF_RULES = RULES[:3]  # log, cgroup, pipe: whole syscalls of their own


def classify(frames):
    def first(rules):
        for name, marks in rules:
            for f in frames:
                if any(m in f for m in marks):
                    return name
        return None
    leaf = first(LEAF_RULES)
    if leaf:
        return leaf
    comp = first(RULES) or "other"
    # A response write (sendmsg: on loopback it also runs the peer's TCP receive and
    # wake-up) is charged apart, named by who wrote it: inline in a handler, or posted
    # to the connection's strand from another one.
    if any(any(m in f for m in WRITE_MARKS) for f in frames):
        if comp.startswith(("event loop", "HTTP request read", "timers")):
            return "HTTP response write, posted from another connection's strand"
        return "HTTP response write, inline in: " + comp
    return comp


def main():
    path, cpu_us = sys.argv[1], float(sys.argv[2])
    counts = collections.Counter()
    kernel = collections.Counter()
    malloc = collections.Counter()
    frames = []
    total = 0

    def flush():
        nonlocal frames, total
        if not frames:
            return
        syms = [f.split(None, 1)[1] if " " in f else "" for f in frames]
        comp = classify(syms)
        counts[comp] += 1
        total += 1
        if frames[0].startswith("ffffffff"):
            kernel[comp] += 1
        elif any(s.startswith(("malloc", "free", "_int_malloc", "_int_free", "operator new", "cfree")) for s in syms[:3]):
            malloc[comp] += 1
        frames = []

    with open(path, errors="replace") as fh:
        for line in fh:
            line = line.strip()
            if not line:
                flush()
            else:
                frames.append(line)
    flush()
    print(f"| component | CPU µs per invoke | share | of it in the kernel | of it in malloc/free |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for comp, n in counts.most_common():
        print(f"| {comp} | {cpu_us * n / total:.1f} | {100.0 * n / total:.1f} % | "
              f"{100.0 * kernel[comp] / n:.0f} % | {100.0 * malloc[comp] / n:.0f} % |")
    print(f"| **total** ({total} samples) | {cpu_us:.1f} | 100 % | "
          f"{100.0 * sum(kernel.values()) / total:.0f} % | {100.0 * sum(malloc.values()) / total:.0f} % |")


if __name__ == "__main__":
    main()
