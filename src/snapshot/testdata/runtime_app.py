# A python "runtime" for the snapshot tests: 10 MB of data, a keep-alive connection to the
# test Runtime API, blocked in recv on GET .../restore/next when it is checkpointed.
import collections, hashlib, json, os, re, socket, struct, sys  # noqa: F401

data = [bytes([i % 256]) * 1024 for i in range(10 * 1024)]
digest = hashlib.sha256(b"".join(data[:100])).hexdigest()
port = int(sys.argv[1])
s = socket.create_connection(("127.0.0.1", port))


def request(method, path, body=b""):
    head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: {len(body)}\r\n\r\n"
    s.sendall(head.encode() + body)


def response():
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = s.recv(65536)
        if not chunk:
            sys.exit(3)
        buf += chunk
    head, rest = buf.split(b"\r\n\r\n", 1)
    n = int(re.search(rb"Content-Length: (\d+)", head).group(1))
    while len(rest) < n:
        rest += s.recv(65536)
    return rest[:n]


while True:
    request("GET", "/2018-06-01/runtime/restore/next")
    event = json.loads(response())
    total = sum(len(d) for d in data)
    out = {"echo": event, "total": total, "digest": digest, "pid": os.getpid()}
    request("POST", "/2018-06-01/runtime/invocation/x/response", json.dumps(out).encode())
    response()
