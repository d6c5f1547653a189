#!/usr/bin/env python3
"""Writes the seed corpus of every fuzz target into fuzz/corpus/<target>/.

Run from anywhere: python3 fuzz/make_corpus.py. Deterministic: the requests are signed
by botocore (the signer of the AWS SDK for Python and the AWS CLI) with the fixed key
and clock of fuzz/sigv4_check.h, so that the HTTP and SigV4 targets start from requests
that verify. Existing files of a target are replaced.
"""
import datetime
import io
import os
import shutil
import stat
import warnings
import zipfile

import botocore.auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "corpus")

ACCESS_KEY = "AKIDKILNFUZZEXAMPLE"
SECRET_KEY = "kilnFuzzSecretKey/0123456789abcdefghijklm"
NOW = datetime.datetime(2026, 1, 1, 0, 0, 0)
HOST = "localhost:9001"
ACCOUNT = "123456789012"

botocore.auth.get_current_datetime = lambda *args, **kwargs: NOW


def sign(method, target, body=b"", headers=None, service="lambda"):
    """Returns (method, target, [(name, value)], body) signed as botocore signs it."""
    headers = dict(headers or {})
    request = AWSRequest(method=method, url="http://" + HOST + target, data=body, headers=headers)
    botocore.auth.SigV4Auth(Credentials(ACCESS_KEY, SECRET_KEY), service, "us-east-1").add_auth(request)
    out = [("Host", HOST)] + [(k, v) for k, v in request.headers.items()]
    if body:
        out.append(("Content-Length", str(len(body))))
    return method, target, out, body


def as_str(v):
    return v.decode() if isinstance(v, bytes) else v


def http_bytes(method, target, headers, body):
    head = "%s %s HTTP/1.1\r\n" % (method, target)
    head += "".join("%s: %s\r\n" % (k, as_str(v)) for k, v in headers)
    return head.encode() + b"\r\n" + body


def lenient_bytes(method, target, headers, body):
    """The text form of fuzz/sigv4_fuzz.cc."""
    head = "%s %s\n" % (method, target)
    head += "".join("%s: %s\n" % (k, as_str(v)) for k, v in headers)
    return head.encode() + b"\n" + body


FN = "/2015-03-31/functions"
ARN = "arn:aws:lambda:us-east-1:%s:function:my-fn" % ACCOUNT
SIGNED = {
    "list_functions": sign("GET", FN + "/"),
    "list_functions_page": sign("GET", FN + "/?MaxItems=10&Marker=my-fn%3A%24LATEST"),
    "get_function": sign("GET", FN + "/my-fn"),
    "get_configuration_qualifier": sign("GET", FN + "/my-fn/configuration?Qualifier=1"),
    "get_by_arn": sign("GET", FN + "/" + ARN.replace(":", "%3A") + "/configuration"),
    "invoke": sign("POST", FN + "/my-fn/invocations", b'{"key": "value", "n": [1, 2.5, null]}',
                   {"X-Amz-Invocation-Type": "RequestResponse", "X-Amz-Log-Type": "Tail"}),
    "invoke_event": sign("POST", FN + "/my-fn/invocations?Qualifier=prod", b'"hello"',
                         {"X-Amz-Invocation-Type": "Event"}),
    "create_function": sign("POST", FN, b'{"FunctionName":"my-fn","Runtime":"python3.12",'
                            b'"Role":"arn:aws:iam::123456789012:role/r","Handler":"index.handler",'
                            b'"Code":{"ZipFile":"UEsFBgAAAAAAAAAAAAAAAAAAAAAAAA=="}}',
                            {"Content-Type": "application/json"}),
    "update_configuration": sign("PUT", FN + "/my-fn/configuration", b'{"Timeout":30,"MemorySize":256}',
                                 {"Content-Type": "application/json"}),
    "delete_function": sign("DELETE", FN + "/my-fn?Qualifier=2"),
    "put_concurrency": sign("PUT", "/2017-10-31/functions/my-fn/concurrency",
                            b'{"ReservedConcurrentExecutions":5}'),
    "layer_by_arn": sign("GET", "/2018-10-31/layers?find=LayerVersion&Arn=arn%3Aaws%3Alambda%3Aus-east-1%3A"
                         + ACCOUNT + "%3Alayer%3Amy-layer%3A1"),
    "list_tags": sign("GET", "/2017-03-31/tags/" + ARN.replace(":", "%3A")),
    "logs_get_events": sign("POST", "/", b'{"logGroupName":"/aws/lambda/my-fn","logStreamName":"s","limit":10}',
                            {"X-Amz-Target": "Logs_20140328.GetLogEvents",
                             "Content-Type": "application/x-amz-json-1.1"}, service="logs"),
}


