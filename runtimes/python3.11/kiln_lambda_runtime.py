"""Kiln's Lambda runtime interface client for Python 3.11 (stdlib only).

Behaves as AWS's awslambdaric: imports the handler once (init), then loops on
/invocation/next, calls handler(event, context), posts the JSON result or the error in
Lambda's shape. Init failures (bad handler name, import or syntax error, an exception at
import time) go to /init/error and the process exits 1. As in Lambda, a handler function
missing from an importable module is reported on every invoke (Runtime.HandlerNotFound).

SnapStart (AWS_LAMBDA_INITIALIZATION_TYPE=snap-start only): after the handler is loaded,
the before-snapshot hooks of snapshot_restore_py run (reverse order of registration),
then GET /restore/next, which answers after a restore; the runtime then reseeds the
random sources it owns and runs the after-restore hooks (order of registration) before
its first /invocation/next. A before-snapshot hook that raises is posted to /init/error
as Runtime.BeforeSnapshotError (exit 64); an after-restore one to /restore/error as
Runtime.AfterRestoreError (exit 65), as Lambda's runtimes do.

Everything that does not depend on the invoke is computed once, before the first /next.
"""

import json
import os
import sys
import time

import kiln_lambda_context as lambda_context
from kiln_runtime_api import RuntimeAPIClient, RuntimeAPIError

_THIS_FILE = __file__


class FaultException(Exception):
    MARSHAL_ERROR = "Runtime.MarshalError"
    UNMARSHAL_ERROR = "Runtime.UnmarshalError"
    USER_CODE_SYNTAX_ERROR = "Runtime.UserCodeSyntaxError"
    HANDLER_NOT_FOUND = "Runtime.HandlerNotFound"
    IMPORT_MODULE_ERROR = "Runtime.ImportModuleError"
    BUILT_IN_MODULE_CONFLICT = "Runtime.BuiltInModuleConflict"
    MALFORMED_HANDLER_NAME = "Runtime.MalformedHandlerName"
    BEFORE_SNAPSHOT_ERROR = "Runtime.BeforeSnapshotError"
    AFTER_RESTORE_ERROR = "Runtime.AfterRestoreError"

    def __init__(self, exception_type, msg, trace=None):
        super().__init__(msg)
        self.exception_type = exception_type
        self.msg = msg
        self.trace = trace


def make_error(message, error_type, stack_trace, request_id=""):
    """Lambda's error document (awslambdaric's make_error)."""
    return {
        "errorMessage": message or "",
        "errorType": error_type or "",
        "requestId": request_id or "",
        "stackTrace": stack_trace or [],
    }


def build_fault_result(exc_info, request_id=""):
    """Error document for an exception raised by user code: frames of this runtime
    at the top of the traceback are dropped, as Lambda drops its bootstrap.py frames."""
    import traceback

    etype, value, tb = exc_info
    frames = traceback.extract_tb(tb)
    while frames and frames[0].filename == _THIS_FILE:
        frames.pop(0)
    return make_error(str(value), etype.__name__, traceback.format_list(frames), request_id)


def log_error(error):
    """Writes the error to stdout as one log record (lines joined by \\r, as Lambda)."""
    description = "[ERROR]"
    if error["errorType"]:
        description += " " + error["errorType"]
    if error["errorMessage"]:
        if error["errorType"]:
            description += ":"
        description += " " + error["errorMessage"]
    lines = [description, "Traceback (most recent call last):"]
    for element in error["stackTrace"]:
        lines.extend(element.splitlines() if element else [""])
    sys.stdout.write("\r".join(lines) + "\n")


def _fault_handler(fault):
    def handler(event, context):
        raise fault
    return handler


