"""Realistic API Gateway + Lambda log traffic for the demo, the tests and the benchmark.

``Traffic`` produces the lines a REST (or HTTP) API and its Lambda functions write for each request,
in every format apilogs reads (execution log, JSON access log, Python and Node text, Lambda JSON,
Powertools JSON, START/END/REPORT, ``print()`` lines, a Python stack trace), with the ground truth of
which lines belong to which request. Execution environments are simulated per function: a stream
serves one invocation at a time, a new stream starts cold (``INIT_START`` + ``Init Duration``).

``write_events`` sends events through ``put_log_events`` in as few calls as the limits allow
(10,000 events or 1 MB per call, chronological within a call).
"""

from __future__ import annotations

import base64
import json
import logging
import random
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

log = logging.getLogger(__name__)

LogFormat = Literal["python", "node", "json", "powertools"]
# How a request fails (``/apilogs errors``): a Lambda error (502), an integration timeout (504), a
# configuration error (500: no permission to invoke), a throttle (429), an authorizer deny (403), or a
# function that logs an ERROR and still returns 200 ("handled").
FailureKind = Literal["lambda_error", "timeout", "config", "throttle", "deny", "handled"]
FAILURE_STATUS: dict[str, int] = {
    "lambda_error": 502, "timeout": 504, "config": 500, "throttle": 429, "deny": 403, "handled": 200,
}  # fmt: skip
AccessFormat = Literal["json", "clf", "csv", "xml"]

_GREGORIAN_OFFSET = 0x01B21DD213814000
MAX_BATCH_EVENTS = 10_000
MAX_BATCH_BYTES = 1_048_576
EVENT_OVERHEAD = 26  # bytes CloudWatch adds per event when counting a batch


@dataclass(frozen=True)
class RawEvent:
    group: str
    stream: str
    timestamp: int
    message: str


@dataclass(frozen=True)
class FunctionSpec:
    name: str
    log_format: LogFormat = "python"
    log_group: str = ""
    qualifier: str = ""  # alias the API invokes (e.g. through a stage variable)
    version: str = "$LATEST"  # what START says and the stream is named after
    memory_mb: int = 128

    @property
    def group(self) -> str:
        return self.log_group or f"/aws/lambda/{self.name}"


@dataclass
class SimRequest:
    """One request and the truth about it."""

    api_request_id: str
    extended_id: str
    method: str
    path: str
    status: int
    at_ms: int
    lambda_ids: dict[str, str] = field(default_factory=dict)  # function name -> Lambda request id
    authorizer_lambda_id: str = ""
    xray_trace_id: str = ""
    events: list[RawEvent] = field(default_factory=list)

    def groups(self) -> set[str]:
        return {e.group for e in self.events}


def uuid1_at(ms: int, rng: random.Random) -> str:
    """A version 1 UUID whose time field is ``ms`` (what API Gateway request ids are)."""
    ticks = ms * 10_000 + rng.randrange(10_000) + _GREGORIAN_OFFSET
    time_low = ticks & 0xFFFFFFFF
    time_mid = (ticks >> 32) & 0xFFFF
    time_hi = ((ticks >> 48) & 0x0FFF) | 0x1000
    clock_seq = rng.getrandbits(14) | 0x8000
    node = rng.getrandbits(48)
    return str(
        uuid.UUID(
            fields=(time_low, time_mid, time_hi, clock_seq >> 8, clock_seq & 0xFF, node),
        )
    )