def reset(target):
    path = os.path.join(CORPUS, target)
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path)
    return path


def write(directory, name, data):
    with open(os.path.join(directory, name), "wb") as f:
        f.write(data)


def http_request_corpus():
    d = reset("http_request")
    for name, req in SIGNED.items():
        write(d, name, http_bytes(*req))
    m, t, h, b = SIGNED["invoke"]
    write(d, "invoke_chunked", http_bytes(m, t, [x for x in h if x[0] != "Content-Length"]
                                          + [("Transfer-Encoding", "chunked")], b"")
          + b"%x\r\n%s\r\n0\r\n\r\n" % (len(b), b))
    write(d, "keep_alive_two", http_bytes(*SIGNED["get_function"]) + http_bytes(*SIGNED["list_functions"]))
    write(d, "unsigned", b"GET /2015-03-31/functions/ HTTP/1.1\r\nHost: " + HOST.encode() + b"\r\n\r\n")
    write(d, "bad_authorization", b"GET /2015-03-31/functions/ HTTP/1.1\r\nHost: x\r\n"
          b"Authorization: \xff\xfe\r\n\r\n")
    write(d, "code_link", b"GET /kiln/code/123456789012/" + b"0" * 64 +
          b".zip?expires=9999999999&signature=00 HTTP/1.1\r\nHost: x\r\n\r\n")
    write(d, "http10", b"GET /2015-03-31/functions/my-fn HTTP/1.0\r\n\r\n")


def sigv4_corpus():
    d = reset("sigv4")
    for name, req in SIGNED.items():
        write(d, name, lenient_bytes(*req))
    m, t, h, b = SIGNED["get_function"]
    write(d, "date_header", lenient_bytes(m, t, [x for x in h if x[0] != "X-Amz-Date"]
                                          + [("Date", "Thu, 01 Jan 2026 00:00:00 GMT")], b))
    write(d, "unsigned", b"GET /\nHost: localhost\n\n")
    write(d, "malformed", b"GET /\nAuthorization: AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1/"
          b"lambda/aws4_request, SignedHeaders=host;x-amz-date, Signature=00\nX-Amz-Date: 20260101T000000Z\n\n")


def router_corpus():
    d = reset("router")
    paths = [
        ("GET", FN + "/"), ("GET", FN + "?MaxItems=5&Marker=abc"), ("POST", FN),
        ("GET", FN + "/my-fn"), ("POST", FN + "/my-fn/invocations"),
        ("GET", FN + "/my-fn/configuration?Qualifier=%24LATEST"),
        ("DELETE", FN + "/" + ARN.replace(":", "%3A")), ("POST", FN + "/my-fn/versions"),
        ("GET", FN + "/my-fn/aliases/prod"), ("PUT", "/2017-10-31/functions/my-fn/concurrency"),
        ("GET", "/2018-10-31/layers?find=LayerVersion&Arn=arn%3Aaws%3Alambda%3Aus-east-1%3A1%3Alayer%3Ax%3A1"),
        ("POST", "/2018-10-31/layers/my-layer/versions"), ("GET", "/2017-03-31/tags/" + ARN),
        ("POST", "/2015-03-31/functions/my-fn/policy"), ("GET", "/2021-10-31/functions/my-fn/url"),
        ("PUT", "/2019-09-25/functions/my-fn/event-invoke-config?Qualifier=1"),
        ("GET", "/2014-11-13/functions/my-fn/invoke-async/"), ("GET", "/%zz/bad"),
    ]
    for i, (method, target) in enumerate(paths):
        write(d, "path_%02d" % i, ("%s %s" % (method, target)).encode())


