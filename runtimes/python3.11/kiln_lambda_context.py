"""The context object handed to Python handlers, and the process-wide conveniences
Lambda's Python runtime provides (root logger handler, exit()/quit() builtins).

Field names, types and semantics follow awslambdaric: memory_limit_in_mb is a string,
identity is always an object, client_context is None unless the invoke carried one.
"""

import os
import sys
import time

# Request id of the invoke in progress ("" before the first); read by the log handler.
current_request_id = ""


class CognitoIdentity:
    __slots__ = ["cognito_identity_id", "cognito_identity_pool_id"]


class Client:
    __slots__ = ["installation_id", "app_title", "app_version_name", "app_version_code",
                 "app_package_name"]


class ClientContext:
    __slots__ = ["custom", "env", "client"]


def _object_from_dict(cls, fields):
    if fields is None:
        return None
    obj = cls()
    get = fields.get if isinstance(fields, dict) else (lambda name: None)
    for name in cls.__slots__:
        setattr(obj, name, get(name))
    return obj


def _parse_json_header(value):
    if not value:
        return None
    import json
    return json.loads(value)


class LambdaContext:
    # Per-sandbox values: read once from the environment.
    function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME")
    function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION")
    memory_limit_in_mb = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
    log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME")
    log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME")
    client_context = None

    def __init__(self, request_id, headers):
        """headers: the /next response headers, names lower-case."""
        self.aws_request_id = request_id
        self.invoked_function_arn = headers.get("lambda-runtime-invoked-function-arn")
        self.tenant_id = headers.get("lambda-runtime-aws-tenant-id")
        try:
            self._epoch_deadline_time_in_ms = int(headers.get("lambda-runtime-deadline-ms", 0))
        except ValueError:
            self._epoch_deadline_time_in_ms = 0
        client_context = headers.get("lambda-runtime-client-context")
        if client_context:
            self.client_context = _object_from_dict(ClientContext,
                                                    _parse_json_header(client_context))
            self.client_context.client = _object_from_dict(Client, self.client_context.client)
        identity = _object_from_dict(CognitoIdentity, {})
        cognito = headers.get("lambda-runtime-cognito-identity")
        if cognito:
            cognito = _parse_json_header(cognito)
            if isinstance(cognito, dict):
                identity.cognito_identity_id = cognito.get("cognitoIdentityId")
                identity.cognito_identity_pool_id = cognito.get("cognitoIdentityPoolId")
        self.identity = identity

    def get_remaining_time_in_millis(self):
        return max(self._epoch_deadline_time_in_ms - int(round(time.time() * 1000)), 0)

    def log(self, msg):
        sys.stdout.write(str(msg))

    def __repr__(self):
        return ("%s([aws_request_id=%s,log_group_name=%s,log_stream_name=%s,function_name=%s,"
                "memory_limit_in_mb=%s,function_version=%s,invoked_function_arn=%s,"
                "client_context=%s,identity=%s,tenant_id=%s])" % (
                    self.__class__.__name__, self.aws_request_id, self.log_group_name,
                    self.log_stream_name, self.function_name, self.memory_limit_in_mb,
                    self.function_version, self.invoked_function_arn, self.client_context,
                    self.identity, self.tenant_id))


class _Quitter:
    def __init__(self, name):
        self.name = name

    def __repr__(self):
        return "Use %s() or Ctrl-D (i.e. EOF) to exit" % self.name

    def __call__(self, code=None):
        raise SystemExit(code)


def install_exit_builtins():
    """The runtime starts Python with -S (no site: ~7 ms saved); put back the two
    builtins that site would have added and that user code does call."""
    import builtins
    if not hasattr(builtins, "exit"):
        builtins.exit = _Quitter("exit")
        builtins.quit = _Quitter("quit")


def _configure_root_logger(logging):
    """Lambda's root handler: "[LEVEL]\\t<UTC time>.mmmZ\\t<request id>\\t<message>"."""

    class LambdaLoggerHandler(logging.Handler):
        def emit(self, record):
            sys.stdout.write(self.format(record))

    class LambdaLoggerFilter(logging.Filter):
        def filter(self, record):
            record.aws_request_id = current_request_id
            return True

    class JsonFormatter(logging.Formatter):
        """LoggingConfig LogFormat JSON: one object per record, as Lambda writes it."""

        def format(self, record):
            import json
            doc = {"timestamp": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
                   + ".%03dZ" % int(record.msecs),
                   "level": record.levelname, "message": record.getMessage(), "logger": record.name}
            if record.aws_request_id:
                doc["requestId"] = record.aws_request_id
            if record.exc_info:
                doc["errorType"] = record.exc_info[0].__name__
                doc["errorMessage"] = str(record.exc_info[1])
            return json.dumps(doc, default=str) + "\n"

    logging.Formatter.converter = time.gmtime
    handler = LambdaLoggerHandler()
    if os.environ.get("AWS_LAMBDA_LOG_FORMAT") == "JSON":
        handler.setFormatter(JsonFormatter())
        level = os.environ.get("AWS_LAMBDA_LOG_LEVEL", "INFO")
        levels = {"TRACE": logging.DEBUG, "DEBUG": logging.DEBUG, "INFO": logging.INFO,
                  "WARN": logging.WARNING, "ERROR": logging.ERROR, "FATAL": logging.CRITICAL}
        logging.getLogger().setLevel(levels.get(level, logging.INFO))
    else:
        handler.setFormatter(logging.Formatter(
            "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s\n",
            "%Y-%m-%dT%H:%M:%S"))
    handler.addFilter(LambdaLoggerFilter())
    logging.getLogger().addHandler(handler)


class _LoggingLoader:
    """Wraps the stdlib loader of `logging` to configure the root logger right after
    the module executes."""

    def __init__(self, loader):
        self._loader = loader

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        self._loader.exec_module(module)
        if hasattr(module, "Handler") and hasattr(module, "getLogger"):  # not a user's logging.py
            _configure_root_logger(module)

    def __getattr__(self, name):
        return getattr(self._loader, name)


class _LoggingHook:
    """A meta-path finder that fires once, when someone imports `logging`. Lambda
    configures logging eagerly; importing it costs ~10 ms, so Kiln defers that to the
    first import by the function (or its libraries), with the same visible result."""

    @classmethod
    def find_spec(cls, name, path=None, target=None):
        if name != "logging":
            return None
        sys.meta_path.remove(cls)
        from importlib.machinery import PathFinder
        spec = PathFinder.find_spec(name, path)
        if spec is not None and spec.loader is not None:
            spec.loader = _LoggingLoader(spec.loader)
        return spec


def install_logging_hook():
    if "logging" in sys.modules:
        _configure_root_logger(sys.modules["logging"])
    elif _LoggingHook not in sys.meta_path:
        sys.meta_path.insert(0, _LoggingHook)
