#!/usr/bin/env python3
"""Moto server for the Rust integration tests, with a CloudWatch CBOR bridge.

Usage: python moto_server.py [--host 127.0.0.1] [--port 0]

Requirements: moto[server]==5.2.5, cbor2==5.9.0 (botocore and werkzeug come
with moto[server]).

Protocol with the parent process:
  * once the socket is bound, exactly one line ``READY <port>`` is printed on
    stdout; nothing else is ever written to stdout (it is redirected to stderr
    right after that line, so a parent that stops reading cannot block us);
  * the server exits as soon as its stdin reaches EOF (i.e. the parent died or
    closed the pipe), and on SIGTERM/SIGINT.

Moto settings such as MOTO_IAM_LOAD_MANAGED_POLICIES and
MOTO_ECS_SERVICE_RUNNING are read by moto from os.environ when they are used,
so the parent just sets them in the child's environment.

Why a bridge: the current Rust ``aws-sdk-cloudwatch`` only speaks Smithy
RPC v2 CBOR (POST /service/GraniteServiceVersion20100801/operation/<Op>),
which moto does not serve (getmoto/moto#9195). Moto does serve CloudWatch's
awsJson1.0 protocol, so those requests are rewritten to awsJson1.0 and moto's
JSON answers are re-encoded as CBOR, typed by botocore's CloudWatch model
(timestamps as CBOR tag 1, blobs as byte strings, exact integer/float types,
which the Rust decoder checks strictly). Every other request passes through.

Three behaviours of moto are brought closer to AWS's: UpdateService with a new
task definition starts a new deployment (see ``new_deployment_on_update``); with
IAM enforced, ECS service and task calls are authorized against their
resource's ARN (see ``ecs_resource_arns``), and refusals of JSON-protocol calls
are JSON errors (see ``JsonAuthErrors``).
"""

import argparse
import base64
import datetime
import gzip
import io
import json
import os
import signal
import sys
import threading
import traceback

import botocore.session
import cbor2
from botocore.utils import parse_timestamp
from werkzeug.serving import make_server
from werkzeug.wsgi import get_input_stream

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)

TARGET_PREFIX = "GraniteServiceVersion20100801"
CBOR_PATH_PREFIX = f"/service/{TARGET_PREFIX}/operation/"
INTEGER_TYPES = ("integer", "long", "short", "byte", "bigInteger")
FLOAT_TYPES = ("float", "double", "bigDecimal")


# --- CBOR request -> awsJson1.0 request ------------------------------------


def cbor_to_json_value(value):
    """Turn a decoded CBOR value into what awsJson1.0 expects.

    cbor2 already decodes tag 1 into an aware datetime; awsJson sends
    timestamps as epoch seconds and blobs as base64 strings.
    """
    if isinstance(value, dict):
        return {key: cbor_to_json_value(item) for key, item in value.items()}
    if isinstance(value, list):
        return [cbor_to_json_value(item) for item in value]
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=datetime.timezone.utc)
        return value.timestamp()
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(value).decode("ascii")
    return value


# --- awsJson1.0 response -> CBOR response ----------------------------------


def epoch_seconds(value):
    """Epoch seconds from a JSON timestamp (number, numeric string or ISO-8601)."""
    if isinstance(value, (int, float)):
        return float(value)
    try:
        return float(value)
    except ValueError:
        parsed = parse_timestamp(value)
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=datetime.timezone.utc)
        return parsed.timestamp()


def json_to_cbor_value(value, shape):
    """Convert a JSON value to its CBOR form, typed by a botocore shape.

    With no shape (unknown member or operation) the value is kept as it is.
    None values are dropped from structures and maps.
    """
    if shape is None or value is None:
        return value
    kind = shape.type_name
    if kind == "structure":
        return {
            key: json_to_cbor_value(item, shape.members.get(key))
            for key, item in value.items()
            if item is not None
        }
    if kind == "list":
        return [json_to_cbor_value(item, shape.member) for item in value]
    if kind == "map":
        return {
            key: json_to_cbor_value(item, shape.value)
            for key, item in value.items()
            if item is not None
        }
    if kind == "timestamp":
        return cbor2.CBORTag(1, epoch_seconds(value))
    if kind == "blob" and isinstance(value, str):
        return base64.b64decode(value)
    if kind in INTEGER_TYPES:
        return int(value)
    if kind in FLOAT_TYPES:
        return float(value)
    return value