def load_handler(handler_name):
    """Imports the handler's module and returns the handler, or raises FaultException."""
    try:
        modname, fname = handler_name.rsplit(".", 1)
    except ValueError as e:
        raise FaultException(FaultException.MALFORMED_HANDLER_NAME,
                             "Bad handler '%s': %s" % (handler_name, e)) from None
    if modname.split(".")[0] in sys.builtin_module_names:
        raise FaultException(FaultException.BUILT_IN_MODULE_CONFLICT,
                             "Cannot use built-in module %s as a handler module" % modname)
    try:
        __import__(modname.replace("/", "."))
        module = sys.modules[modname.replace("/", ".")]
    except ImportError as e:
        raise FaultException(FaultException.IMPORT_MODULE_ERROR,
                             "Unable to import module '%s': %s" % (modname, e)) from None
    except SyntaxError as e:
        trace = ['  File "%s" Line %s\n    %s' % (e.filename, e.lineno, e.text)]
        raise FaultException(FaultException.USER_CODE_SYNTAX_ERROR,
                             "Syntax error in module '%s': %s" % (modname, e), trace) from None
    try:
        return getattr(module, fname)
    except AttributeError:
        return _fault_handler(FaultException(
            FaultException.HANDLER_NOT_FOUND,
            "Handler '%s' missing on module '%s'" % (fname, modname)))


class _Encoder(json.JSONEncoder):
    def default(self, o):
        if type(o).__name__ == "Decimal":
            return float(o)
        return super().default(o)


_encode = _Encoder(ensure_ascii=False, allow_nan=True).encode


def marshal_result(result):
    """(payload bytes, content type) of a handler's return value."""
    if isinstance(result, bytes):
        return result, "application/unknown"
    try:
        return _encode(result).encode("utf-8"), "application/json"
    except Exception as e:
        raise FaultException(FaultException.MARSHAL_ERROR,
                             "Unable to marshal response: %s" % e) from None


def unmarshal_event(body, content_type):
    if content_type is not None and not content_type.startswith("application/json"):
        return bytes(body)
    try:
        return json.loads(body)
    except Exception as e:
        raise FaultException(FaultException.UNMARSHAL_ERROR,
                             "Unable to unmarshal input: %s" % e) from None


def _post_error(api, request_id, error):
    log_error(error)
    body = json.dumps(error).encode("utf-8")
    if request_id is None:
        api.post_init_error(body, error["errorType"])
    else:
        _post_result(api.post_error, request_id, body, error["errorType"])


def _post_result(post, *args):
    """A failed post of one result (e.g. the API refused an oversized response and closed
    the connection) fails that invoke only: the loop goes on to /next, which reconnects
    or, if the Runtime API is really gone, ends the process."""
    try:
        post(*args)
    except RuntimeAPIError as e:
        sys.stderr.write("kiln runtime: posting the result failed: %s\n" % e)


def _run_hooks(hooks):
    for func, args, kwargs in hooks:
        func(*args, **kwargs)


def reseed_after_restore():
    """Uniqueness for a restored copy: every copy of one snapshot starts with the same
    memory, so the state of Python's `random` module (a Mersenne Twister seeded at
    import) is the same in all of them. Reseed it from the kernel. os.urandom, secrets,
    uuid.uuid4 and random.SystemRandom read the kernel on every call and need nothing;
    random.Random instances the function made itself, and values computed during init,
    are only the function's after-restore hooks to renew."""
    random = sys.modules.get("random")
    if random is not None:
        random.seed()  # no argument: seeded from os.urandom


def adopt_copy_identity(headers):
    """What differs per restored copy comes with Kiln's /restore/next answer: its log
    stream (the snapshot holds the snapshotted sandbox's), so that context and
    environment name this copy's own stream."""
    stream = headers.get("kiln-log-stream-name")
    if stream:
        os.environ["AWS_LAMBDA_LOG_STREAM_NAME"] = stream
        lambda_context.LambdaContext.log_stream_name = stream


