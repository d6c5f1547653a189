"""Harness for Kiln's end-to-end tests: a real `kiln serve` driven by real clients.

Contract (used by every tests/e2e/**/test_*.py, including tests/e2e/ric/):

  server = KilnServer()            # temp data dir, free port, fixed root key
  server.start()                   # returns when the port accepts (raises if it dies)
  lam = server.client()            # boto3 'lambda' client: endpoint, region, keys,
                                   # retries off, read_timeout on every call
  server.stop()                    # SIGTERM, waits for a clean exit; returns exit code
  server.kill9(); server.start()   # crash and restart on the same data dir and port
  server.cleanup()                 # stop + remove the temp dir (unless KILN_E2E_KEEP=1)

  KilnTestCase                     # unittest base: one server per test class,
                                   # self.server, self.lam, self.create_function(...)

  python_zip(source), node_zip(source), provided_zip(bootstrap_source),
  c_bootstrap_zip(), make_zip({name: bytes | (bytes, mode)})
  run_cli(version, args, env)      # version 1 = pip awscli, 2 = /usr/bin/aws
  signed_request(server, method, path, body, headers)  # raw SigV4-signed HTTP
  wait_until(condition, what, timeout)  # polls; raises AssertionError naming `what`
  sandboxes(server, function)      # `kiln sandboxes --json`: the live sandboxes

Environment: KILN_BINARY (default /work/main/build/kiln, then ../../build/kiln),
KILN_C_BOOTSTRAP (the static echo bootstrap built by target c_bootstrap),
KILN_SANDBOX_BACKEND (jail|process; passed as --sandbox-backend when set),
KILN_E2E_KEEP=1 keeps temp dirs and server logs for inspection.
"""
import base64
import hashlib
import http.client
import io
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import uuid
import zipfile

import boto3
import botocore.auth
import botocore.awsrequest
import botocore.config
import botocore.credentials

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
REGION = "us-east-1"
ROLE = "arn:aws:iam::123456789012:role/kiln-e2e-role"
TEST_ACCESS_KEY = "AKIAKILNE2ETESTKEY01"
TEST_SECRET_KEY = "kilnE2eSecretKey/0123456789abcdefghijKLMN"
PYENV_PYTHON = "/root/.pyenv/versions/3.11.7/bin/python3"
MB = 1024 * 1024


def kiln_binary():
    """KILN_BINARY if set (it must exist), else the usual build locations."""
    explicit = os.environ.get("KILN_BINARY")
    candidates = [explicit] if explicit else ["/work/main/build/kiln",
                                              os.path.join(REPO, "build", "kiln")]
    for c in candidates:
        if c and os.path.isfile(c) and os.access(c, os.X_OK):
            return c
    raise RuntimeError("kiln binary not found (set KILN_BINARY); tried %r" % candidates)


def sandbox_backend():
    return os.environ.get("KILN_SANDBOX_BACKEND") or None


def is_jailed():
    """True unless the tests run against the unisolated process backend."""
    return sandbox_backend() != "process"


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_accepts(port, timeout=0.2):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout):
            return True
    except OSError:
        return False


