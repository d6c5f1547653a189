"""Issue 10, "Tenants starving each other or the host": attacks on the jail from inside a
function, and Kiln's own limits.

- address families: only unix and inet sockets open (AF_VSOCK's ports are VM-wide);
- locks on files shared with the host or other tenants (/var/task shared by content,
  /etc, /usr) never block them;
- the mount table inside names no host path (data dir, build or source dir, runtimes);
- sandboxes die with Kiln (kill -9), and the next start on the same data directory
  leaves no cgroup of the old one;
- Kiln raises its soft RLIMIT_NOFILE to the hard limit.

Every wait is for a condition, with a generous bound. Each server here is this file's
own: the tests touch no process or cgroup of another server.
"""
import json
import os
import resource
import signal
import time
import unittest

import harness
from harness import KilnServer, KilnTestCase, python_zip, unique_name

PROBE = r'''
import ctypes, fcntl, json, os, time

held = []
libc = ctypes.CDLL(None, use_errno=True)
SHARED = ["/var/task/lambda_function.py", "/etc/passwd", "/usr/bin/env"]


def opened(fd):
    if fd < 0:
        return ctypes.get_errno()
    os.close(fd)
    return "open"


def handler(event, context):
    what = event["what"]
    if what == "families":
        # AF_VSOCK, AF_PACKET, AF_ALG, AF_NETLINK, AF_XDP, AF_TIPC, AF_UNIX, AF_INET, AF_INET6
        return {str(f): opened(libc.socket(f, t, 0))
                for f, t in [(40, 1), (17, 2), (38, 5), (16, 2), (44, 2), (30, 2), (1, 1), (2, 1), (10, 1)]}
    if what == "mounts":
        return "".join(open(p).read() for p in ("/proc/self/mountinfo", "/proc/1/mountinfo", "/proc/self/mounts"))
    if what == "hold":  # the sandbox stays warm, holding the locks
        for name in SHARED:
            f = open(name)
            fcntl.flock(f, fcntl.LOCK_EX)
            held.append(f)
        return "held"
    if what == "try":
        out = {}
        for name in SHARED:
            try:
                fcntl.flock(open(name), fcntl.LOCK_EX | fcntl.LOCK_NB)
                out[name] = "free"
            except OSError as e:
                out[name] = e.errno
        return out
    if what == "sleep":
        time.sleep(event["seconds"])
        return "slept"
'''


def invoke(lam, name, event):
    r = lam.invoke(FunctionName=name, Payload=json.dumps(event).encode())
    body = r["Payload"].read()
    if "FunctionError" in r:
        raise AssertionError("function error: %s" % body)
    return json.loads(body)


@unittest.skipUnless(harness.is_jailed(), "attacks on the jail")
class SandboxViewTest(KilnTestCase):
    def test_only_unix_and_inet_sockets_open(self):
        name, _ = self.create_function(python_zip(PROBE), "python3.11", "lambda_function.handler")
        got = invoke(self.lam, name, {"what": "families"})
        for fam in ("40", "17", "38", "16", "44", "30"):
            self.assertEqual(got[fam], 97, "family %s: %r" % (fam, got))  # EAFNOSUPPORT
        for fam in ("1", "2", "10"):
            self.assertEqual(got[fam], "open", got)

    def test_mount_table_names_no_host_path(self):
        layer = self.lam.publish_layer_version(
            LayerName=unique_name("layer"), Content={"ZipFile": python_zip("X = 1\n", module="python/lib")})
        name, _ = self.create_function(python_zip(PROBE), "python3.11", "lambda_function.handler",
                                       Layers=[layer["LayerVersionArn"]])
        table = invoke(self.lam, name, {"what": "mounts"})
        self.assertIn(" /var/task ", table)
        self.assertIn(" /opt ", table)
        binary = harness.kiln_binary()
        hosts = {"data dir": self.server.data_dir, "test dir": self.server.tmp,
                 "source dir": harness.REPO, "build dir": os.path.dirname(os.path.abspath(binary)),
                 "real data dir": os.path.realpath(self.server.data_dir)}
        for what, path in hosts.items():
            self.assertNotIn(path, table, "%s %s shows inside:\n%s" % (what, path, table))

    def test_locks_on_shared_files_block_neither_the_host_nor_other_tenants(self):
        code = python_zip(PROBE)  # one zip, two functions: the code is shared by content
        holder, _ = self.create_function(code, "python3.11", "lambda_function.handler")
        other, _ = self.create_function(code, "python3.11", "lambda_function.handler")
        self.assertEqual(invoke(self.lam, holder, {"what": "hold"}), "held")
        got = invoke(self.lam, other, {"what": "try"})
        self.assertEqual(set(got.values()), {"free"}, got)
        # The host's copies: the stored code (every copy of it), the skeleton's passwd, /usr.
        host_files = ["/usr/bin/env"]
        for root, _, files in os.walk(self.server.data_dir):
            host_files += [os.path.join(root, f) for f in files
                           if f == "lambda_function.py" or (f == "passwd" and root.endswith("/etc"))]
        self.assertGreater(len(host_files), 2, host_files)
        import fcntl
        for path in host_files:
            with open(path) as f:
                try:
                    fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError as e:
                    self.fail("the host waits for a sandbox's lock on %s: %s" % (path, e))


