"""Issue 3's "Attack it" list: hostile functions try to break out of the jail.

Every attack runs in a real python3.11 function and reports what it got (an errno name,
a count, a listing), so a test fails if the attack did not run at all. After each
attack the test checks containment: Kiln is alive, answers ListFunctions, and a canary
function still echoes correctly. Skipped with KILN_SANDBOX_BACKEND=process.
"""
import base64
import hashlib
import json
import os
import shutil
import socket
import threading
import time
import unittest
import uuid

import harness

ATTACK = r'''
import ctypes, errno, json, os, resource, shutil, socket, subprocess, sys, time, uuid

SANDBOX = uuid.uuid4().hex
COUNT = 0
MARKER = None
LIBC = ctypes.CDLL(None, use_errno=True)
LIBC.syscall.restype = ctypes.c_long


def err(e):
    if isinstance(e, OSError):
        return "%s:%s" % (type(e).__name__, errno.errorcode.get(e.errno, e.errno))
    return "%s:%s" % (type(e).__name__, e)


def attempt(fn):
    try:
        fn()
        return "ok"
    except Exception as e:  # every failure is an answer
        return err(e)


def rc(value):
    """A libc/syscall return: "ok" when it succeeded, else the errno name."""
    if value >= 0:
        return "ok"
    return "errno:%s" % errno.errorcode.get(ctypes.get_errno(), ctypes.get_errno())


def sysc(nr, *args):
    return rc(LIBC.syscall(ctypes.c_long(nr), *args))


def in_child(fn):
    """Runs fn() in a forked child (an attack that worked must not hurt the runtime)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            out = json.dumps(fn())
        except Exception as e:
            out = json.dumps({"child_error": err(e)})
        os.write(w, out.encode())
        os._exit(0)
    os.close(w)
    data = b""
    while True:
        chunk = os.read(r, 65536)
        if not chunk:
            break
        data += chunk
    os.close(r)
    os.waitpid(pid, 0)
    return json.loads(data)


def daemon(fn):
    """Double-forks fn() into a process that outlives the invocation; returns its pid."""
    r, w = os.pipe()
    if os.fork() == 0:
        os.setsid()
        pid = os.fork()
        if pid == 0:
            os.close(r)
            os.close(w)
            try:
                fn()
            finally:
                os._exit(0)
        os.write(w, str(pid).encode())
        os._exit(0)
    os.close(w)
    pid = int(os.read(r, 64))
    os.close(r)
    os.wait()
    return pid


def read_any(path, write=False):
    if write:
        with open(path, "w") as f:
            f.write("pwn")
        return
    if os.path.isdir(path):
        return os.listdir(path)
    with open(path, "rb") as f:
        return f.read(4096)


# ---------------------------------------------------------------- attacks

def snoop(event):
    needles = [n.encode() for n in event["needles"]]
    found, tried, files_read = [], 0, 0

    def check(path, data):
        for k, n in enumerate(needles):
            if n in data:
                found.append("%s#%d" % (path, k))

    def grab(path):
        nonlocal files_read
        try:
            if os.path.isdir(path):
                check(path, "\n".join(os.listdir(path)).encode())
            else:
                with open(path, "rb") as f:
                    check(path, f.read(1 << 20))
            files_read += 1
        except Exception:
            pass
    skip = {"/usr", "/proc", "/sys", "/dev", "/lib", "/lib32", "/lib64", "/bin", "/sbin"}
    for top, dirs, files in os.walk("/"):
        dirs[:] = [d for d in dirs if os.path.join(top, d) not in skip]
        for f in files:
            grab(os.path.join(top, f))
    pids = [p for p in os.listdir("/proc") if p.isdigit()]
    for p in pids + ["self", "thread-self"]:
        base = "/proc/%s" % p
        for sub in ("root/tmp", "root/var/task", "root/var/task/secret.txt", "cwd",
                    "environ", "cmdline", "maps", "mountinfo", "root/tmp/secret-a"):
            tried += 1
            grab(os.path.join(base, sub))
        try:
            for fd in os.listdir(base + "/fd"):
                tried += 1
                grab("%s/fd/%s" % (base, fd))
        except OSError:
            pass
    direct = {}
    for p in event["paths"]:
        for variant in (p, "/proc/1/root" + p, "/proc/self/root" + p,
                        "/proc/1/cwd/../../../../.." + p, "/var/task/../../.." + p):
            direct[variant] = attempt(lambda: check(variant, repr(read_any(variant)).encode()))
    return {"found": found, "files_read": files_read, "proc_paths_tried": tried,
            "direct": direct, "pids": pids}


def see_pids(event):
    own = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
    signalable, checked = [], 0
    for pid in event["host_pids"]:
        if pid in own:
            continue
        checked += 1
        try:
            os.kill(pid, 0)
            signalable.append(pid)
        except ProcessLookupError:
            pass
        except OSError as e:
            signalable.append("%d:%s" % (pid, err(e)))  # EPERM still means "it exists"
    cmdlines = {}
    for p in own:
        try:
            cmdlines[p] = open("/proc/%d/cmdline" % p, "rb").read().decode("utf-8", "replace")
        except OSError as e:
            cmdlines[p] = err(e)
    return {"proc_pids": own, "checked": checked, "signalable": signalable,
            "kiln_pid": attempt(lambda: os.kill(event["kiln_pid"], 0)).replace(
                "ProcessLookupError:", "errno:"),
            "cmdlines": cmdlines}


def ptrace_attacks():
    LIBC.ptrace.restype = ctypes.c_long
    LIBC.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
    victim = os.fork()
    if victim == 0:
        time.sleep(30)
        os._exit(0)
    out = {"attach_child": rc(LIBC.ptrace(16, victim, None, None)),        # PTRACE_ATTACH
           "seize_child": rc(LIBC.ptrace(0x4206, victim, None, None))}     # PTRACE_SEIZE
    buf = ctypes.create_string_buffer(8)
    local = (ctypes.c_void_p * 2)(ctypes.cast(buf, ctypes.c_void_p), 8)
    remote = (ctypes.c_void_p * 2)(ctypes.cast(buf, ctypes.c_void_p), 8)
    out["process_vm_readv"] = sysc(310, victim, local, 1, remote, 1, 0)
    out["traceme"] = in_child(lambda: rc(LIBC.ptrace(0, 0, None, None)))  # PTRACE_TRACEME
    os.kill(victim, 9)
    os.waitpid(victim, 0)
    return out


def mount_attacks():
    m = LIBC.mount
    out = {"mount_tmpfs": rc(m(b"none", b"/tmp", b"tmpfs", 0, None)),
           "remount_task_rw": rc(m(None, b"/var/task", None, 32 | 4096, None)),
           "bind_root": rc(m(b"/", b"/tmp", None, 4096 | 16384, None)),
           "umount_proc": rc(LIBC.umount2(b"/proc", 2)),
           "fsopen": sysc(430, b"tmpfs", 0),
           "open_tree": sysc(428, -100, b"/", 1),
           "unshare_user": rc(LIBC.unshare(0x10000000)),
           "unshare_mnt": rc(LIBC.unshare(0x00020000)),
           "chroot": rc(LIBC.chroot(b"/tmp")),
           "pivot_root": sysc(155, b"/tmp", b"/tmp")}
    fd = os.open("/proc/self/ns/mnt", os.O_RDONLY)
    out["setns_parent"] = rc(LIBC.setns(fd, 0))
    os.close(fd)
    binary = shutil.which("mount") or next((p for p in ("/usr/bin/mount", "/bin/mount")
                                            if os.path.exists(p)), None)
    if binary is None:
        out["mount_binary"] = "skip:no mount binary in the sandbox"
    else:
        p = subprocess.run([binary, "-t", "tmpfs", "none", "/tmp"], capture_output=True,
                           text=True)
        out["mount_binary"] = "ok" if p.returncode == 0 else "errno:exit=%d %s" % (
            p.returncode, p.stderr.strip()[:200])
    return out


def module_attacks():
    image = ctypes.create_string_buffer(b"\x7fELF" + b"\0" * 252)
    fd = os.open("/dev/null", os.O_RDONLY)
    out = {"init_module": sysc(175, image, 256, b""),
           "finit_module": sysc(313, fd, b"", 0),
           "delete_module": sysc(176, b"ext4", 0),
           "kexec_load": sysc(246, 0, 0, None, 0),
           "bpf": sysc(321, 5, None, 0),
           "perf_event_open": sysc(298, None, 0, -1, -1, 0),
           "userfaultfd": sysc(323, 0),
           "keyctl": sysc(250, 0, -3, 0)}
    os.close(fd)
    return out


def raw_sockets():
    out = {}
    for key, fam, typ, proto in (("inet_raw_icmp", socket.AF_INET, socket.SOCK_RAW, 1),
                                 ("inet_raw_raw", socket.AF_INET, socket.SOCK_RAW, 255),
                                 ("inet6_raw", socket.AF_INET6, socket.SOCK_RAW, 58),
                                 ("packet_raw", socket.AF_PACKET, socket.SOCK_RAW, 0x0300),
                                 ("packet_dgram", socket.AF_PACKET, socket.SOCK_DGRAM, 0x0300)):
        out[key] = attempt(lambda: socket.socket(fam, typ, proto).close())
    return out


def net(event):
    def tcp(host, port):
        fam = socket.AF_INET6 if ":" in host else socket.AF_INET
        s = socket.socket(fam, socket.SOCK_STREAM)
        s.settimeout(2)
        try:
            s.connect((host, port))
        finally:
            s.close()

    def unix():
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect("\0" + event["abstract"])
        finally:
            s.close()
    out = {"tcp_%d" % p: attempt(lambda: tcp("127.0.0.1", p)) for p in event["ports"]}
    kiln = event["ports"][0]
    out["ipv6_loopback_kiln"] = attempt(lambda: tcp("::1", kiln))
    out["v4mapped_kiln"] = attempt(lambda: tcp("::ffff:127.0.0.1", kiln))
    out["abstract_unix"] = attempt(unix)
    return out


def write_task():
    t = "/var/task"
    return {"create": attempt(lambda: read_any(t + "/pwn.py", write=True)),
            "overwrite": attempt(lambda: open(t + "/lambda_function.py", "r+").write("#")),
            "truncate": attempt(lambda: os.truncate(t + "/lambda_function.py", 0)),
            "unlink": attempt(lambda: os.unlink(t + "/lambda_function.py")),
            "rename": attempt(lambda: os.rename(t + "/lambda_function.py", t + "/moved.py")),
            "mkdir": attempt(lambda: os.mkdir(t + "/d")),
            "chmod": attempt(lambda: os.chmod(t + "/lambda_function.py", 0o777)),
            "utime": attempt(lambda: os.utime(t + "/lambda_function.py", (0, 0))),
            "symlink": attempt(lambda: os.symlink("/etc/passwd", t + "/l")),
            "runtime": attempt(lambda: read_any("/var/runtime/pwn", write=True)),
            "opt": attempt(lambda: read_any("/opt/pwn", write=True))}


def fork_bomb():
    n = 0
    while True:
        try:
            pid = os.fork()
        except OSError as e:
            print("FORK_REFUSED %s after %d forks" % (err(e), n), flush=True)
            break
        if pid == 0:  # each child forks once more, then becomes a small process
            try:
                os.fork()
            except OSError:
                pass
            os.execv("/bin/sleep", ["sleep", "120"])
        n += 1
    time.sleep(120)


def fill_tmp():
    chunk, written, files = b"k" * (4 << 20), 0, []
    error = None
    try:
        while True:
            path = "/tmp/fill-%d" % len(files)
            files.append(path)
            with open(path, "wb") as f:
                for _ in range(16):  # 64 MB a file, under RLIMIT_FSIZE
                    f.write(chunk)
                    f.flush()
                    written += len(chunk)
    except OSError as e:
        error = "errno:%s" % errno.errorcode.get(e.errno, e.errno)
    for p in files:
        try:
            os.unlink(p)
        except OSError:
            pass
    return {"error": error, "mb": written >> 20}


def fds():
    opened, error = [], None
    try:
        while len(opened) < 100000:
            opened.append(os.open("/dev/null", os.O_RDONLY))
    except OSError as e:
        error = "errno:%s" % errno.errorcode.get(e.errno, e.errno)
    for fd in opened:
        os.close(fd)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    raise_limit = attempt(lambda: resource.setrlimit(resource.RLIMIT_NOFILE,
                                                      (hard * 4, hard * 4)))
    return {"opened": len(opened), "error": error, "raise_limit": raise_limit,
            "limit": [soft, hard]}


def spy_loop():
    seen, rounds = set(), 0
    while rounds < 100000:
        rounds += 1
        for p in os.listdir("/proc"):
            if p.isdigit():
                for sub in ("cmdline", "environ"):
                    try:
                        seen.add(open("/proc/%s/%s" % (p, sub), "rb").read()[:300]
                                 .decode("utf-8", "replace"))
                    except OSError:
                        pass
                for sub in ("root/tmp", "cwd"):
                    try:
                        seen.update(os.listdir("/proc/%s/%s" % (p, sub)))
                    except OSError:
                        pass
        seen.update(os.listdir("/tmp"))
        for f in ("/proc/net/tcp", "/proc/net/unix"):
            try:
                seen.add(open(f).read()[:2000])
            except OSError:
                pass
        with open("/tmp/spy.tmp", "w") as f:
            json.dump({"rounds": rounds, "seen": sorted(seen)[:300]}, f)
        os.rename("/tmp/spy.tmp", "/tmp/spy.json")
        time.sleep(0.05)


def spy_start():
    pid = daemon(spy_loop)
    deadline = time.time() + 5
    while not os.path.exists("/tmp/spy.json") and time.time() < deadline:
        time.sleep(0.01)
    return {"spy_pid": pid, "uid_map": open("/proc/self/uid_map").read()}


def spy_report():
    with open("/tmp/spy.json") as f:
        return json.load(f)


def linger(event):
    def hold():
        os.chdir(event["cwd"])
        f = open(event["hold"])
        time.sleep(60)
        f.close()
    return daemon(hold)


def eat(mb):
    chunks = []
    for _ in range(mb):
        chunks.append(bytearray(1024 * 1024))
        chunks[-1][::4096] = b"x" * len(chunks[-1][::4096])
    return len(chunks)


def handler(event, context):
    global COUNT, MARKER
    COUNT += 1
    a = event.get("action")
    if a == "echo":
        return event.get("data")
    if a == "state":
        return {"sandbox": SANDBOX, "count": COUNT}
    if a == "mark":
        before = MARKER
        if "marker" in event:
            MARKER = event["marker"]
        return {"marker": before, "function": os.environ.get("AWS_LAMBDA_FUNCTION_NAME")}
    if a == "plant":
        with open(event["path"], "w") as f:
            f.write(event["data"])
        if event.get("linger"):
            subprocess.Popen(["/bin/sleep", "30", event["data"]], start_new_session=True,
                             env={"SECRET": event["data"]})
        return "planted"
    if a == "linger":
        return linger(event)
    if a == "snoop":
        return snoop(event)
    if a == "read_paths":
        return {p: attempt(lambda: read_any(p.split("!")[0], write=p.endswith("!w")))
                for p in event["paths"]}
    if a == "see_pids":
        return see_pids(event)
    if a == "ptrace":
        return ptrace_attacks()
    if a == "mount":
        return in_child(mount_attacks)
    if a == "modules":
        return in_child(module_attacks)
    if a == "raw_sockets":
        return raw_sockets()
    if a == "net":
        return net(event)
    if a == "write_task":
        return write_task()
    if a == "fork_bomb":
        return fork_bomb()
    if a == "eat":
        return eat(event["mb"])
    if a == "fill_tmp":
        return fill_tmp()
    if a == "fds":
        return fds()
    if a == "spy_start":
        return spy_start()
    if a == "spy_report":
        return spy_report()
    raise ValueError("unknown action %r" % a)
'''
HANDLER = "lambda_function.handler"
PIDS_MAX = 128  # processes and threads per sandbox on this test's server