class KilnServer:
    """One `kiln serve` process on a free port with its own data dir.

    keys=(akid, secret) sets KILN_ACCESS_KEY_ID/KILN_SECRET_ACCESS_KEY; keys=None lets
    the server generate a key into DATA_DIR/credentials (read it with file_keys()).
    """

    def __init__(self, keys=(TEST_ACCESS_KEY, TEST_SECRET_KEY), extra_args=(),
                 idle_seconds=None, backend=None, data_dir=None, nofile=None):
        self.tmp = tempfile.mkdtemp(prefix="kiln-e2e-")
        self.data_dir = data_dir or os.path.join(self.tmp, "data")
        self.log_path = os.path.join(self.tmp, "server.log")
        self.keys = keys
        self.port = free_port()
        self.extra_args = list(extra_args)
        if idle_seconds is not None:
            self.extra_args += ["--sandbox-idle-seconds", str(idle_seconds)]
        backend = backend or sandbox_backend()
        if backend:
            self.extra_args += ["--sandbox-backend", backend]
        self.nofile = nofile  # (soft, hard) RLIMIT_NOFILE to start kiln under, via prlimit
        self.proc = None
        self._log = None

    @property
    def endpoint(self):
        return "http://127.0.0.1:%d" % self.port

    def command(self):
        limit = ["prlimit", "--nofile=%d:%d" % self.nofile, "--"] if self.nofile else []
        return limit + [kiln_binary(), "serve", "--listen", "127.0.0.1:%d" % self.port,
                        "--data-dir", self.data_dir, "--region", REGION] + self.extra_args

    def start(self, timeout=20):
        assert self.proc is None or self.proc.poll() is not None, "already running"
        env = dict(os.environ)
        env.pop("KILN_ACCESS_KEY_ID", None)
        env.pop("KILN_SECRET_ACCESS_KEY", None)
        if self.keys:
            env["KILN_ACCESS_KEY_ID"], env["KILN_SECRET_ACCESS_KEY"] = self.keys
        self._log = open(self.log_path, "ab")
        self._log.write(("\n=== start %s\n" % " ".join(self.command())).encode())
        self._log.flush()
        self.proc = subprocess.Popen(self.command(), env=env, stdout=self._log,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("kiln serve exited with %s during start-up:\n%s"
                                   % (self.proc.returncode, self.log_tail()))
            if port_accepts(self.port):
                return self
            time.sleep(0.02)
        self.kill9()
        raise RuntimeError("kiln serve did not accept on port %d within %ss:\n%s"
                           % (self.port, timeout, self.log_tail()))

    def stop(self, timeout=10):
        """SIGTERM and wait; returns the exit code (raises if it does not exit)."""
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill9()
            raise RuntimeError("kiln serve ignored SIGTERM for %ss" % timeout)
        self._reap_group()
        return rc

    def kill9(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self._reap_group()

    def _reap_group(self):
        # Sandboxes may outlive a killed server in its session; kill that group only.
        if self.proc is not None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        if self._log:
            self._log.close()
            self._log = None

    def restart(self):
        self.stop()
        return self.start()

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def cleanup(self):
        try:
            self.stop()
        except RuntimeError:
            self.kill9()
        if os.environ.get("KILN_E2E_KEEP") != "1":
            shutil.rmtree(self.tmp, ignore_errors=True)

    def log_tail(self, n=4000):
        try:
            with open(self.log_path, "rb") as f:
                return f.read()[-n:].decode("utf-8", "replace")
        except OSError:
            return "(no log)"

    def credentials_path(self):
        return os.path.join(self.data_dir, "credentials")

    def file_keys(self, profile="kiln"):
        import configparser
        cp = configparser.ConfigParser()
        cp.read(self.credentials_path())
        return cp[profile]["aws_access_key_id"], cp[profile]["aws_secret_access_key"]

    def client(self, service="lambda", keys=None, region=REGION, read_timeout=60,
               validate=True, **config):
        akid, secret = keys or self.keys or self.file_keys()
        cfg = botocore.config.Config(
            retries={"total_max_attempts": 1}, read_timeout=read_timeout,
            connect_timeout=5, parameter_validation=validate, **config)
        session = boto3.session.Session(aws_access_key_id=akid,
                                        aws_secret_access_key=secret,
                                        region_name=region)
        return session.client(service, endpoint_url=self.endpoint, config=cfg)


# ---------------------------------------------------------------- raw HTTP

class RawResponse:
    def __init__(self, status, headers, body):
        self.status, self.headers, self.body = status, headers, body

    def header(self, name):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    def json(self):
        import json
        return json.loads(self.body)

    def __repr__(self):
        return "HTTP %d %r %r" % (self.status, self.headers, self.body[:500])


def raw_request(server, method, path, body=b"", headers=None, timeout=30):
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        return RawResponse(r.status, r.getheaders(), r.read())
    finally:
        conn.close()


def sign(server, method, path, body=b"", headers=None, keys=None, region=REGION,
         service="lambda", date=None):
    """Headers for `method path` signed with botocore's own SigV4 signer."""
    akid, secret = keys or server.keys or server.file_keys()
    req = botocore.awsrequest.AWSRequest(method=method, url=server.endpoint + path,
                                         data=body, headers=dict(headers or {}))
    auth = botocore.auth.SigV4Auth(botocore.credentials.Credentials(akid, secret),
                                   service, region)
    if date is not None:  # sign as of another time (expiry tests)
        import datetime
        import unittest.mock
        fixed = datetime.datetime.fromtimestamp(date, datetime.timezone.utc).replace(tzinfo=None)
        with unittest.mock.patch("botocore.auth.get_current_datetime", return_value=fixed):
            auth.add_auth(req)
    else:
        auth.add_auth(req)
    return dict(req.headers.items())


def signed_request(server, method, path, body=b"", headers=None, **kw):
    if isinstance(body, str):
        body = body.encode()
    timeout = kw.pop("timeout", 30)
    return raw_request(server, method, path, body, sign(server, method, path, body,
                                                         headers, **kw), timeout=timeout)


# ---------------------------------------------------------------- zips

def make_zip(files):
    """files: {name: bytes|str|(bytes|str, mode)} -> zip bytes (deflated)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, content in files.items():
            mode = 0o644
            if isinstance(content, tuple):
                content, mode = content
            if isinstance(content, str):
                content = content.encode()
            info = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
            info.external_attr = (0o100000 | mode) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, content)
    return buf.getvalue()


def code_sha256(zip_bytes):
    return base64.b64encode(hashlib.sha256(zip_bytes).digest()).decode()


def python_zip(source, module="lambda_function", extra=None):
    files = {module + ".py": source}
    files.update(extra or {})
    return make_zip(files)


def node_zip(source, filename="index.js", extra=None):
    files = {filename: source}
    files.update(extra or {})
    return make_zip(files)


def provided_zip(bootstrap_source, extra=None):
    files = {"bootstrap": (bootstrap_source, 0o755)}
    files.update(extra or {})
    return make_zip(files)


def c_bootstrap_path():
    """KILN_C_BOOTSTRAP if set (it must exist), else the lead's build, else None."""
    explicit = os.environ.get("KILN_C_BOOTSTRAP")
    if explicit:
        if not os.path.isfile(explicit):
            raise AssertionError("KILN_C_BOOTSTRAP=%s does not exist: build target "
                                 "c_bootstrap" % explicit)
        return explicit
    for c in ("/work/main/build/fixtures/c_bootstrap/bootstrap",
              os.path.join(REPO, "build", "fixtures", "c_bootstrap", "bootstrap")):
        if os.path.isfile(c):
            return c
    return None


def c_bootstrap_zip():
    path = c_bootstrap_path()
    if path is None:
        raise unittest.SkipTest("C echo bootstrap not built (set KILN_C_BOOTSTRAP; "
                                "CMake target c_bootstrap)")
    with open(path, "rb") as f:
        return make_zip({"bootstrap": (f.read(), 0o755)})


# ---------------------------------------------------------------- functions

def unique_name(prefix="fn"):
    return "%s-%s" % (prefix, uuid.uuid4().hex[:10])


def wait_active(lam, name, timeout=30):
    deadline = time.monotonic() + timeout
    while True:
        cfg = lam.get_function_configuration(FunctionName=name)
        state = cfg.get("State", "Active")
        if state == "Active" and cfg.get("LastUpdateStatus", "Successful") != "InProgress":
            return cfg
        if state == "Failed" or time.monotonic() > deadline:
            raise AssertionError("function %s not Active: %r" % (name, cfg))
        time.sleep(0.05)


def wait_until(condition, what, timeout=60, interval=0.05):
    """Polls `condition` until it returns a true value (returned); fails after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("%s: not within %s s" % (what, timeout))
        time.sleep(interval)


def sandboxes(server, function=None):
    """The server's live sandboxes (of `function`), as `kiln sandboxes --json` lists them."""
    import json
    env = {k: v for k, v in os.environ.items() if not k.startswith("KILN_")}
    if server.keys:
        env["KILN_ACCESS_KEY_ID"], env["KILN_SECRET_ACCESS_KEY"] = server.keys
    cmd = [kiln_binary(), "sandboxes", "--data-dir", server.data_dir, "--endpoint-url", server.endpoint, "--json"]
    if function:
        cmd += ["--function", function]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=30)
    if out.returncode != 0:
        raise AssertionError("kiln sandboxes failed: %s" % out.stderr)
    return json.loads(out.stdout)["Sandboxes"]


def create_function(lam, name, zip_bytes, runtime, handler, wait=True, **kw):
    kw.setdefault("Role", ROLE)
    resp = lam.create_function(FunctionName=name, Runtime=runtime, Handler=handler,
                               Code={"ZipFile": zip_bytes}, **kw)
    if wait:
        wait_active(lam, name)
    return resp


def arn_account(arn):
    return arn.split(":")[4]


# ---------------------------------------------------------------- AWS CLI

def cli_command(version):
    if version == 1:
        for py in (PYENV_PYTHON, sys.executable, "python3"):
            if py and subprocess.run([py, "-c", "import awscli"], capture_output=True).returncode == 0:
                return [py, "-m", "awscli"]
        raise unittest.SkipTest("AWS CLI v1 (pip awscli) not importable")
    path = "/usr/bin/aws"
    if not os.path.exists(path):
        raise unittest.SkipTest("/usr/bin/aws (AWS CLI v2) missing")
    out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=30)
    if not (out.stdout + out.stderr).startswith("aws-cli/2."):
        raise AssertionError("/usr/bin/aws is not AWS CLI v2: %r" % (out.stdout + out.stderr))
    return [path]


