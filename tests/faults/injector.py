"""Record every AWS call a flow makes, and make one of them fail.

The patch sits on ``BaseClient._make_api_call``, above botocore's retries: an injected fault is what the
caller sees once botocore has given up (throttling that outlasted the retries, a 5xx, a read timeout), or a
conditional write that lost to someone else's concurrent write.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from botocore.client import BaseClient
from botocore.exceptions import ClientError, ReadTimeoutError

CONDITIONAL_WRITES = {"PutItem", "UpdateItem", "DeleteItem"}


@dataclass(frozen=True)
class AwsCall:
    service: str
    operation: str
    conditional: bool

    def __str__(self) -> str:
        return f"{self.service}:{self.operation}" + (" (conditional)" if self.conditional else "")


def _throttling(call: AwsCall) -> Exception:
    code = "ProvisionedThroughputExceededException" if call.service == "dynamodb" else "ThrottlingException"
    return ClientError(
        {"Error": {"Code": code, "Message": "Rate exceeded"}, "ResponseMetadata": {"HTTPStatusCode": 400}},
        call.operation,
    )


def _server_error(call: AwsCall) -> Exception:
    code = "InternalServerError" if call.service == "dynamodb" else "ServiceUnavailable"
    return ClientError(
        {
            "Error": {"Code": code, "Message": "Service unavailable"},
            "ResponseMetadata": {"HTTPStatusCode": 503},
        },
        call.operation,
    )


def _timeout(call: AwsCall) -> Exception:
    return ReadTimeoutError(endpoint_url=f"https://{call.service}.us-east-1.amazonaws.com/")


def _condition_failed(call: AwsCall) -> Exception:
    return ClientError(
        {
            "Error": {"Code": "ConditionalCheckFailedException", "Message": "The conditional request failed"},
            "ResponseMetadata": {"HTTPStatusCode": 400},
        },
        call.operation,
    )


FAULTS: Mapping[str, Callable[[AwsCall], Exception]] = {
    "throttling": _throttling,
    "server-error": _server_error,
    "timeout": _timeout,
    "condition-failed": _condition_failed,
}


def faults_for(call: AwsCall) -> list[str]:
    """The faults that call can meet: a conditional-check failure only where there is a condition."""
    return [name for name in FAULTS if name != "condition-failed" or call.conditional]


class Injector:
    """While armed, records calls; with ``fail_at`` set, the call at that index raises ``fault``."""

    def __init__(self) -> None:
        self.calls: list[AwsCall] = []
        self.armed = False
        self.fail_at: int | None = None
        self.fault = ""
        self.injected: AwsCall | None = None
        self._lock = threading.Lock()

    def arm(self, *, fail_at: int | None = None, fault: str = "") -> None:
        with self._lock:
            self.calls = []
            self.armed = True
            self.fail_at = fail_at
            self.fault = fault
            self.injected = None

    def disarm(self) -> None:
        with self._lock:
            self.armed = False
            self.fail_at = None

    def before(self, client: Any, operation: str, params: Mapping[str, Any]) -> None:
        service = client.meta.service_model.service_name
        conditional = operation in CONDITIONAL_WRITES and "ConditionExpression" in params
        call = AwsCall(service, operation, conditional)
        with self._lock:
            if not self.armed:
                return
            index = len(self.calls)
            self.calls.append(call)
            if index != self.fail_at:
                return
            self.injected = call
        raise FAULTS[self.fault](call)


@contextmanager
def injector() -> Iterator[Injector]:
    recorder = Injector()
    original = BaseClient._make_api_call

    def make_api_call(self: Any, operation_name: str, api_params: Mapping[str, Any]) -> Any:
        recorder.before(self, operation_name, api_params)
        return original(self, operation_name, api_params)

    BaseClient._make_api_call = make_api_call  # type: ignore[method-assign]
    try:
        yield recorder
    finally:
        BaseClient._make_api_call = original  # type: ignore[method-assign]