def uuid4(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def short_id(rng: random.Random) -> str:
    """An extended / HTTP API request id: 16 base64 characters ending in '='."""
    return base64.urlsafe_b64encode(rng.randbytes(11)).decode()


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


@dataclass
class _Environment:
    stream: str
    started: int = 0
    busy_until: int = 0
    invocations: int = 0


class Traffic:
    """Generates requests against one API stage and its functions."""

    def __init__(
        self,
        *,
        api_id: str,
        stage: str,
        functions: Sequence[FunctionSpec],
        routes: dict[str, str],  # "GET /orders" -> function name
        authorizer: FunctionSpec | None = None,
        kind: Literal["REST", "HTTP"] = "REST",
        access_log_group: str = "",
        region: str = "us-east-1",
        account: str = "123456789012",
        seed: int = 7,
        exec_streams: int = 4,
        max_environments: int = 3,
        authorizer_logs_api_id: bool = False,
        environment_lifetime_ms: int = 2 * 3600 * 1000,
        access_format: AccessFormat = "json",
    ) -> None:
        self.api_id = api_id
        self.stage = stage
        self.functions = {f.name: f for f in functions}
        self.routes = routes
        self.authorizer = authorizer
        self.kind = kind
        self.access_log_group = access_log_group
        self.region = region
        self.account = account
        self.rng = random.Random(seed)
        self.exec_group = f"API-Gateway-Execution-Logs_{api_id}/{stage}" if kind == "REST" else ""
        self.exec_streams = [self._hex(32) for _ in range(exec_streams)]
        self.max_environments = max_environments
        self.authorizer_logs_api_id = authorizer_logs_api_id
        self.environment_lifetime_ms = environment_lifetime_ms
        self.access_format = access_format
        self._environments: dict[str, list[_Environment]] = defaultdict(list)
        self._authorizer_cache_until = 0
        self.last_end = 0

    def _hex(self, length: int) -> str:
        return "".join(self.rng.choice("0123456789abcdef") for _ in range(length))

    def _environment(self, spec: FunctionSpec, at_ms: int) -> tuple[_Environment, bool]:
        pool = self._environments[spec.name]
        # Lambda recycles execution environments: an old idle one is gone, its successor starts cold
        # in a new stream.
        pool[:] = [
            env
            for env in pool
            if env.busy_until >= at_ms or at_ms - env.started < self.environment_lifetime_ms
        ]
        free = [env for env in pool if env.busy_until < at_ms]
        if free:
            return self.rng.choice(free), False
        if len(pool) >= self.max_environments:
            # Busy everywhere: the request waits for the environment that frees first.
            return min(pool, key=lambda env: env.busy_until), False
        day = datetime.fromtimestamp(at_ms / 1000, UTC).strftime("%Y/%m/%d")
        env = _Environment(f"{day}/[{spec.version}]{self._hex(32)}", started=at_ms)
        pool.append(env)
        return env, True

    # -- one request ------------------------------------------------------------------------------
    def request(
        self,
        at_ms: int,
        route: str,
        *,
        fail: bool = False,
        use_authorizer: bool = False,
        duration_ms: int | None = None,
        failure: FailureKind | None = None,
    ) -> SimRequest:
        if failure == "lambda_error":
            fail, failure = True, None
        if failure in {"throttle", "deny", "config"}:
            return self._gateway_failure(at_ms, route, failure or "")
        if failure == "timeout":
            duration_ms = 29_000 + self.rng.randint(5, 900)
        method, path = route.split(" ", 1)
        function = self.functions[self.routes[route]]
        rng = self.rng
        request_id = uuid1_at(at_ms, rng) if self.kind == "REST" else short_id(rng)
        extended = short_id(rng)
        trace = f"1-{at_ms // 1000:08x}-{self._hex(24)}"
        sim = SimRequest(request_id, extended, method, path, 502 if fail else 200, at_ms, xray_trace_id=trace)
        t = at_ms
        exec_stream = rng.choice(self.exec_streams)
        lines: list[tuple[int, str]] = []

        def ex(text: str, step: int = 0) -> None:
            nonlocal t
            t += step
            lines.append((t, f"({request_id}) {text}"))

        if self.kind == "REST":
            ex(f"Extended Request Id: {extended}")
            if use_authorizer and self.authorizer is not None and at_ms >= self._authorizer_cache_until:
                auth = self.authorizer
                ex(f"Starting authorizer: {self._hex(6)} for request: {request_id}")
                ex("Incoming identity: ****************************************************ab12")
                ex(f"Endpoint request URI: {self._invoke_uri(auth)}", 1)
                ex(
                    f"Endpoint request headers: {{x-amzn-lambda-integration-tag={request_id}, "
                    f"Authorization=************************************************************************a1f3, "
                    f"X-Amz-Date={iso(t)[:19].replace('-', '').replace(':', '')}Z, x-amzn-apigateway-api-id="
                    f"{self.api_id}, Accept=application/json, User-Agent=AmazonAPIGateway_{self.api_id}}}"
                )
                ex(
                    'Endpoint request body after transformations: {"type":"TOKEN","methodArn":"arn:aws:execute-api:'
                    f'{self.region}:{self.account}:{self.api_id}/{self.stage}/{method}{path}",'
                    '"authorizationToken":"****"}'
                )
                ex(f"Sending request to {self._invoke_uri(auth)}")
                auth_start = t + rng.randint(1, 3)
                auth_duration = rng.randint(3, 12)
                sim.authorizer_lambda_id = uuid4(rng)
                sim.events.extend(
                    self._invocation(
                        auth, sim.authorizer_lambda_id, auth_start, auth_duration, sim, authorizer=True
                    )
                )
                t = self.last_end + rng.randint(1, 3)
                ex(
                    'Authorizer result body before parsing: {"principalId":"user-42","policyDocument":'
                    '{"Version":"2012-10-17","Statement":[{"Action":"execute-api:Invoke","Effect":"Allow",'
                    f'"Resource":"arn:aws:execute-api:{self.region}:{self.account}:{self.api_id}/*"}}]}}}}'
                )
                ex("Using valid authorizer policy for principal: *****42")
                ex("Successfully completed authorizer execution")
                self._authorizer_cache_until = t + 300_000
            ex(
                f"Verifying Usage Plan for request: {request_id}. API Key:  API Stage: {self.api_id}/{self.stage}",
                1,
            )
            ex(f"API Key  authorized because method '{method} {path}' does not require API Key.")
            ex(f"Starting execution for request: {request_id}")
            ex(f"HTTP Method: {method}, Resource Path: {path}")
            ex("Method request path: {}")
            ex("Method request query string: {}")
            ex(
                "Method request headers: {Accept=application/json, Host="
                f"{self.api_id}.execute-api.{self.region}.amazonaws.com, User-Agent=curl/8.5.0, "
                f"X-Amzn-Trace-Id=Root={trace}}}"
            )
            ex("Method request body before transformations: ")
            ex(f"Endpoint request URI: {self._invoke_uri(function)}")
            ex(
                f"Endpoint request headers: {{x-amzn-lambda-integration-tag={request_id}, Authorization=****"
                f"****************************************************3f2a, X-Amz-Date=20240501T120000Z, "
                f"x-amzn-apigateway-api-id={self.api_id}, Accept=application/json, "
                f"User-Agent=AmazonAPIGateway_{self.api_id}, X-Amzn-Trace-Id={trace}}}"
            )
            ex(
                f'Endpoint request body after transformations: {{"resource":"{path}","path":"{path}",'
                f'"httpMethod":"{method}","requestContext":{{"requestId":"{request_id}"}}}}'
            )
            ex(f"Sending request to {self._invoke_uri(function)}")
        lambda_id = uuid4(rng)
        sim.lambda_ids[function.name] = lambda_id
        start = t + rng.randint(2, 6)
        duration = duration_ms if duration_ms is not None else rng.randint(8, 180)
        sim.events.extend(
            self._invocation(function, lambda_id, start, duration, sim, fail=fail, failure=failure)
        )
        t = self.last_end + rng.randint(2, 5)
        if failure == "timeout":  # API Gateway gave up at 29 s; the function ran on to its own timeout
            sim.status = 504
            t = at_ms + 29_000 + rng.randint(1, 40)
        latency = t - at_ms
        if self.kind == "REST":
            if failure != "timeout":
                integration_latency = t - lines[-1][0]
                ex(f"Received response. Status: 200, Integration latency: {integration_latency} ms")
                function_error = ", X-Amz-Function-Error=Unhandled" if fail else ""
                ex(
                    f"Endpoint response headers: {{Date={datetime.fromtimestamp(t / 1000, UTC):%a, %d %b %Y %H:%M:%S} "
                    f"GMT, Content-Type=application/json, Content-Length=112, Connection=keep-alive, "
                    f"x-amzn-RequestId={lambda_id}{function_error}, x-amzn-Remapped-Content-Length=0, "
                    f"X-Amz-Executed-Version={function.version.replace('$LATEST', '$LATEST')}, "
                    f"X-Amzn-Trace-Id=root={trace};sampled=0}}"
                )
            if failure == "timeout":
                ex("Execution failed due to a timeout error")
                ex("Method completed with status: 504")
            elif fail:
                ex(
                    'Endpoint response body before transformations: {"errorMessage": "\'customer_id\'", '
                    '"errorType": "KeyError", "requestId": "' + lambda_id + '", "stackTrace": ["  File '
                    '\\"/var/task/app.py\\", line 42, in handler\\n    customer = event[\\"customer_id\\"]\\n"]}'
                )
                ex(
                    "Lambda execution failed with status 200 due to customer function error: 'customer_id'. "
                    f"Lambda request id: {lambda_id}"
                )
                ex("Method completed with status: 502")
            else:
                ex(
                    'Endpoint response body before transformations: {"statusCode":200,"body":"{\\"ok\\":true}"}'
                )
                ex('Method response body after transformations: {"ok":true}')
                ex(
                    "Method response headers: {X-Amzn-Trace-Id=Root="
                    + trace
                    + ", Content-Type=application/json}"
                )
                ex("Successfully completed execution")
                ex("Method completed with status: 200")
            ex(f"AWS Integration Endpoint RequestId : {lambda_id}")
            ex(f"X-ray Tracing ID : {trace}")
            sim.events.extend(RawEvent(self.exec_group, exec_stream, ts, text) for ts, text in lines)
        if self.access_log_group:
            record = {
                "requestId": request_id,
                "extendedRequestId": extended if self.kind == "REST" else None,
                "ip": f"203.0.113.{rng.randint(1, 254)}",
                "requestTime": datetime.fromtimestamp(at_ms / 1000, UTC).strftime("%d/%b/%Y:%H:%M:%S +0000"),
                "httpMethod": method,
                "routeKey": route if self.kind == "HTTP" else None,
                "resourcePath": path,
                "status": str(sim.status),
                "protocol": "HTTP/1.1",
                "responseLength": "112",
                "integrationRequestId": lambda_id,
                "integrationLatency": str(duration + 5),
                "responseLatency": str(latency),
                "errorMessage": "Endpoint request timed out" if failure == "timeout" else None,
            }
            sim.events.append(self._access_event(record, t))
        return sim

    def _access_event(self, record: dict[str, Any], t: int) -> RawEvent:
        """The access-log line in the stage's format: JSON, or the console's CLF, CSV and XML presets."""
        clean = {k: v for k, v in record.items() if v is not None}
        g = lambda key: str(clean.get(key, "-"))  # noqa: E731
        if self.access_format == "clf":
            message = (
                f'{g("ip")} - - [{g("requestTime")}] "{g("httpMethod")} {g("resourcePath")} {g("protocol")}" '
                f"{g('status')} {g('responseLength')} {g('requestId')} {g('extendedRequestId')}"
            )
        elif self.access_format == "csv":
            message = ",".join(
                g(k) for k in ("ip", "caller", "user", "requestTime", "httpMethod", "resourcePath", "protocol",
                               "status", "responseLength", "requestId", "extendedRequestId")
            )  # fmt: skip
        elif self.access_format == "xml":
            inner = "".join(
                f"<{k}>{g(k)}</{k}>"
                for k in ("extendedRequestId", "ip", "requestTime", "httpMethod", "resourcePath", "status",
                          "protocol", "responseLength", "integrationRequestId")
            )  # fmt: skip
            message = f'<request id="{g("requestId")}">{inner}</request>'
        else:
            message = json.dumps(clean)
        return RawEvent(self.access_log_group, f"{self.api_id}-access", t, message)

    def _gateway_failure(self, at_ms: int, route: str, failure: str) -> SimRequest:
        """A request API Gateway answered itself: throttled (429), denied by the authorizer (403), or a
        configuration error before the integration (500: no permission to invoke the function)."""
        method, path = route.split(" ", 1)
        rng = self.rng
        request_id = uuid1_at(at_ms, rng) if self.kind == "REST" else short_id(rng)
        extended = short_id(rng)
        sim = SimRequest(request_id, extended, method, path, FAILURE_STATUS[failure], at_ms)
        t = at_ms
        lines: list[tuple[int, str]] = []

        def ex(text: str) -> None:
            nonlocal t
            t += 1
            lines.append((t, f"({request_id}) {text}"))

        ex(f"Extended Request Id: {extended}")
        error = {"throttle": "Too Many Requests", "deny": "User is not authorized to access this resource "
                 "with an explicit deny", "config": "Internal server error"}[failure]  # fmt: skip
        if failure == "throttle":
            ex('Gateway response body: {"message":"Too Many Requests"}')
            ex("Gateway response type: THROTTLED with status code: 429")
        elif failure == "deny":
            auth = self.authorizer
            ex(f"Starting authorizer: {self._hex(6)} for request: {request_id}")
            if auth is not None:
                ex(f"Endpoint request URI: {self._invoke_uri(auth)}")
                sim.authorizer_lambda_id = uuid4(rng)
                sim.events.extend(
                    self._invocation(auth, sim.authorizer_lambda_id, t + 2, 5, sim, authorizer=True)
                )
                t = self.last_end + 1
            ex(
                'Authorizer result body before parsing: {"principalId":"user-13","policyDocument":'
                '{"Version":"2012-10-17","Statement":[{"Action":"execute-api:Invoke","Effect":"Deny",'
                f'"Resource":"arn:aws:execute-api:{self.region}:{self.account}:{self.api_id}/*"}}]}}}}'
            )
            ex("Using valid authorizer policy for principal: *****13")
            ex("Successfully completed authorizer execution")
            ex("The client is not authorized to perform this operation.")
            ex('Gateway response body: {"Message":"User is not authorized to access this resource with an '
               'explicit deny"}')  # fmt: skip
            ex("Gateway response type: ACCESS_DENIED with status code: 403")
        else:
            function = self.functions[self.routes[route]]
            ex(f"Starting execution for request: {request_id}")
            ex(f"HTTP Method: {method}, Resource Path: {path}")
            ex(f"Endpoint request URI: {self._invoke_uri(function)}")
            ex("Execution failed due to configuration error: Invalid permissions on Lambda function")
            ex("Method completed with status: 500")
        if self.kind == "REST" and self.exec_group:
            stream = rng.choice(self.exec_streams)
            sim.events.extend(RawEvent(self.exec_group, stream, ts, text) for ts, text in lines)
        if self.access_log_group:
            record = {
                "requestId": request_id,
                "extendedRequestId": extended if self.kind == "REST" else None,
                "ip": f"203.0.113.{rng.randint(1, 254)}",
                "requestTime": datetime.fromtimestamp(at_ms / 1000, UTC).strftime("%d/%b/%Y:%H:%M:%S +0000"),
                "httpMethod": method,
                "routeKey": route if self.kind == "HTTP" else None,
                "resourcePath": path,
                "status": str(sim.status),
                "protocol": "HTTP/1.1",
                "responseLength": "64",
                "responseLatency": str(t - at_ms),
                "errorMessage": error,
            }
            sim.events.append(self._access_event(record, t + 1))
        self.last_end = max(self.last_end, t + 1)
        return sim

    def _invoke_uri(self, spec: FunctionSpec) -> str:
        qualifier = f":{spec.qualifier}" if spec.qualifier else ""
        return (
            f"https://lambda.{self.region}.amazonaws.com/2015-03-31/functions/arn:aws:lambda:{self.region}:"
            f"{self.account}:function:{spec.name}{qualifier}/invocations"
        )

    # -- one invocation ---------------------------------------------------------------------------
    def _invocation(
        self,
        spec: FunctionSpec,
        lambda_id: str,
        start: int,
        duration: int,
        sim: SimRequest,
        *,
        fail: bool = False,
        authorizer: bool = False,
        failure: str | None = None,
    ) -> list[RawEvent]:
        rng = self.rng
        env, cold = self._environment(spec, start)
        start = max(start, env.busy_until + 1)
        env.invocations += 1
        group, stream = spec.group, env.stream
        out: list[RawEvent] = []
        init_ms = round(rng.uniform(150, 450), 2) if cold else None
        t = start

        def put(text: str, step: int = 0) -> None:
            nonlocal t
            t += step
            out.append(RawEvent(group, stream, t, text))

        if cold:
            # The environment starts when the invocation arrives; START follows once init is done.
            out.append(
                RawEvent(
                    group,
                    stream,
                    start,
                    "INIT_START Runtime Version: python:3.12.v38\tRuntime Version ARN: arn:aws:lambda:"
                    f"{self.region}::runtime:{self._hex(64)}",
                )
            )
            out.append(RawEvent(group, stream, start + 20, "cold start: loading configuration"))
            start += int(init_ms or 0) + 5
        t = start
        json_format = spec.log_format == "json"
        if json_format:
            put(
                json.dumps(
                    {
                        "time": iso(t),
                        "type": "platform.start",
                        "record": {"requestId": lambda_id, "version": spec.version},
                    }
                )
            )
        else:
            put(f"START RequestId: {lambda_id} Version: {spec.version}")
        api_id = sim.api_request_id
        steps = max(1, duration // 4)
        if authorizer:
            # A TOKEN authorizer is not told the API request id; a REQUEST authorizer may log it.
            messages = [f"checking bearer token for {sim.method} {sim.path}"]
            if self.authorizer_logs_api_id:
                messages.append(f"API Gateway Request ID: {api_id}")
            printed = f"token signature ok (kid {self._hex(4)})"
        else:
            messages = [
                f"API Gateway Request ID: {api_id} Lambda Request ID: {lambda_id}",
                f"{sim.method} {sim.path} for user-42",
            ]
            printed = f"fetched {rng.randint(1, 40)} rows from orders table in {rng.randint(2, 30)} ms"
        for text in messages:
            put(self._app_line(spec, "INFO", text, lambda_id, api_id, t + 1, sim), 1)
        put(printed, steps)
        if fail:
            if spec.log_format in {"python", "powertools"}:
                put(
                    "[ERROR] KeyError: 'customer_id'\nTraceback (most recent call last):\n"
                    '  File "/var/task/app.py", line 42, in handler\n'
                    '    customer = event["customer_id"]',
                    steps,
                )
            elif spec.log_format == "json":
                put(
                    json.dumps(
                        {
                            "timestamp": iso(t),
                            "level": "ERROR",
                            "message": {
                                "errorMessage": "'customer_id'",
                                "errorType": "KeyError",
                                "requestId": lambda_id,
                                "stackTrace": ['  File "/var/task/app.py", line 42, in handler\n'],
                            },
                            "requestId": lambda_id,
                        }
                    ),
                    steps,
                )
            else:
                put(
                    f"{iso(t)}\t{lambda_id}\tERROR\tInvoke Error \t"
                    + json.dumps(
                        {
                            "errorType": "TypeError",
                            "errorMessage": "Cannot read properties of undefined (reading 'customer_id')",
                            "stack": [
                                "TypeError: Cannot read properties of undefined",
                                "    at handler (/var/task/index.js:42:20)",
                            ],
                        }
                    ),
                    steps,
                )
        elif failure == "timeout":
            t = start + duration
            put(f"{iso(t)} {lambda_id} Task timed out after {duration / 1000:.2f} seconds")
        elif failure == "handled":
            # The function logs its error and still answers 200 (a fallback, a retry queued).
            text = "payment provider declined the charge: card_declined"
            put(self._app_line(spec, "ERROR", text, lambda_id, api_id, t + steps, sim), steps)
        else:
            done = "allow user-42" if authorizer else "response ready"
            put(self._app_line(spec, "INFO", done, lambda_id, api_id, t + steps, sim), steps)
        end = max(t + 1, start + duration)
        t = end
        billed = -(-duration // 1)  # whole ms
        max_memory = rng.randint(60, spec.memory_mb)
        status = "error" if fail else "timeout" if failure == "timeout" else "success"
        if json_format:
            metrics: dict[str, Any] = {
                "durationMs": float(duration),
                "billedDurationMs": billed,
                "memorySizeMB": spec.memory_mb,
                "maxMemoryUsedMB": max_memory,
            }
            if init_ms:
                metrics["initDurationMs"] = init_ms
            put(
                json.dumps(
                    {
                        "time": iso(t),
                        "type": "platform.report",
                        "record": {"requestId": lambda_id, "metrics": metrics, "status": status},
                    }
                )
            )
        else:
            put(f"END RequestId: {lambda_id}")
            init = f"\tInit Duration: {init_ms} ms" if init_ms else ""
            error_status = "\tStatus: error\tError Type: Runtime.Unknown" if fail else ""
            put(
                f"REPORT RequestId: {lambda_id}\tDuration: {duration:.2f} ms\tBilled Duration: {billed} ms\t"
                f"Memory Size: {spec.memory_mb} MB\tMax Memory Used: {max_memory} MB{init}{error_status}\t"
            )
        env.busy_until = t + 1
        self.last_end = t
        return out

    def _app_line(
        self, spec: FunctionSpec, level: str, text: str, lambda_id: str, api_id: str, t: int, sim: SimRequest
    ) -> str:
        if spec.log_format == "python":
            return f"[{level}]\t{iso(t)}\t{lambda_id}\t{text}\n"
        if spec.log_format == "node":
            return f"{iso(t)}\t{lambda_id}\t{level}\t{text}"
        if spec.log_format == "json":
            return json.dumps(
                {
                    "timestamp": iso(t),
                    "level": level,
                    "message": text,
                    "logger": "root",
                    "requestId": lambda_id,
                }
            )
        return json.dumps(
            {
                "level": level,
                "location": "handler:27",
                "message": text,
                "timestamp": iso(t).replace("T", " ").replace("Z", "+0000"),
                "service": spec.name,
                "cold_start": False,
                "function_name": spec.name,
                "function_memory_size": str(spec.memory_mb),
                "function_arn": f"arn:aws:lambda:{self.region}:{self.account}:function:{spec.name}",
                "function_request_id": lambda_id,
                "correlation_id": api_id,
                "xray_trace_id": sim.xray_trace_id,
            }
        )


# -- writing --------------------------------------------------------------------------------------


def batches(events: Iterable[RawEvent]) -> Iterable[tuple[str, str, list[dict[str, Any]]]]:
    """(group, stream, logEvents) batches within PutLogEvents' limits, chronological in each."""
    by_stream: dict[tuple[str, str], list[RawEvent]] = defaultdict(list)
    for event in events:
        by_stream[(event.group, event.stream)].append(event)
    for (group, stream), items in by_stream.items():
        items.sort(key=lambda e: e.timestamp)
        batch: list[dict[str, Any]] = []
        size = 0
        for event in items:
            event_size = len(event.message.encode()) + EVENT_OVERHEAD
            if batch and (len(batch) >= MAX_BATCH_EVENTS or size + event_size > MAX_BATCH_BYTES):
                yield group, stream, batch
                batch, size = [], 0
            batch.append({"timestamp": event.timestamp, "message": event.message})
            size += event_size
        if batch:
            yield group, stream, batch


def write_events(logs: Any, events: Iterable[RawEvent], *, known: set[tuple[str, str]] | None = None) -> int:
    """Create the groups and streams needed and put every event; returns the number of calls.

    ``known`` holds the (group, stream) pairs already created, kept across calls by a caller that writes
    again and again (``LiveTraffic``), and is updated."""
    calls = 0
    streams: set[tuple[str, str]] = known if known is not None else set()
    groups: set[str] = {group for group, _ in streams}
    for group, stream, batch in batches(events):
        if group not in groups:
            with suppress(logs.exceptions.ResourceAlreadyExistsException):
                logs.create_log_group(logGroupName=group)
            groups.add(group)
        if (group, stream) not in streams:
            with suppress(logs.exceptions.ResourceAlreadyExistsException):
                logs.create_log_stream(logGroupName=group, logStreamName=stream)
            streams.add((group, stream))
        answer = logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=batch)
        if answer.get("rejectedLogEventsInfo"):
            raise ValueError(f"CloudWatch rejected events for {group}: {answer['rejectedLogEventsInfo']}")
        calls += 1
    return calls


# -- live traffic ---------------------------------------------------------------------------------


class LiveTraffic:
    """Requests arriving now, for the demo: every few seconds one more request of ``traffic`` (a route
    at random, now and then a failure), its events written at once into the API's log groups, so that a
    tail (``/apilogs tail``, ``opsbot apilogs tail``) has new lines to show as a real API would.

    The events are those ``Traffic`` writes for the seeded hour, so every format apilogs reads keeps
    coming (execution log, access log, Python/Node/JSON/Powertools lines, START/END/REPORT, tracebacks);
    ``Traffic`` keeps its execution environments, so streams continue and a new one starts cold. A request
    is dated ``lag_ms`` in the past so that its last line (the access log, a REPORT) is not in the future
    when a tail polls. ``requests`` lists what was written, with the truth about each request.
    """

    def __init__(
        self,
        traffic: Traffic,
        logs: Any,
        *,
        routes: Sequence[str],
        authorized: Sequence[str] = (),
        interval: tuple[float, float] = (1.0, 3.0),
        failure_rate: float = 0.12,
        lag_ms: int = 1500,
        wall_ms: Callable[[], int] = lambda: int(time.time() * 1000),
    ) -> None:
        self.traffic = traffic
        self.logs = logs
        self.routes = list(routes)
        self.authorized = set(authorized)
        self.interval = interval
        self.failure_rate = failure_rate
        self.lag_ms = lag_ms
        self.wall_ms = wall_ms
        self.requests: list[SimRequest] = []
        self.failures = 0  # writes that failed (the demo goes on; a test can tell)
        self._known: set[tuple[str, str]] = set()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def step(self) -> SimRequest:
        """One request now: generated, written, remembered."""
        rng = self.traffic.rng
        route = rng.choice(self.routes)
        # Never before the traffic written so far: CloudWatch wants each stream's events in order.
        at = max(self.wall_ms() - self.lag_ms, self.traffic.last_end + 1)
        request = self.traffic.request(
            at, route, fail=rng.random() < self.failure_rate, use_authorizer=route in self.authorized
        )
        write_events(self.logs, request.events, known=self._known)
        self.requests.append(request)
        return request

    def start(self) -> LiveTraffic:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="demo-api-traffic", daemon=True)
            self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.traffic.rng.uniform(*self.interval)):
            try:
                self.step()
            except Exception:  # the embedded AWS going away at the end of the demo, say: not the demo's end
                self.failures += 1
                log.debug("live demo traffic could not be written", exc_info=True)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
