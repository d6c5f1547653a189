"""Writes docs/benchmarks.md from the JSON results of one bench/run.sh run.

Usage: report.py --results DIR --backends "jail process" --repo REPO --duration S
                 --warmup S --out FILE [--notes FILE]
Reads from DIR: load_floor_c<N>.json (kiln_loadgen against nginx), spawn_*.json
(kiln_spawn_floor), loadavg_{start,end}.txt; and per backend from DIR/BACKEND/:
load_<runtime>_c<N>.json, functions.json and cold.json (drive_functions.py),
start_failure.log when the server did not start. --notes FILE is appended verbatim. Missing files become "not measured"
rows, never a crash: a partial run still yields a truthful page.
"""
import argparse
import datetime
import glob
import json
import os
import platform
import re
import subprocess

FLOOR_LABEL = "nginx `return 200` (floor)"
RUNTIMES = [("provided.al2023", "Kiln, C bootstrap"), ("python3.11", "Kiln, python3.11"),
            ("nodejs20.x", "Kiln, nodejs20.x")]
PAYLOAD = '{"bench":"echo","n":1}'  # as in drive_functions.py and run.sh
SPAWN_FLOORS = [("spawn_true", "fork+exec+wait of `/bin/true`"),
                ("spawn_true_ns", "clone into 7 new namespaces (user, pid, mount, net, ipc, "
                                  "uts, cgroup) + exec of `/bin/true`"),
                ("spawn_python", "`/usr/bin/python3 -c pass`"),
                ("spawn_node", "`/usr/bin/node -e 0`")]
RUNTIME_FLOOR = {"provided.al2023": "spawn_true", "python3.11": "spawn_python",
                 "nodejs20.x": "spawn_node"}
WARM_P50_FACTOR = 3.0
C_RPS_TARGET = 15000


def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def read_text(results, name):
    try:
        with open(os.path.join(results, name)) as f:
            return f.read().strip()
    except OSError:
        return "?"