def error_to_cbor_value(body, headers):
    """Build the rpcv2Cbor error map ``{"__type", "message"}``.

    Moto's JSON error is ``{"__type": "GraniteServiceVersion20100801#<Shape>",
    "Message": ...}`` plus the header ``x-amzn-query-error: <Code>;Sender``.
    The Rust SDK (awsQueryCompatible) matches errors on the query code, e.g.
    ``ResourceNotFound``; it takes it from that header when present, else from
    ``__type`` minus any ``namespace#`` prefix. So ``__type`` is set to the
    bare query code too, which works whichever of the two the SDK reads.
    """
    query_error = headers.get("x-amzn-query-error", "")
    code = query_error.split(";", 1)[0] or str(body.get("__type", "InternalFailure"))
    message = body.get("message") or body.get("Message") or ""
    return {"__type": code.rsplit("#", 1)[-1], "message": str(message)}


# --- WSGI middleware --------------------------------------------------------


class CborBridge:
    """WSGI middleware translating CloudWatch rpcv2Cbor <-> awsJson1.0."""

    def __init__(self, app):
        self.app = app
        self.model = botocore.session.get_session().get_service_model("cloudwatch")

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        if environ.get("REQUEST_METHOD") != "POST" or not path.startswith(
            CBOR_PATH_PREFIX
        ):
            return self.app(environ, start_response)
        operation = path[len(CBOR_PATH_PREFIX) :]

        # Request: CBOR body -> JSON body on "/" with the awsJson headers.
        # get_input_stream honours Content-Length and chunked bodies alike;
        # the SDK gzips large PutMetricData bodies (request compression).
        raw = get_input_stream(environ).read()
        if environ.get("HTTP_CONTENT_ENCODING", "").lower() == "gzip":
            raw = gzip.decompress(raw)
        payload = cbor_to_json_value(cbor2.loads(raw)) if raw else {}
        body = json.dumps(payload).encode("utf-8")
        inner = dict(environ)
        inner.update(
            {
                "PATH_INFO": "/",
                "REQUEST_URI": "/",
                "RAW_URI": "/",
                "QUERY_STRING": "",
                "CONTENT_TYPE": "application/x-amz-json-1.0",
                "CONTENT_LENGTH": str(len(body)),
                "HTTP_X_AMZ_TARGET": f"{TARGET_PREFIX}.{operation}",
                "wsgi.input": io.BytesIO(body),
                "wsgi.input_terminated": False,
            }
        )
        for header in ("HTTP_TRANSFER_ENCODING", "HTTP_CONTENT_ENCODING"):
            inner.pop(header, None)
        # Authorization and all other headers stay: moto picks the backend
        # (service "monitoring", region) from the SigV4 credential scope.

        # Call moto and collect its whole answer.
        captured = {}

        def capture(status, headers, exc_info=None):
            captured["status"], captured["headers"] = status, headers
            return lambda data: None  # moto/Flask never uses write()

        try:
            result = self.app(inner, capture)
            try:
                answer = b"".join(result)
            finally:
                if hasattr(result, "close"):
                    result.close()
        except Exception as error:
            # Moto's Flask apps propagate exceptions (e.g. NotImplementedError
            # for an unimplemented action); werkzeug would answer with an HTML
            # page the SDK cannot decode, so answer with a CBOR error instead.
            traceback.print_exc()
            captured = {"status": "500 INTERNAL SERVER ERROR", "headers": []}
            answer = json.dumps(
                {"__type": "InternalFailure", "message": f"{type(error).__name__}: {error}"}
            ).encode("utf-8")

        # Response: JSON -> CBOR, keeping the status and the other headers.
        status = captured["status"]
        headers = [
            (name, value)
            for name, value in captured["headers"]
            if name.lower() not in ("content-type", "content-length")
        ]
        try:
            document = json.loads(answer) if answer.strip() else {}
        except ValueError:  # e.g. a Flask HTML error page (unknown route)
            document = {"message": answer.decode("utf-8", "replace")}
        if int(status.split(" ", 1)[0]) < 300:
            try:
                shape = self.model.operation_model(operation).output_shape
            except Exception:  # unknown operation: convert untyped
                shape = None
            converted = json_to_cbor_value(document, shape)
        else:
            lowered = {name.lower(): value for name, value in headers}
            converted = error_to_cbor_value(document, lowered)
        encoded = cbor2.dumps(converted)
        headers += [
            ("Content-Type", "application/cbor"),
            ("smithy-protocol", "rpc-v2-cbor"),
            ("Content-Length", str(len(encoded))),
        ]
        start_response(status, headers)
        return [encoded]


