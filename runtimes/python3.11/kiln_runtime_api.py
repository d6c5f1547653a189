"""Keep-alive HTTP/1.1 client for the Lambda Runtime API (2018-06-01).

Contract: one RuntimeAPIClient per runtime process, used from one thread. Every call
reuses one TCP connection; if the server closed it while idle, the call reconnects once.
Bodies are bytes-like; responses may use Content-Length or chunked encoding.

Written over _socket rather than http.client on purpose: http.client (with email.parser)
costs ~14 ms of imports at every cold start and about twice the per-request time on a
warm invoke, and the Runtime API needs only a sliver of HTTP (one request at a time, no
redirects, no proxies, no TLS).
"""

import _socket

_PREFIX = "/2018-06-01/runtime"
_RECV_SIZE = 65536


class RuntimeAPIError(Exception):
    """The Runtime API is unreachable or answered something unusable."""


class _IdleConnectionClosed(Exception):
    """The server closed the connection before answering a single byte."""


class RuntimeAPIClient:
    def __init__(self, address):
        """address: AWS_LAMBDA_RUNTIME_API, "host:port" or "[v6]:port"."""
        host, sep, port = address.rpartition(":")
        if not sep or not port.isdigit() or not host:
            raise RuntimeAPIError("bad AWS_LAMBDA_RUNTIME_API %r" % (address,))
        host = host.strip("[]")
        if host == "localhost":
            host = "127.0.0.1"
        self._family = _socket.AF_INET6 if ":" in host else _socket.AF_INET
        self._peer = (host, int(port))
        self._host_line = ("Host: %s\r\n" % address).encode("latin-1")
        self._sock = None
        self._pending = b""  # bytes received past the end of the last response

    # --- the Runtime API -------------------------------------------------------------

    def next_invocation(self):
        """Long-polls for the next event. Returns (headers, body); header names are
        lower-case. Raises RuntimeAPIError on anything but 200."""
        status, headers, body = self._request(
            b"GET " + _PREFIX.encode() + b"/invocation/next HTTP/1.1\r\n", b"", b"")
        if status != 200:
            raise RuntimeAPIError("GET /invocation/next answered %d: %r" % (status, bytes(body[:200])))
        return headers, body

    def post_response(self, request_id, payload, content_type="application/json"):
        """Posts a successful result; returns the HTTP status (202 expected)."""
        path = "%s/invocation/%s/response" % (_PREFIX, request_id)
        return self._post(path, payload, "Content-Type: %s\r\n" % content_type)

    def post_error(self, request_id, error_body, error_type):
        """Posts an invocation error: error_body is the JSON bytes of
        {"errorMessage","errorType",...}; returns the HTTP status."""
        path = "%s/invocation/%s/error" % (_PREFIX, request_id)
        return self._post(path, error_body, _error_headers(error_type))

    def post_init_error(self, error_body, error_type):
        """Posts an initialization error; returns the HTTP status."""
        return self._post(_PREFIX + "/init/error", error_body, _error_headers(error_type))

    def restore_next(self):
        """SnapStart: tells the Runtime API the runtime is ready to be snapshotted; returns
        after a restore. Returns the answer's headers (names lower-case). Raises
        RuntimeAPIError on anything but 200."""
        status, headers, body = self._request(
            b"GET " + _PREFIX.encode() + b"/restore/next HTTP/1.1\r\n", b"", b"")
        if status != 200:
            raise RuntimeAPIError("GET /restore/next answered %d: %r" % (status, bytes(body[:200])))
        return headers

    def post_restore_error(self, error_body, error_type):
        """SnapStart: posts the error of an after-restore hook; returns the HTTP status."""
        return self._post(_PREFIX + "/restore/error", error_body, _error_headers(error_type))

    def close(self):
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        self._pending = b""

    # --- HTTP --------------------------------------------------------------------------

    def _post(self, path, body, extra_headers):
        status, _, _ = self._request(
            ("POST %s HTTP/1.1\r\n" % path).encode("latin-1"),
            extra_headers.encode("latin-1"), body)
        return status

    def _request(self, request_line, extra_headers, body):
        head = b"".join((request_line, self._host_line, b"Content-Length: ",
                         str(len(body)).encode(), b"\r\n", extra_headers, b"\r\n"))
        for attempt in (0, 1):
            reused = self._sock is not None
            if not reused:
                self._connect()
            try:
                self._send(head, body)
                return self._read_response()
            except (_IdleConnectionClosed, ConnectionResetError, BrokenPipeError) as e:
                self.close()
                if not reused or attempt == 1:
                    raise RuntimeAPIError("Runtime API connection lost: %r" % (e,)) from None
            except OSError as e:
                self.close()
                raise RuntimeAPIError("Runtime API I/O error: %r" % (e,)) from None
        raise AssertionError("unreachable")

    def _connect(self):
        sock = _socket.socket(self._family, _socket.SOCK_STREAM)
        try:
            sock.setsockopt(_socket.IPPROTO_TCP, _socket.TCP_NODELAY, 1)
            sock.connect(self._peer)
        except OSError as e:
            sock.close()
            raise RuntimeAPIError("cannot connect to the Runtime API at %s:%d: %s"
                                  % (self._peer[0], self._peer[1], e)) from None
        self._sock = sock
        self._pending = b""

    def _send(self, head, body):
        if not body:
            self._sock.sendall(head)
            return
        # One gathered write: no copy of a large body, one segment for a small one.
        sent = self._sock.sendmsg((head, body))
        total = len(head) + len(body)
        if sent < total:
            rest = memoryview(body)[max(sent - len(head), 0):]
            if sent < len(head):
                self._sock.sendall(head[sent:])
            self._sock.sendall(rest)

    def _recv(self):
        data = self._sock.recv(_RECV_SIZE)
        if not data:
            raise ConnectionResetError("Runtime API closed the connection mid-response")
        return data

    def _read_response(self):
        buf = self._pending
        self._pending = b""
        end = buf.find(b"\r\n\r\n")
        while end < 0:
            data = self._sock.recv(_RECV_SIZE)
            if not data:
                if not buf:
                    raise _IdleConnectionClosed()
                raise ConnectionResetError("Runtime API closed the connection mid-headers")
            buf += data
            end = buf.find(b"\r\n\r\n", max(len(buf) - len(data) - 3, 0))
        lines = buf[:end].decode("latin-1").split("\r\n")
        try:
            status = int(lines[0].split(" ", 2)[1])
        except (IndexError, ValueError):
            raise RuntimeAPIError("malformed status line %r" % lines[0]) from None
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        rest = buf[end + 4:]
        length = headers.get("content-length")
        if length is not None:
            body = self._read_sized(rest, int(length))
        elif "chunked" in headers.get("transfer-encoding", "").lower():
            body = self._read_chunked(rest)
        elif status in (204, 304) or status < 200:
            body, self._pending = b"", rest
        else:  # body delimited by the end of the connection
            parts = [rest]
            data = self._sock.recv(_RECV_SIZE)
            while data:
                parts.append(data)
                data = self._sock.recv(_RECV_SIZE)
            body = b"".join(parts)
            headers["connection"] = "close"
        if headers.get("connection", "").lower() == "close":
            self.close()
        return status, headers, body

    def _read_sized(self, rest, length):
        if len(rest) >= length:
            self._pending = rest[length:]
            return rest[:length]
        body = bytearray(length)
        body[:len(rest)] = rest
        view = memoryview(body)
        got = len(rest)
        while got < length:
            n = self._sock.recv_into(view[got:])
            if n == 0:
                raise ConnectionResetError("Runtime API closed the connection mid-body")
            got += n
        return body

    def _read_chunked(self, rest):
        buf = bytearray(rest)
        pos = 0
        body = bytearray()
        while True:
            eol = self._find_line(buf, pos)
            size = int(bytes(buf[pos:eol]).split(b";", 1)[0].strip() or b"0", 16)
            pos = eol + 2
            if size == 0:
                break
            while len(buf) < pos + size + 2:
                buf += self._recv()
            body += buf[pos:pos + size]
            pos += size + 2
            if pos > _RECV_SIZE:
                del buf[:pos]
                pos = 0
        while True:  # trailer section: header lines until an empty one
            eol = self._find_line(buf, pos)
            empty = eol == pos
            pos = eol + 2
            if empty:
                self._pending = bytes(buf[pos:])
                return body

    def _find_line(self, buf, pos):
        eol = buf.find(b"\r\n", pos)
        while eol < 0:
            buf += self._recv()
            eol = buf.find(b"\r\n", pos)
        return eol


def _error_headers(error_type):
    # Header values must be one line of latin-1: strip anything else.
    safe = "".join(c for c in error_type if " " <= c <= "~")
    return "Content-Type: application/json\r\nLambda-Runtime-Function-Error-Type: %s\r\n" % safe
