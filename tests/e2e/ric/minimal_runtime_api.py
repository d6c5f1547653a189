"""A minimal Runtime API (2018-06-01) server, stdlib only, for checking a runtime client
without Kiln: it hands queued events to GET /runtime/invocation/next and records what the
runtime posts back.

  api = MinimalRuntimeApi().start()      # 127.0.0.1, free port; api.address "host:port"
  result = api.invoke(b'{"a": 1}')       # blocks until the runtime posts /response or
                                         # /error (or init/error); raises TimeoutError
  result.kind                            # "response" | "error" | "init_error"
  result.body, result.headers, result.request_id
  api.init_error(timeout)                # waits for POST /runtime/init/error
  api.requests                           # [(method, path)] in arrival order
  api.stop()

Not a model of Kiln: no deadlines, no concurrency checks beyond one invocation at a time.
Headers sent with each event follow Lambda: Lambda-Runtime-Aws-Request-Id,
-Deadline-Ms (epoch ms), -Invoked-Function-Arn, -Trace-Id.
"""
import http.server
import queue
import sys
import threading
import time
import uuid

PREFIX = "/2018-06-01/runtime"
FUNCTION_ARN = "arn:aws:lambda:us-east-1:123456789012:function:ric-check"


class Result:
    def __init__(self, kind, request_id, body, headers):
        self.kind, self.request_id, self.body, self.headers = kind, request_id, body, headers

    def header(self, name):
        return self.headers.get(name.lower())

    def __repr__(self):
        return "Result(%s, %s, %r)" % (self.kind, self.request_id, self.body[:300])


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        # A runtime killed by its test drops its connection; that is not an error here.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class MinimalRuntimeApi:
    def __init__(self, deadline_ms=30000):
        self.deadline_ms = deadline_ms
        self.requests = []                 # guarded by _lock
        self._lock = threading.Lock()
        self._events = queue.Queue()       # (request_id, payload) for /next
        self._results = queue.Queue()      # Result posted by the runtime
        self._stopping = threading.Event()
        self._server = None
        self._thread = None

    @property
    def address(self):
        host, port = self._server.server_address[:2]
        return "%s:%d" % (host, port)

    def start(self):
        api = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as Lambda's endpoint

            def log_message(self, *args):
                pass

            def do_GET(self):
                api._record("GET", self.path)
                if self.path != PREFIX + "/invocation/next":
                    return self._reply(404, b'{"errorType":"NotFound"}')
                while not api._stopping.is_set():
                    try:
                        request_id, payload = api._events.get(timeout=0.2)
                    except queue.Empty:
                        continue
                    deadline = int(time.time() * 1000) + api.deadline_ms
                    return self._reply(200, payload, {
                        "Lambda-Runtime-Aws-Request-Id": request_id,
                        "Lambda-Runtime-Deadline-Ms": str(deadline),
                        "Lambda-Runtime-Invoked-Function-Arn": FUNCTION_ARN,
                        "Lambda-Runtime-Trace-Id": "Root=1-00000000-000000000000000000000000",
                    })
                self.close_connection = True

            def do_POST(self):
                api._record("POST", self.path)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {k.lower(): v for k, v in self.headers.items()}
                parts = self.path[len(PREFIX):].strip("/").split("/")
                if parts == ["init", "error"]:
                    kind, request_id = "init_error", None
                elif len(parts) == 3 and parts[0] == "invocation" and parts[2] in ("response", "error"):
                    kind, request_id = parts[2], parts[1]
                else:
                    return self._reply(404, b'{"errorType":"NotFound"}')
                self._reply(202, b'{"status":"OK"}')
                api._results.put(Result(kind, request_id, body, headers))

            def _reply(self, status, body, headers=None):
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

        self._server = _Server(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def _record(self, method, path):
        with self._lock:
            self.requests.append((method, path))

    def invoke(self, payload, timeout=30):
        request_id = str(uuid.uuid4())
        self._events.put((request_id, payload))
        result = self._wait(timeout)
        if result.kind != "init_error" and result.request_id != request_id:
            raise AssertionError("runtime answered %s, expected %s" % (result.request_id, request_id))
        return result

    def init_error(self, timeout=30):
        return self._wait(timeout)

    def _wait(self, timeout):
        try:
            return self._results.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError("runtime posted nothing within %ss; requests: %r"
                               % (timeout, self.requests)) from None

    def stop(self):
        self._stopping.set()
        if self._server:
            self._server.shutdown()
            self._server.server_close()