# --- IAM refusals in the caller's protocol ------------------------------------


class JsonAuthErrors:
    """WSGI middleware answering moto's IAM refusals in the JSON protocols.

    With IAM enforced, moto refuses a call with an XML error body whatever the
    service's protocol; the SDKs of awsJson services (ECS, CloudWatch Logs,
    ...) cannot decode it, so the caller sees an unparseable response instead of
    ``AccessDeniedException``. A refusal (403 with an XML body) of a request
    that names an ``X-Amz-Target`` is re-encoded as that protocol's JSON error.
    """

    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        if not environ.get("HTTP_X_AMZ_TARGET"):
            return self.app(environ, start_response)
        captured = {}

        def capture(status, headers, exc_info=None):
            captured["status"], captured["headers"] = status, headers
            return lambda data: None

        result = self.app(environ, capture)
        try:
            body = b"".join(result)
        finally:
            if hasattr(result, "close"):
                result.close()
        status, headers = captured["status"], captured["headers"]
        if status.startswith("403") and body.lstrip().startswith(b"<"):
            import re

            text = body.decode("utf-8", "replace")
            code = re.search(r"<Code>(.*?)</Code>", text)
            message = re.search(r"<Message>(.*?)</Message>", text)
            code = code.group(1) if code else "AccessDenied"
            if code == "AccessDenied":
                code = "AccessDeniedException"
            body = json.dumps(
                {"__type": code, "message": message.group(1) if message else text}
            ).encode("utf-8")
            headers = [
                (k, v)
                for k, v in headers
                if k.lower() not in ("content-type", "content-length")
            ]
            headers += [
                ("Content-Type", "application/x-amz-json-1.1"),
                ("Content-Length", str(len(body))),
                ("x-amzn-ErrorType", code),
            ]
        start_response(status, headers)
        return [body]


# --- ECS: UpdateService starts a new deployment -------------------------------


def new_deployment_on_update():
    """Make moto's UpdateService start a new deployment of a new task definition.

    ECS starts a new deployment (a new id, the new revision) whenever
    UpdateService changes the task definition; moto 5.2.5 keeps the service's
    first deployment, with the first revision, for good. Moto completes
    deployments at once, so the new one replaces the old as PRIMARY, exactly as
    moto itself does for ``forceNewDeployment``.
    """
    from moto.ecs.models import EC2ContainerServiceBackend
    from moto.moto_api._internal import mock_random
    from moto.core.utils import utcnow

    original = EC2ContainerServiceBackend.update_service

    def update_service(self, service_properties):
        wanted = service_properties.get("task_definition")
        service = original(self, service_properties)
        if wanted and service.deployments:
            arn = self.describe_task_definition(wanted).arn
            deployment = service.deployments[0]
            if deployment.get("taskDefinition") != arn:
                now = utcnow()
                deployment["id"] = f"ecs-svc/{mock_random.randint(0, 32**12)}"
                deployment["taskDefinition"] = arn
                deployment["createdAt"] = now
                deployment["updatedAt"] = now
                if deployment.get("rolloutState") == "COMPLETED":
                    deployment["rolloutStateReason"] = (
                        f"ECS deployment {deployment['id']} completed."
                    )
                service.task_definition = arn
        return service

    EC2ContainerServiceBackend.update_service = update_service