def host_pids_with_uid(server, uid, zombies=False):
    """Host pids under `server`'s process whose real uid is `uid` (other Kiln servers on
    this host reuse the same uid range); zombies only if asked."""
    procs = {}
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open("/proc/%s/status" % p) as f:
                fields = dict(line.split(":", 1) for line in f if ":" in line)
            procs[int(p)] = (int(fields["PPid"]), int(fields["Uid"].split()[0]),
                             fields["State"].strip().startswith("Z"))
        except (OSError, KeyError, ValueError):
            continue

    def under_server(pid):
        for _ in range(64):
            if pid == server.proc.pid:
                return True
            if pid not in procs or pid <= 1:
                return False
            pid = procs[pid][0]
        return False
    return [pid for pid, (_, u, z) in procs.items()
            if u == uid and z == zombies and under_server(procs[pid][0])]


@unittest.skipUnless(harness.is_jailed(), "process backend has no isolation")
class AttackTest(harness.KilnTestCase):
    # A small pids limit, so the fork bomb hits it at once rather than racing Timeout.
    server_kwargs = {"extra_args": ["--sandbox-pids-max", str(PIDS_MAX)]}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.zip = harness.python_zip(ATTACK)
        cls.canary, _ = harness.KilnTestCase.create_function(cls, cls.zip, "python3.11", HANDLER)

    # ------------------------------------------------------------ helpers

    def call(self, name, event, tail=False):
        kw = {"LogType": "Tail"} if tail else {}
        resp = self.lam.invoke(FunctionName=name, Payload=json.dumps(event).encode(), **kw)
        out = json.loads(resp["Payload"].read() or b"null")
        return resp, out

    def attack(self, event, name=None, **create_kw):
        """Runs `event` in a fresh attacker function; returns its result (must succeed)."""
        if name is None:
            name, _ = self.create_function(self.zip, "python3.11", HANDLER, **create_kw)
        resp, out = self.call(name, event)
        self.assertNotIn("FunctionError", resp, "attack code itself failed: %r" % (out,))
        return out

    def assertContained(self):
        """Kiln alive and serving, and another function answers correctly."""
        self.assertServing()
        token = uuid.uuid4().hex
        resp, out = self.call(self.canary, {"action": "echo", "data": token})
        self.assertNotIn("FunctionError", resp, repr(out))
        self.assertEqual(out, token)

    def assertRefused(self, results, keys=None, errnos=None):
        """Each result is an errno/exception name, never "ok" (the attack ran: it has
        a concrete answer, not a missing key); with `errnos`, one of those names."""
        for k in keys or results:
            self.assertIn(k, results, "attack %s did not run: %r" % (k, results))
            v = results[k]
            self.assertIsInstance(v, str, "%s: %r" % (k, v))
            self.assertNotEqual(v, "ok", "ATTACK SUCCEEDED: %s (%r)" % (k, results))
            self.assertRegex(v, r"^(errno:|[A-Za-z]+Error:|skip:)", "%s: %r" % (k, v))
            if errnos is not None:
                self.assertIn(v.split(":")[1], errnos, "%s not refused by policy: %r"
                              % (k, results))

    # ------------------------------------------------------------ other tenants' files

    def test_other_functions_tmp_and_code_are_unreachable(self):
        secret_code, secret_tmp = "code-" + uuid.uuid4().hex, "tmp-" + uuid.uuid4().hex
        zip_a = harness.python_zip(ATTACK, extra={"secret.txt": secret_code})
        a, _ = self.create_function(zip_a, "python3.11", HANDLER)
        self.attack({"action": "plant", "path": "/tmp/secret-a", "data": secret_tmp}, name=a)
        # Held open by a lingering process of A, so /proc/<pid>/root,cwd,fd all exist.
        self.attack({"action": "linger", "cwd": "/tmp", "hold": "/tmp/secret-a"}, name=a)
        code_host = os.path.join(os.path.abspath(self.server.data_dir), "code",
                                 hashlib.sha256(zip_a).hexdigest())
        self.assertTrue(os.path.isfile(os.path.join(code_host, "secret.txt")),
                        "test assumes code lives at %s" % code_host)
        control = "control-" + uuid.uuid4().hex  # B's own file: proves the search works
        b, _ = self.create_function(self.zip, "python3.11", HANDLER)
        self.attack({"action": "plant", "path": "/tmp/control", "data": control}, name=b)
        out = self.attack({"action": "snoop", "needles": [secret_code, secret_tmp, control],
                           "paths": [code_host, os.path.join(code_host, "secret.txt"),
                                     os.path.abspath(self.server.data_dir), self.server.tmp]},
                          name=b)
        self.assertIn("/tmp/control#2", out["found"], "the snoop cannot find a planted file")
        out["found"] = [f for f in out["found"] if not f.endswith("#2")]
        self.assertGreater(out["files_read"], 5, "snoop read nothing: %r" % out)
        self.assertGreater(out["proc_paths_tried"], 3, repr(out))
        self.assertEqual(out["found"], [], "ATTACK SUCCEEDED: B read A's secrets: %r" % out)
        for p, v in out["direct"].items():
            self.assertNotEqual(v, "ok", "ATTACK SUCCEEDED: B reached %s" % p)
        dump = json.dumps(out)
        self.assertNotIn(secret_code, dump)
        self.assertNotIn(secret_tmp, dump)
        self.assertContained()

    # ------------------------------------------------------------ host files

    def test_shadow_and_kiln_data_dir_are_unreadable(self):
        data = os.path.abspath(self.server.data_dir)
        paths = ["/etc/shadow", "/etc/gshadow", "/root/.bash_history",
                 os.path.join(data, "kiln.db"), os.path.join(data, "credentials"),
                 data, "/proc/1/root" + data, "/proc/self/root" + data + "/kiln.db",
                 "/../../.." + data + "/credentials", "/sys/fs/cgroup", "/dev/vda",
                 "/proc/kcore", "/proc/sys/kernel/core_pattern!w", "/proc/sysrq-trigger!w",
                 "/dev/mem"]
        out = self.attack({"action": "read_paths", "paths": paths})
        self.assertEqual(len(out), len(paths), repr(out))
        self.assertRefused(out)
        with open(os.path.join(data, "credentials")) as f:
            self.assertNotIn("pwn", f.read())
        self.assertContained()

    def test_symlinks_in_the_zip_do_not_reach_host_files(self):
        import botocore.exceptions
        data = os.path.abspath(self.server.data_dir)
        link = 0o020777  # make_zip ORs in S_IFREG; with this it becomes S_IFLNK
        zip_bytes = harness.make_zip({"lambda_function.py": ATTACK, "hostdata": (data, link),
                                      "shadow": ("/etc/shadow", link),
                                      "up": ("../../../../../../..", link)})
        try:
            name, _ = self.create_function(zip_bytes, "python3.11", HANDLER)
        except botocore.exceptions.ClientError as e:  # refusing such a zip is fine too
            self.assertEqual(e.response["Error"]["Code"], "InvalidParameterValueException")
            self.assertContained()
            return
        out = self.attack({"action": "read_paths", "paths": [
            "/var/task/hostdata/kiln.db", "/var/task/hostdata/credentials", "/var/task/shadow",
            "/var/task/up" + data + "/credentials", "/var/task/hostdata!w"]}, name=name)
        self.assertRefused(out)
        self.assertContained()

    # ------------------------------------------------------------ host processes

    def test_host_processes_are_invisible_and_unsignalable(self):
        host = sorted({self.server.proc.pid, os.getpid(), os.getppid()} |
                      {int(p) for p in os.listdir("/proc") if p.isdigit()})
        out = self.attack({"action": "see_pids", "host_pids": host,
                           "kiln_pid": self.server.proc.pid})
        self.assertLess(len(out["proc_pids"]), 8, "host processes in /proc: %r" % out)
        self.assertGreater(out["checked"], 10, repr(out))
        self.assertEqual(out["signalable"], [], "ATTACK SUCCEEDED: host pids signalable")
        self.assertEqual(out["kiln_pid"], "errno:ESRCH", repr(out))
        self.assertNotIn("kiln", json.dumps(out["cmdlines"]), repr(out))
        self.assertContained()

    # ------------------------------------------------------------ kernel interfaces

    def test_ptrace_is_refused(self):
        out = self.attack({"action": "ptrace"})
        self.assertRefused(out, ["traceme", "attach_child", "seize_child",
                                 "process_vm_readv"], errnos=("EPERM",))
        self.assertContained()

    def test_mount_and_namespace_escapes_are_refused(self):
        out = self.attack({"action": "mount"})
        self.assertRefused(out, ["mount_tmpfs", "remount_task_rw", "bind_root", "umount_proc",
                                 "fsopen", "open_tree", "unshare_user", "unshare_mnt",
                                 "setns_parent", "chroot", "pivot_root"], errnos=("EPERM",))
        self.assertRefused(out, ["mount_binary"])
        self.assertContained()

    def test_kernel_module_load_is_refused(self):
        out = self.attack({"action": "modules"})
        self.assertRefused(out, ["init_module", "finit_module", "delete_module", "kexec_load",
                                 "bpf", "perf_event_open", "userfaultfd", "keyctl"],
                           errnos=("EPERM", "ENOSYS"))
        self.assertContained()

    def test_raw_and_packet_sockets_are_refused(self):
        out = self.attack({"action": "raw_sockets"})
        self.assertRefused(out, ["inet_raw_icmp", "inet_raw_raw", "inet6_raw",
                                 "packet_raw", "packet_dgram"],
                           errnos=("EPERM", "EACCES", "EAFNOSUPPORT"))
        self.assertContained()

    # ------------------------------------------------------------ host network

    def test_host_loopback_services_are_unreachable(self):
        tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        tcp.bind(("127.0.0.1", 0))
        tcp.listen(8)
        tcp.setblocking(False)
        abstract = "kiln-e2e-" + uuid.uuid4().hex
        ux = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        ux.bind("\0" + abstract)
        ux.listen(8)
        ux.setblocking(False)
        try:
            out = self.attack({"action": "net", "ports": [self.server.port,
                                                          tcp.getsockname()[1]],
                               "abstract": abstract})
            self.assertRefused(out)
            self.assertEqual(len(out), 5, repr(out))
            for s in (tcp, ux):
                with self.assertRaises(BlockingIOError, msg="a connection from the sandbox "
                                       "reached the host listener"):
                    s.accept()
        finally:
            tcp.close()
            ux.close()
        self.assertContained()

    # ------------------------------------------------------------ read-only code

    def test_var_task_and_runtime_are_read_only(self):
        name, _ = self.create_function(self.zip, "python3.11", HANDLER)
        code_host = os.path.join(os.path.abspath(self.server.data_dir), "code",
                                 hashlib.sha256(self.zip).hexdigest())
        def snapshot():
            files = {}
            for f in os.listdir(code_host):
                with open(os.path.join(code_host, f), "rb") as fh:
                    files[f] = (fh.read(), os.stat(fh.fileno()).st_mode)
            return files
        before = snapshot()
        out = self.attack({"action": "write_task"}, name=name)
        self.assertRefused(out)
        self.assertGreaterEqual(len(out), 8, repr(out))
        after = snapshot()
        self.assertEqual(before, after, "host copy of the code changed")
        self.assertEqual(self.attack({"action": "echo", "data": 1}, name=name), 1)
        self.assertContained()

    # ------------------------------------------------------------ resource exhaustion

    def test_fork_bomb_stays_inside_and_next_invoke_is_fresh(self):
        # The bomb hits PIDS_MAX within moments, then sleeps until Timeout ends the invoke:
        # Timeout only has to be long enough for PIDS_MAX forks on a loaded machine.
        name, _ = self.create_function(self.zip, "python3.11", HANDLER, Timeout=20,
                                       MemorySize=512)
        first = self.attack({"action": "state"}, name=name)
        results = {}

        def bomb():
            results["bomb"] = self.call(name, {"action": "fork_bomb"}, tail=True)
        t = threading.Thread(target=bomb)
        t.start()
        self.assertContained()  # while the bomb is going off, others are served
        t.join(90)
        self.assertFalse(t.is_alive(), "fork bomb invoke never returned")
        resp, out = results["bomb"]
        self.assertEqual(resp.get("FunctionError"), "Unhandled", repr(out))
        log = base64.b64decode(resp.get("LogResult", "")).decode("utf-8", "replace")
        self.assertIn("FORK_REFUSED", log, "bomb never hit a limit: %r %r" % (out, log[-800:]))
        after = self.attack({"action": "state"}, name=name)
        self.assertNotEqual(after["sandbox"], first["sandbox"], "bombed sandbox reused")
        self.assertEqual(after["count"], 1)
        self.assertContained()

    def test_memory_past_limit_fails_with_lambda_error_and_next_sandbox_is_fresh(self):
        name, _ = self.create_function(self.zip, "python3.11", HANDLER, MemorySize=128)
        self.attack({"action": "state"}, name=name)
        resp, out = self.call(name, {"action": "eat", "mb": 512})
        self.assertEqual(resp.get("FunctionError"), "Unhandled", "512 MB in 128 MB: %r" % out)
        self.assertIn(out.get("errorType"), ("Runtime.OutOfMemory", "Runtime.ExitError"), out)
        after = self.attack({"action": "state"}, name=name)
        self.assertEqual(after["count"], 1, "the OOM'd sandbox was reused: %r" % after)
        self.assertContained()

    def test_filling_tmp_gets_enospc_and_host_disk_is_untouched(self):
        name, _ = self.create_function(self.zip, "python3.11", HANDLER, MemorySize=1024,
                                       EphemeralStorage={"Size": 512}, Timeout=30)
        host_before = shutil.disk_usage("/tmp").used
        out = self.attack({"action": "fill_tmp"}, name=name)
        self.assertEqual(out["error"], "errno:ENOSPC", repr(out))
        self.assertGreater(out["mb"], 400, repr(out))
        self.assertLessEqual(out["mb"], 513, "/tmp grew past EphemeralStorage: %r" % out)
        self.assertLess(abs(shutil.disk_usage("/tmp").used - host_before), 256 * harness.MB,
                        "host disk usage moved with the sandbox's /tmp")
        self.assertContained()

    def test_fd_exhaustion_gets_emfile_and_kiln_is_fine(self):
        out = self.attack({"action": "fds"})
        self.assertEqual(out["error"], "errno:EMFILE", repr(out))
        self.assertGreater(out["opened"], 500, repr(out))
        self.assertLessEqual(out["opened"], 1024, repr(out))
        self.assertNotEqual(out["raise_limit"], "ok", "RLIMIT_NOFILE raised: %r" % out)
        self.assertContained()

    # ------------------------------------------------------------ tenancy

    def test_lingering_spy_sees_nothing_of_others_and_dies_with_its_sandbox(self):
        a, _ = self.create_function(self.zip, "python3.11", HANDLER)
        b, _ = self.create_function(self.zip, "python3.11", HANDLER)
        spy = self.attack({"action": "spy_start"}, name=a)
        host_uid = int(spy["uid_map"].split()[1])
        self.assertTrue(host_pids_with_uid(self.server, host_uid), "A's sandbox has no host process?")
        secret = "b-secret-" + uuid.uuid4().hex
        for _ in range(3):
            self.attack({"action": "plant", "path": "/tmp/b-" + secret, "data": secret,
                         "linger": True}, name=b)
        report = self.attack({"action": "spy_report"}, name=a)
        self.assertGreater(report["rounds"], 0, "the spy never ran: %r" % report)
        self.assertNotIn(secret, json.dumps(report), "ATTACK SUCCEEDED: spy saw B")
        # Destroy A's sandbox: a configuration change retires it. (The new configuration's
        # sandbox, initialized before the switch, runs under the same tenant uid: only
        # the processes that existed before the change must be gone.)
        old = set(host_pids_with_uid(self.server, host_uid))
        self.assertTrue(old, "the spy's sandbox has no processes to watch")
        self.lam.update_function_configuration(FunctionName=a,
                                               Environment={"Variables": {"VERSION": "2"}})
        harness.wait_active(self.lam, a)
        self.call(b, {"action": "echo", "data": 0})
        deadline = time.monotonic() + 10
        while old & set(host_pids_with_uid(self.server, host_uid)) and time.monotonic() < deadline:
            time.sleep(0.1)
        self.assertEqual(sorted(old & set(host_pids_with_uid(self.server, host_uid))), [],
                         "A's spy survived its sandbox (host uid %d)" % host_uid)
        self.assertContained()

    def test_destroyed_sandbox_leaves_no_zombie(self):
        name, _ = self.create_function(self.zip, "python3.11", HANDLER)
        host_uid = int(self.attack({"action": "spy_start"}, name=name)["uid_map"].split()[1])
        old = set(host_pids_with_uid(self.server, host_uid))
        self.assertTrue(old)
        self.lam.update_function_configuration(FunctionName=name,
                                               Environment={"Variables": {"VERSION": "2"}})
        harness.wait_active(self.lam, name)

        def left(zombies):
            return sorted(old & set(host_pids_with_uid(self.server, host_uid, zombies=zombies)))
        deadline = time.monotonic() + 5
        while (left(False) or left(True)) and time.monotonic() < deadline:
            time.sleep(0.1)
        self.assertEqual(left(False), [], "sandbox processes survived")
        self.assertEqual(left(True), [], "the retired sandbox's pid 1 was never reaped (zombie of kiln)")

    def test_sandbox_of_one_function_is_never_used_for_another(self):
        a, _ = self.create_function(self.zip, "python3.11", HANDLER)
        b, _ = self.create_function(self.zip, "python3.11", HANDLER)  # same code as A
        for _ in range(3):
            out = self.attack({"action": "mark", "marker": "A"}, name=a)
            self.assertEqual(out["function"], a)
            out = self.attack({"action": "mark"}, name=b)
            self.assertEqual(out["function"], b, "B ran with A's environment: %r" % out)
            self.assertIsNone(out["marker"], "B ran in A's sandbox: %r" % out)
        self.assertEqual(self.attack({"action": "mark"}, name=a)["marker"], "A",
                         "A's warm sandbox not reused: the test proves nothing")

    def test_old_code_never_answers_after_update_under_load(self):
        def version_zip(v):
            return harness.python_zip("def handler(e, c):\n    return %r\n" % v)
        name, _ = self.create_function(version_zip("v1"), "python3.11", HANDLER)
        seen, stop, errors = [], threading.Event(), []

        def wait_seen(v, after=0.0):
            """Until an invoke started after `after` answered `v` (the load keeps going)."""
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not errors:
                if any(out == v and started > after for started, out in list(seen)):
                    return
                time.sleep(0.05)
            self.fail("load never saw %s (errors %r)" % (v, errors[:3]))

        def load():
            lam = self.server.client()
            while not stop.is_set():
                started = time.monotonic()
                try:
                    r = lam.invoke(FunctionName=name, Payload=b"{}")
                    seen.append((started, json.loads(r["Payload"].read())))
                except Exception as e:  # noqa: BLE001 - recorded, asserted below
                    errors.append(repr(e))
        threads = [threading.Thread(target=load) for _ in range(4)]
        for t in threads:
            t.start()
        marks = []
        try:
            wait_seen("v1")
            for v in ("v2", "v3"):
                self.lam.update_function_code(FunctionName=name, ZipFile=version_zip(v))
                harness.wait_active(self.lam, name)
                marks.append((time.monotonic(), v))
                wait_seen(v, after=marks[-1][0])
        finally:
            stop.set()
            for t in threads:
                t.join(30)
        self.assertEqual(errors, [])
        for started, out in seen:
            current = "v1"
            for at, v in marks:
                if started > at:
                    current = v
            if current != "v1":
                self.assertIn(out, [v for v in ("v2", "v3") if v >= current],
                              "old code answered after the update to %s completed" % current)
        versions = {out for _, out in seen}
        self.assertEqual(versions & {"v1", "v3"}, {"v1", "v3"}, "load missed the updates")


if __name__ == "__main__":
    harness.main()