def clean_cli_env(home):
    """An environment with no AWS settings of the host: HOME is an empty dir."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["HOME"] = home
    env["AWS_PAGER"] = ""
    env["AWS_CONFIG_FILE"] = os.path.join(home, "no-config")
    env["AWS_EC2_METADATA_DISABLED"] = "true"
    return env


def run_cli(version, args, env, timeout=90, cwd=None):
    return subprocess.run(cli_command(version) + list(args), env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=timeout)


# ---------------------------------------------------------------- unittest base

class KilnTestCase(unittest.TestCase):
    """One server per test class; subclasses may set server_kwargs."""
    server_kwargs = {}
    maxDiff = 4000

    @classmethod
    def setUpClass(cls):
        cls.server = KilnServer(**cls.server_kwargs)
        try:
            cls.server.start()
        except Exception:
            cls.server.cleanup()
            raise
        cls.lam = cls.server.client()

    @classmethod
    def tearDownClass(cls):
        if getattr(cls, "_failed", False):  # show the server's side of the failure
            sys.stderr.write("\n--- kiln serve log (%s), last 6000 bytes ---\n%s\n---\n"
                             % (cls.server.log_path, cls.server.log_tail(6000)))
        cls.server.cleanup()

    def run(self, result=None):
        before = len(result.failures) + len(result.errors) if result else 0
        out = super().run(result)
        if result is not None and len(result.failures) + len(result.errors) > before:
            self.__class__._failed = True
        return out

    def create_function(self, zip_bytes, runtime, handler, name=None, **kw):
        name = name or unique_name(self.__class__.__name__.lower()[:20])
        resp = create_function(self.lam, name, zip_bytes, runtime, handler, **kw)
        return name, resp

    def assertClientError(self, fn, codes, status=None, msg_contains=None):
        """fn() raises ClientError whose code is in `codes`; returns the error."""
        import botocore.exceptions
        if isinstance(codes, str):
            codes = (codes,)
        with self.assertRaises(botocore.exceptions.ClientError) as cm:
            fn()
        err = cm.exception.response
        code = err.get("Error", {}).get("Code")
        self.assertIn(code, codes, "wrong error: %r" % (err,))
        if status is not None:
            self.assertEqual(err["ResponseMetadata"]["HTTPStatusCode"], status, repr(err))
        if msg_contains is not None:
            self.assertIn(msg_contains, err.get("Error", {}).get("Message", ""), repr(err))
        return cm.exception

    def assertServing(self):
        """The server is alive and answers a signed ListFunctions."""
        self.assertTrue(self.server.running(), "server died:\n" + self.server.log_tail())
        self.lam.list_functions(MaxItems=1)


def main():
    unittest.main(verbosity=2)