def snap_start(api):
    """The snapshot handshake; returns when the copy is restored and its hooks ran, or
    exits the process after reporting a hook's error."""
    import snapshot_restore_py as hooks

    try:
        _run_hooks(reversed(hooks.get_before_snapshot()))
    except Exception:
        _report_hook_error(api.post_init_error, FaultException.BEFORE_SNAPSHOT_ERROR)
        sys.exit(64)
    sys.stdout.flush()
    sys.stderr.flush()
    adopt_copy_identity(api.restore_next() or {})
    reseed_after_restore()
    try:
        _run_hooks(hooks.get_after_restore())
    except Exception:
        _report_hook_error(api.post_restore_error, FaultException.AFTER_RESTORE_ERROR)
        sys.exit(65)


def _report_hook_error(post, error_type):
    error = build_fault_result(sys.exc_info())
    log_error(error)
    try:
        post(json.dumps(error).encode("utf-8"), error_type)
    except RuntimeAPIError as e:
        sys.stderr.write("kiln runtime: posting the hook error failed: %s\n" % e)
    sys.stdout.flush()


def serve(api, handler):
    """The invoke loop: never returns (RuntimeAPIError ends the process)."""
    environ = os.environ
    stdout, stderr = sys.stdout, sys.stderr
    Context = lambda_context.LambdaContext
    trace_id = environ.get("_X_AMZN_TRACE_ID")
    while True:
        headers, body = api.next_invocation()
        request_id = headers.get("lambda-runtime-aws-request-id", "")
        lambda_context.current_request_id = request_id
        new_trace_id = headers.get("lambda-runtime-trace-id")
        if new_trace_id != trace_id:
            trace_id = new_trace_id
            if trace_id is None:
                environ.pop("_X_AMZN_TRACE_ID", None)
            else:
                environ["_X_AMZN_TRACE_ID"] = trace_id
        try:
            context = Context(request_id, headers)
            event = unmarshal_event(body, headers.get("content-type"))
            payload, content_type = marshal_result(handler(event, context))
        except FaultException as e:
            error = make_error(e.msg, e.exception_type, e.trace, request_id)
        except Exception:
            error = build_fault_result(sys.exc_info(), request_id)
        else:
            _post_result(api.post_response, request_id, payload, content_type)
            stdout.flush()
            stderr.flush()
            continue
        _post_error(api, request_id, error)
        stdout.flush()
        stderr.flush()


def main():
    environ = os.environ
    task_root = environ.get("LAMBDA_TASK_ROOT") or "/var/task"
    runtime_dir = os.path.dirname(os.path.abspath(_THIS_FILE))
    _set_sys_path(task_root, runtime_dir)
    lambda_context.install_exit_builtins()
    lambda_context.install_logging_hook()
    try:
        os.chdir(task_root)
    except OSError:
        pass
    try:
        api = RuntimeAPIClient(environ.get("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9001"))
    except RuntimeAPIError as e:
        sys.stderr.write("kiln runtime: %s\n" % e)
        return 1
    try:
        handler = load_handler(environ.get("_HANDLER", ""))
    except FaultException as e:
        error = make_error(e.msg, e.exception_type, e.trace)
    except Exception:
        error = build_fault_result(sys.exc_info())
    else:
        try:
            if environ.get("AWS_LAMBDA_INITIALIZATION_TYPE") == "snap-start":
                snap_start(api)
            serve(api, handler)
        except RuntimeAPIError as e:
            sys.stderr.write("kiln runtime: %s\n" % e)
            return 1
    try:
        _post_error(api, None, error)
    except RuntimeAPIError as e:
        sys.stderr.write("kiln runtime: posting the init error failed: %s\n" % e)
    sys.stdout.flush()
    return 1


def _set_sys_path(task_root, runtime_dir):
    """Lambda's order: the task root, then layers, then the runtime, then the stdlib."""
    front = [task_root, "/opt/python/lib/python3.11/site-packages", "/opt/python", runtime_dir]
    rest = [p for p in sys.path if p not in front and p != ""]
    sys.path[:] = front + rest
