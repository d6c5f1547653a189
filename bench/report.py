"""Writes docs/benchmarks.md from the JSON results of one bench/run.sh run.

Usage: report.py --results DIR --backend NAME --repo REPO --duration S --warmup S
                 --out FILE [--notes FILE]
Reads from DIR: load_<target>_c<N>.json (kiln_loadgen), spawn_*.json (kiln_spawn_floor),
functions.json and cold.json (drive_functions.py). Missing files become "not measured"
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

TARGETS = [("floor", "nginx `return 200` (floor)"), ("provided.al2023", "Kiln, C bootstrap"),
           ("python3.11", "Kiln, python3.11"), ("nodejs20.x", "Kiln, nodejs20.x")]
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


def warm_table(points, concurrency):
    floor = points.get("floor", {})
    rows = ["| target | clients | invokes/s | p50 µs | p90 µs | p99 µs | max µs | errors "
            "| p50 ÷ floor p50 | rate ÷ floor rate |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for key, label in TARGETS:
        for c in concurrency:
            d = points.get(key, {}).get(c)
            if not d:
                rows.append("| %s | %d | not measured | | | | | | | |" % (label, c))
                continue
            lat = d["latency_us"]
            errors = d["non_2xx"] + d["function_errors"] + d["socket_errors"]
            f = floor.get(c)
            ratio = ("%.1f×" % (lat["p50"] / f["latency_us"]["p50"])
                     if f and key != "floor" and f["latency_us"]["p50"] else "")
            rate = ("%.2f" % (d["throughput_rps"] / f["throughput_rps"])
                    if f and key != "floor" and f["throughput_rps"] else "")
            rows.append("| %s | %d | %s | %s | %s | %s | %s | %d | %s | %s |" % (
                label, c, fmt(d["throughput_rps"]), fmt(lat["p50"]), fmt(lat["p90"]),
                fmt(lat["p99"]), fmt(lat["max"]), errors, ratio, rate))
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


def cold_table(results, functions):
    cold = load(os.path.join(results, "cold.json")) or {}
    rows = ["| runtime | cold invoke p50 ms | p90 ms | max ms | Init Duration p50 ms "
            "| warm invoke (same boto3 client) p50 ms | process-start floor p50 ms |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for key, label in TARGETS[1:]:
        d = cold.get(key)
        floor = load(os.path.join(results, RUNTIME_FLOOR[key] + ".json"))
        floor_p50 = fmt(floor["ms"]["p50"], 2) if floor else "–"
        if not d or "error" in d:
            why = (d or {}).get("error") or (functions.get("unavailable", {}).get(key)
                                             or "not measured")
            rows.append("| %s | %s | | | | | %s |" % (key, why.replace("|", "/"), floor_p50))
            continue
        c, i, w = d["cold_invoke_ms"], d["init_duration_ms"], d["warm_invoke_boto3_ms"]
        rows.append("| %s | %s | %s | %s | %s | %s | %s |" % (
            key, fmt(c["p50"], 1), fmt(c["p90"], 1), fmt(c["max"], 1),
            fmt(i["p50"], 1) if i else "not reported", fmt(w["p50"], 1), floor_p50))
    return "\n".join(rows)


def targets_section(points):
    floor1 = points.get("floor", {}).get(1)
    c1 = points.get("provided.al2023", {}).get(1)
    lines = []
    if floor1 and c1:
        ratio = c1["latency_us"]["p50"] / floor1["latency_us"]["p50"]
        verdict = "**met**" if ratio <= WARM_P50_FACTOR else "**not met**"
        lines.append("- Warm-invoke p50 at 1 client within %.0f× the loopback floor: C bootstrap "
                     "%s µs vs floor %s µs = %.1f× — %s." % (
                         WARM_P50_FACTOR, fmt(c1["latency_us"]["p50"]),
                         fmt(floor1["latency_us"]["p50"]), ratio, verdict))
        for key, label in TARGETS[2:]:
            d = points.get(key, {}).get(1)
            if d:
                lines.append("  (%s: %.1f× — the runtime's own per-invoke work counts here.)"
                             % (label, d["latency_us"]["p50"] / floor1["latency_us"]["p50"]))
    else:
        lines.append("- Warm-invoke p50 at 1 client within 3× the floor: not measured.")
    c64 = points.get("provided.al2023", {}).get(64)
    if c64:
        rps = c64["throughput_rps"]
        verdict = "**met**" if rps >= C_RPS_TARGET else "**not met** (%.0f%% of target)" % (
            100 * rps / C_RPS_TARGET)
        lines.append("- ≥ %s invokes/s with 64 clients, C bootstrap: %s/s — %s." % (
            fmt(C_RPS_TARGET), fmt(rps), verdict))
    else:
        lines.append("- ≥ 15,000 invokes/s with 64 clients (C bootstrap): not measured.")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser()
    for flag in ("--results", "--backend", "--repo", "--out"):
        ap.add_argument(flag, required=True)
    ap.add_argument("--duration", type=float, required=True)
    ap.add_argument("--warmup", type=float, required=True)
    ap.add_argument("--notes")
    a = ap.parse_args()
    m = machine(a.repo)
    points = load_points(a.results)
    concurrency = sorted({c for p in points.values() for c in p})
    functions = load(os.path.join(a.results, "functions.json")) or {}
    payload = functions.get("payload", "?")
    unavailable = functions.get("unavailable", {})
    template = open(os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                 "report_template.md")).read()
    notes = ""
    if a.notes and os.path.exists(a.notes):
        notes = open(a.notes).read().strip() + "\n"
    doc = template.format(
        date=m["date"], commit=m["commit"], backend=a.backend, cpu=m["cpu"], cores=m["cores"],
        kernel=m["kernel"], memory=m["memory"], os=m["os"], nginx=m["nginx"],
        duration=fmt(a.duration, 0), warmup=fmt(a.warmup, 0), payload=payload,
        targets=targets_section(points), warm=warm_table(points, concurrency),
        cold=cold_table(a.results, functions), spawn=spawn_table(a.results),
        unavailable="".join("- %s could not be benchmarked: %s\n" % kv
                            for kv in unavailable.items()) or "- none\n",
        loadavg=read_text(a.results, "loadavg_start.txt"),
        loadavg_end=read_text(a.results, "loadavg_end.txt"),
        notes=notes)
    with open(a.out, "w") as f:
        f.write(doc)


if __name__ == "__main__":
    main()