def processes_with_env(entry):
    """Pids of host processes whose environment holds entry (bytes, e.g. b"K=V")."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/environ" % pid, "rb") as f:
                if entry in f.read().split(b"\0"):
                    found.append(int(pid))
        except OSError:
            pass
    return found


def alive(pid):
    """True while pid exists and is not a zombie."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def cgroup_dirs(pid):
    """The host cgroup directories of pid (v1 hierarchies and v2)."""
    dirs = []
    with open("/proc/%d/cgroup" % pid) as f:
        for line in f:
            _, controllers, path = line.rstrip("\n").split(":", 2)
            if controllers in ("memory", "pids"):
                dirs.append("/sys/fs/cgroup/%s%s" % (controllers, path))
            elif controllers == "" and os.path.exists("/sys/fs/cgroup/cgroup.controllers"):
                dirs.append("/sys/fs/cgroup%s" % path)
    return dirs


def wait_for(condition, timeout, step=0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(step)
    return condition()


@unittest.skipUnless(harness.is_jailed(), "jail sandboxes and their cgroups")
class KilnDeathTest(unittest.TestCase):
    def test_sandboxes_die_with_kiln_and_the_next_start_removes_their_cgroups(self):
        server = KilnServer()
        survivors = []
        try:
            server.start()
            lam = server.client()
            name = unique_name("sleeper")
            harness.create_function(lam, name, python_zip(PROBE), "python3.11",
                                    "lambda_function.handler", Timeout=900)
            lam.invoke(FunctionName=name, InvocationType="Event",
                       Payload=json.dumps({"what": "sleep", "seconds": 600}).encode())
            marker = ("AWS_LAMBDA_FUNCTION_NAME=%s" % name).encode()
            self.assertTrue(wait_for(lambda: processes_with_env(marker), 60),
                            "the sleeping sandbox never started:\n" + server.log_tail())
            survivors = processes_with_env(marker)
            cgroups = sorted({d for pid in survivors for d in cgroup_dirs(pid)})
            self.assertTrue(cgroups and all(os.path.isdir(d) for d in cgroups), cgroups)

            # kill -9 Kiln alone (not its process group, as harness.kill9() would).
            os.kill(server.proc.pid, signal.SIGKILL)
            server.proc.wait(timeout=30)
            self.assertTrue(wait_for(lambda: not any(alive(p) for p in survivors), 30),
                            "sandbox processes outlived Kiln: %r" % [p for p in survivors if alive(p)])

            server.start()  # the same data directory
            left = [d for d in cgroups if os.path.exists(d)]
            self.assertEqual(left, [], "cgroups of the killed Kiln remain after the next start")
            server.client().get_function(FunctionName=name)  # and it serves
        finally:
            for pid in survivors:  # never leave a failed run's sandbox behind
                if alive(pid):
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except OSError:
                        pass
            server.cleanup()


HARD_NOFILE = resource.getrlimit(resource.RLIMIT_NOFILE)[1]


class OpenFilesLimitTest(unittest.TestCase):
    @unittest.skipIf(HARD_NOFILE <= 1024, "the hard open files limit is 1,024 here")
    def test_kiln_raises_its_soft_open_files_limit_to_the_hard_limit(self):
        server = KilnServer(nofile=(1024, HARD_NOFILE))  # a service manager's soft limit
        try:
            server.start()
            with open("/proc/%d/limits" % server.proc.pid) as f:
                line = next(l for l in f if l.startswith("Max open files"))
            self.assertEqual(line.split()[3:5], [str(HARD_NOFILE)] * 2, line)
        finally:
            server.cleanup()


if __name__ == "__main__":
    harness.main()