def sh(*cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def machine(repo):
    model = re.search(r"Model name:\s*(.+)", sh("lscpu"))
    mem_kb = re.search(r"MemTotal:\s*(\d+)", open("/proc/meminfo").read())
    distro = re.search(r'PRETTY_NAME="([^"]+)"', open("/etc/os-release").read())
    commit = sh("git", "-C", repo, "rev-parse", "--short", "HEAD") or "unknown"
    dirty = sh("git", "-C", repo, "status", "--porcelain", "--untracked-files=no")
    return {
        "cpu": model.group(1) if model else platform.processor(),
        "cores": os.cpu_count(),
        "kernel": platform.release(),
        "memory": "%.1f GiB" % (int(mem_kb.group(1)) / 1048576) if mem_kb else "?",
        "os": distro.group(1) if distro else "?",
        "commit": commit + (" (with uncommitted changes in the work tree)" if dirty else ""),
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "nginx": sh("nginx", "-v") or sh("sh", "-c", "nginx -v 2>&1"),
    }


def fmt(v, digits=0):
    if v is None:
        return "–"
    return ("{:,.%df}" % digits).format(v)


def load_points(results):
    """{target: {connections: loadgen json}}"""
    points = {}
    for path in glob.glob(os.path.join(results, "load_*_c*.json")):
        m = re.match(r"load_(.+)_c(\d+)\.json$", os.path.basename(path))
        data = load(path)
        if m and data:
            points.setdefault(m.group(1), {})[int(m.group(2))] = data
    return points


def warm_row(label, d, f, c, is_floor):
    if not d:
        return "| %s | %d | not measured | | | | | | | |" % (label, c)
    lat = d["latency_us"]
    errors = d["non_2xx"] + d["function_errors"] + d["socket_errors"]
    ratio = rate = ""
    if f and not is_floor:
        if f["latency_us"]["p50"]:
            ratio = "%.1f×" % (lat["p50"] / f["latency_us"]["p50"])
        if f["throughput_rps"]:
            rate = "%.2f" % (d["throughput_rps"] / f["throughput_rps"])
    return "| %s | %d | %s | %s | %s | %s | %s | %d | %s | %s |" % (
        label, c, fmt(d["throughput_rps"]), fmt(lat["p50"]), fmt(lat["p90"]),
        fmt(lat["p99"]), fmt(lat["max"]), errors, ratio, rate)


def warm_table(floor, by_backend, concurrency):
    rows = ["| target | clients | invokes/s | p50 µs | p90 µs | p99 µs | max µs | errors "
            "| p50 ÷ floor p50 | rate ÷ floor rate |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for c in concurrency:
        rows.append(warm_row(FLOOR_LABEL, floor.get(c), None, c, True))
    for backend, points in by_backend.items():
        for key, label in RUNTIMES:
            for c in concurrency:
                rows.append(warm_row("%s (%s)" % (label, backend), points.get(key, {}).get(c),
                                     floor.get(c), c, False))
    return "\n".join(rows)


def spawn_table(results):
    rows = ["| floor | runs | p50 ms | p90 ms | min ms | max ms |",
            "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for key, label in SPAWN_FLOORS:
        d = load(os.path.join(results, key + ".json"))
        if not d:
            rows.append("| %s | not measured | | | | |" % label)
            continue
        ms = d["ms"]
        rows.append("| %s | %d | %s | %s | %s | %s |" % (label, d["runs"], fmt(ms["p50"], 2),
                                                      fmt(ms["p90"], 2), fmt(ms["min"], 2),
                                                      fmt(ms["max"], 2)))
    return "\n".join(rows)


def cold_row(label, cold, upd, floor_p50):
    cells = [label]
    if not cold or "error" in cold or not cold.get("cold_invoke_ms"):
        why = (cold or {}).get("error") or "no cold start observed"
        cells += [why.replace("|", "/"), "", "", ""]
    else:
        c, i = cold["cold_invoke_ms"], cold["init_duration_ms"]
        n = c["n"] if not cold.get("not_cold") else "%d (+%d not cold)" % (c["n"], cold["not_cold"])
        cells += [fmt(c["p50"], 1), fmt(c["p90"], 1), "%s / %s" % (fmt(c["max"], 1), n),
                  fmt(i["p50"], 1) if i else "not reported"]
    if not upd or "error" in upd:
        cells += [((upd or {}).get("error") or "not measured").replace("|", "/"), "", ""]
    else:
        cells += [fmt(upd["update_until_ready_ms"]["p50"], 1),
                  fmt(upd["first_invoke_after_update_ms"]["p50"], 1),
                  fmt(upd["warm_invoke_boto3_ms"]["p50"], 1)]
    cells.append(floor_p50)
    return "| " + " | ".join(str(x) for x in cells) + " |"


def cold_table(results, backends):
    rows = ["| runtime (backend) | cold invoke p50 ms | p90 ms | max ms / runs | Init Duration "
            "p50 ms | update → ready p50 ms | first invoke after update p50 ms "
            "| warm invoke p50 ms | process-start floor p50 ms |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for backend in backends:
        cold = load(os.path.join(results, backend, "cold.json")) or {}
        upd = load(os.path.join(results, backend, "update.json")) or {}
        for key, _ in RUNTIMES:
            floor = load(os.path.join(results, RUNTIME_FLOOR[key] + ".json"))
            floor_p50 = fmt(floor["ms"]["p50"], 2) if floor else "–"
            rows.append(cold_row("%s (%s)" % (key, backend), cold.get(key), upd.get(key),
                                 floor_p50))
    return "\n".join(rows)


def targets_section(floor, by_backend):
    floor1 = floor.get(1)
    lines = []
    for backend, points in by_backend.items():
        c1 = points.get("provided.al2023", {}).get(1)
        if floor1 and c1:
            ratio = c1["latency_us"]["p50"] / floor1["latency_us"]["p50"]
            verdict = "**met**" if ratio <= WARM_P50_FACTOR else "**not met**"
            others = ", ".join("%s %.1f×" % (k, points[k][1]["latency_us"]["p50"]
                                             / floor1["latency_us"]["p50"])
                               for k, _ in RUNTIMES[1:] if 1 in points.get(k, {}))
            lines.append("- **%s** backend, warm-invoke p50 at 1 client within %.0f× the "
                         "loopback floor: C bootstrap %s µs vs floor %s µs = %.1f× — %s%s." % (
                             backend, WARM_P50_FACTOR, fmt(c1["latency_us"]["p50"]),
                             fmt(floor1["latency_us"]["p50"]), ratio, verdict,
                             " (%s, which add the runtime's own work)" % others if others else ""))
        else:
            lines.append("- **%s** backend, warm p50 at 1 client: not measured." % backend)
        c64 = points.get("provided.al2023", {}).get(64)
        if c64:
            rps = c64["throughput_rps"]
            verdict = ("**met**" if rps >= C_RPS_TARGET
                       else "**not met** (%.0f%% of the target)" % (100 * rps / C_RPS_TARGET))
            lines.append("- **%s** backend, ≥ %s invokes/s with 64 clients, C bootstrap: %s/s "
                         "— %s." % (backend, fmt(C_RPS_TARGET), fmt(rps), verdict))
        else:
            lines.append("- **%s** backend, invokes/s with 64 clients: not measured." % backend)
    return "\n".join(lines)


def jail_bench_section(results):
    text = read_text(results, "jail_bench.md")
    if text == "?" or "|" not in text:
        return ("Not measured in this run (`jail_bench` not built, the jail backend not "
                "benchmarked, or it failed: see jail_bench.err beside the raw results).")
    return text


def busy_warning(start, end):
    """A warning line when other work shared the CPU (1-minute load average > 1.5)."""
    try:
        peak = max(float(start.split()[0]), float(end.split()[0]))
    except (ValueError, IndexError):
        return ""
    if peak <= 1.5:
        return ""
    return ("\n**The machine was busy with other work during this run** (1-minute load "
            "average up to %.1f on 2 cores), so the numbers below are pessimistic and "
            "noisy; re-run on an idle machine for reference numbers.\n" % peak)


def unavailable_section(results, backends):
    lines = []
    for backend in backends:
        failure = os.path.join(results, backend, "start_failure.log")
        if os.path.exists(failure):
            lines.append("- the %s backend did not start: `%s`" % (
                backend, read_text(os.path.join(results, backend), "start_failure.log")
                .replace("\n", " / ")[:300]))
        functions = load(os.path.join(results, backend, "functions.json")) or {}
        for runtime, why in functions.get("unavailable", {}).items():
            lines.append("- %s (%s) could not be benchmarked: %s" % (runtime, backend, why))
    return "\n".join(lines) + "\n" if lines else "- none\n"


def main():
    ap = argparse.ArgumentParser()
    for flag in ("--results", "--backends", "--repo", "--out"):
        ap.add_argument(flag, required=True)
    ap.add_argument("--duration", type=float, required=True)
    ap.add_argument("--warmup", type=float, required=True)
    ap.add_argument("--notes")
    a = ap.parse_args()
    backends = a.backends.split()
    m = machine(a.repo)
    # The run's own record of when and what it measured wins over the present state.
    if os.path.exists(os.path.join(a.results, "commit.txt")):
        m["commit"] = read_text(a.results, "commit.txt").replace("\n", " ")
    if os.path.exists(os.path.join(a.results, "date.txt")):
        m["date"] = read_text(a.results, "date.txt")
    floor = load_points(a.results).get("floor", {})
    by_backend = {b: load_points(os.path.join(a.results, b)) for b in backends}
    concurrency = sorted(set(floor) | {c for p in by_backend.values() for t in p.values()
                                       for c in t})
    template = open(os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                 "report_template.md")).read()
    notes = ""
    if a.notes and os.path.exists(a.notes):
        notes = open(a.notes).read().strip() + "\n"
    doc = template.format(
        date=m["date"], commit=m["commit"], backends=", ".join(backends),
        headline=backends[0] if backends else "?", cpu=m["cpu"], cores=m["cores"],
        kernel=m["kernel"], memory=m["memory"], os=m["os"], nginx=m["nginx"],
        duration=fmt(a.duration, 0), warmup=fmt(a.warmup, 0), payload=PAYLOAD,
        targets=targets_section(floor, by_backend),
        warm=warm_table(floor, by_backend, concurrency),
        cold=cold_table(a.results, backends), spawn=spawn_table(a.results),
        unavailable=unavailable_section(a.results, backends),
        jail_bench=jail_bench_section(a.results),
        busy=busy_warning(read_text(a.results, "loadavg_start.txt"),
                          read_text(a.results, "loadavg_end.txt")),
        loadavg=read_text(a.results, "loadavg_start.txt"),
        loadavg_end=read_text(a.results, "loadavg_end.txt"),
        notes=notes)
    doc = doc.rstrip("\n") + "\n" + kept_sections(a.out, doc)
    with open(a.out, "w") as f:
        f.write(doc)


def kept_sections(path, doc):
    """Sections of the existing page that other benchmark scripts own (their "## "
    headings do not appear in this report): carried over unchanged."""
    if not os.path.exists(path):
        return ""
    ours = {line for line in doc.splitlines() if line.startswith("## ")}
    kept, current = [], None
    for line in open(path).read().splitlines():
        if line.startswith("## "):
            current = None if line in ours else []
            if current is not None:
                kept.append(current)
        if current is not None:
            current.append(line)
    return "".join("\n" + "\n".join(section).rstrip("\n") + "\n" for section in kept)


if __name__ == "__main__":
    main()