def zip_bytes(entries, compression=zipfile.ZIP_DEFLATED):
    """entries: (name, data, unix mode)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as z:
        for name, data, mode in entries:
            info = zipfile.ZipInfo(name, date_time=(2026, 1, 1, 0, 0, 0))
            info.create_system = 3  # Unix: external_attr carries st_mode
            info.external_attr = mode << 16
            if stat.S_ISDIR(mode):
                info.external_attr |= 0x10
            info.compress_type = compression
            z.writestr(info, data)
    return buf.getvalue()


FILE, EXEC, DIR, LINK = 0o100644, 0o100755, 0o040755, 0o120777


def zip_extract_corpus():
    d = reset("zip_extract")
    write(d, "python_handler", zip_bytes([("index.py", b"def handler(event, context):\n    return event\n", FILE)]))
    write(d, "bootstrap_stored", zip_bytes([("bootstrap", b"#!/bin/sh\nexit 0\n", EXEC)], zipfile.ZIP_STORED))
    write(d, "nested_dirs", zip_bytes([("lib/", b"", DIR), ("lib/pkg/", b"", DIR),
                                       ("lib/pkg/__init__.py", b"", FILE), ("lib/pkg/m.py", b"x = 1\n", FILE)]))
    write(d, "dotdot", zip_bytes([("../evil.txt", b"escaped", FILE)]))
    write(d, "dotdot_inner", zip_bytes([("a/../../evil.txt", b"escaped", FILE)]))
    write(d, "absolute", zip_bytes([("/tmp/evil.txt", b"escaped", FILE)]))
    write(d, "symlink_inside", zip_bytes([("real.txt", b"data", FILE), ("link.txt", b"real.txt", LINK)]))
    write(d, "symlink_outside", zip_bytes([("passwd", b"../../../../etc/passwd", LINK)]))
    write(d, "symlink_dir_then_file", zip_bytes([("up", b"..", LINK), ("up/evil.txt", b"escaped", FILE)]))
    write(d, "symlink_chain", zip_bytes([("a/", b"", DIR), ("a/l1", b"..", LINK), ("l2", b"a/l1/..", LINK)]))
    write(d, "symlink_absolute", zip_bytes([("abs", b"/etc", LINK)]))
    write(d, "empty", zip_bytes([]))
    warnings.simplefilter("ignore")  # zipfile warns about the duplicate, which is the point
    write(d, "duplicate_names", zip_bytes([("x.txt", b"one", FILE), ("x.txt", b"two", FILE)]))


RUNTIME = "/2018-06-01/runtime"
REQ_ID = "8f5c2d1e-1b2a-4c3d-9e8f-0a1b2c3d4e5f"


def runtime_request(method, path, body=b"", headers=()):
    head = "%s %s HTTP/1.1\r\nHost: 127.0.0.1:9001\r\n" % (method, RUNTIME + path)
    head += "".join("%s: %s\r\n" % h for h in headers)
    if body or method == "POST":
        head += "Content-Length: %d\r\n" % len(body)
    return head.encode() + b"\r\n" + body


def runtime_api_corpus():
    d = reset("runtime_api")
    write(d, "next", runtime_request("GET", "/invocation/next"))
    write(d, "response", runtime_request("POST", "/invocation/%s/response" % REQ_ID, b'{"statusCode":200}'))
    write(d, "error_body", runtime_request("POST", "/invocation/%s/error" % REQ_ID,
                                           b'{"errorMessage":"boom","errorType":"ValueError","stackTrace":[]}',
                                           [("Lambda-Runtime-Function-Error-Type", "ValueError")]))
    write(d, "error_header_only", runtime_request("POST", "/invocation/%s/error" % REQ_ID, b"",
                                                  [("Lambda-Runtime-Function-Error-Type", "Runtime.Crash")]))
    write(d, "init_error", runtime_request("POST", "/init/error", b"",
                                           [("Lambda-Runtime-Function-Error-Type", "Runtime.ImportModuleError")]))
    write(d, "restore_next", runtime_request("GET", "/restore/next"))
    write(d, "restore_error", runtime_request("POST", "/restore/error",
                                              b'{"errorMessage":"hook","errorType":"Runtime.AfterRestoreError"}',
                                              [("Lambda-Runtime-Function-Error-Type", "Runtime.AfterRestoreError")]))
    write(d, "response_chunked",
          b"POST " + (RUNTIME + "/invocation/%s/response" % REQ_ID).encode() +
          b" HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
    write(d, "unknown_path", runtime_request("GET", "/../2020-01-01/extension/register"))
    write(d, "wrong_method", runtime_request("POST", "/invocation/next"))


SEP = b"\n--kiln--\n"


def invocation_record_corpus():
    d = reset("invocation_record")
    seeds = {
        "success_object": (0b0011, b'{"key":"value"}', b'{"statusCode":200,"body":"ok"}'),
        "no_response": (0b0100, b'{"a":[1,2,3]}', b""),
        "error_document": (0b1000_0011, b'[]', b'{"errorMessage":"boom","errorType":"Error"}'),
        "response_not_json": (0b0011, b'"text"', b"not json at all"),
        "empty_payload": (0b0001, b"", b""),
        "unicode": (0b0011, '{"k":"caf\u00e9 \\ud83d\\ude00"}'.encode(), '"\u00e9\u4e2d"'.encode()),
        "numbers": (0b0011, b"[1e308, -0, 12345678901234567890, 0.1]", b"null"),
        "nested": (0b0011, b"[" * 64 + b"]" * 64, b'{"a":' * 32 + b"1" + b"}" * 32),
    }
    for name, (flags, request, response) in seeds.items():
        write(d, name, bytes([flags]) + request + SEP + response)


def main():
    http_request_corpus()
    sigv4_corpus()
    router_corpus()
    zip_extract_corpus()
    runtime_api_corpus()
    invocation_record_corpus()


if __name__ == "__main__":
    main()