# --- ECS: the resource IAM authorizes ----------------------------------------


def ecs_resource_arns():
    """Authorize ECS service and task calls, and SSM parameter calls, against their
    resource's ARN.

    With IAM enforced (``INITIAL_NO_AUTH_ACTION_COUNT``, or a POST to
    ``/moto-api/reset-auth``), moto 5.2.5 authorizes every ECS call against the
    resource ``*``, so a policy scoped to a service's ARN, as AWS evaluates it,
    is refused. For the calls AWS scopes to one service or task, the resource
    checked is that ARN, as on AWS; the others stay ``*`` (AWS does not scope
    ``RegisterTaskDefinition``, ``DescribeTaskDefinition`` or ``ListTasks``).
    """
    from moto.ecs.responses import EC2ContainerServiceResponse

    def determine_resource(self):
        try:
            body = json.loads(self.body or "{}")
        except ValueError:
            return "*"
        prefix = f"arn:aws:ecs:{self.region}:{self.current_account}"
        cluster = (body.get("cluster") or "default").split("/")[-1]
        action = self._get_action()
        if action in ("UpdateService", "DeleteService") and body.get("service"):
            return f"{prefix}:service/{cluster}/{body['service'].split('/')[-1]}"
        if action == "DescribeServices" and len(body.get("services") or []) == 1:
            return f"{prefix}:service/{cluster}/{body['services'][0].split('/')[-1]}"
        if action == "DescribeTasks" and len(body.get("tasks") or []) == 1:
            return f"{prefix}:task/{cluster}/{body['tasks'][0].split('/')[-1]}"
        return "*"

    EC2ContainerServiceResponse._determine_resource = determine_resource

    from moto.ssm.responses import SimpleSystemManagerResponse

    def ssm_resource(self):
        try:
            body = json.loads(self.body or "{}")
        except ValueError:
            return "*"
        name = body.get("Name") or body.get("Path") or (body.get("Names") or [None])[0]
        if not name:
            return "*"
        return f"arn:aws:ssm:{self.region}:{self.current_account}:parameter/{name.lstrip('/')}"

    SimpleSystemManagerResponse._determine_resource = ssm_resource


# --- process lifecycle ------------------------------------------------------


def exit_on_stdin_eof():
    """Exit the whole process once stdin reaches EOF (the parent is gone)."""
    try:
        while os.read(0, 65536):
            pass
    except OSError:  # stdin closed or invalid: treat it as EOF
        pass
    os._exit(0)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 = any free port")
    args = parser.parse_args()

    new_deployment_on_update()
    ecs_resource_arns()
    app = JsonAuthErrors(CborBridge(DomainDispatcherApplication(create_backend_app)))
    server = make_server(
        args.host, args.port, app, threaded=True, request_handler=MotoRequestHandler
    )
    # Moto builds some self-referencing URLs from MOTO_PORT.
    os.environ.setdefault("MOTO_PORT", str(server.port))

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    signal.signal(signal.SIGINT, lambda *_: sys.exit(0))
    threading.Thread(target=exit_on_stdin_eof, daemon=True).start()

    sys.stdout.write(f"READY {server.port}\n")
    sys.stdout.flush()
    # From now on stdout (Python and fd 1) goes to stderr: werkzeug's access
    # log already does, and stray prints from moto must not reach the parent.
    os.dup2(2, 1)
    sys.stdout = sys.stderr

    try:
        server.serve_forever()
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
