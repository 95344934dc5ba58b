"""Traces with OpenTelemetry, off unless ``OPSBOT_TRACING=1`` (the template's ``Tracing`` parameter).

The X-Ray SDK (and Powertools' tracer on top of it) is in maintenance mode, so opsbot uses the
OpenTelemetry SDK: spans for each invocation, the /apilogs lookup (``span`` decorator), every AWS call
(botocore's ``BaseClient._make_api_call``) and every Slack Web API call and response_url post. They are
exported over OTLP/HTTP, configured by the standard ``OTEL_*`` variables (``OTEL_EXPORTER_OTLP_ENDPOINT``,
default ``http://localhost:4318``): on Lambda, the AWS Distro for OpenTelemetry collector layer
(``TracingLayerArn``) listens there and forwards to X-Ray.

Off, nothing of OpenTelemetry is imported (the cold start pays nothing) and ``span`` costs one global
read per call. The SDK is the optional ``tracing`` extra (``pip install 'opsbot[tracing]'``).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeVar

logger = logging.getLogger("opsbot.tracing")

F = TypeVar("F", bound=Callable[..., Any])

# The tracer once tracing is set up; None while off.
_tracer: Any = None
_provider: Any = None
_patched: list[tuple[Any, str, Any]] = []


def wanted(environ: Mapping[str, str] | None = None) -> bool:
    value = (os.environ if environ is None else environ).get("OPSBOT_TRACING", "")
    return value.strip().lower() in {"1", "true", "yes", "on"}


def enabled() -> bool:
    return _tracer is not None


def setup_from_env() -> None:
    """Set tracing up when OPSBOT_TRACING asks for it; an SDK that is not installed is one warning, not a
    function that cannot start."""
    if _tracer is not None or not wanted():
        return
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError as error:
        logger.warning(
            "OPSBOT_TRACING is on but the OpenTelemetry SDK is not installed (%s): no traces. "
            "Install opsbot with the 'tracing' extra.",
            error,
        )
        return
    # A collector that is down must cost an invocation little: the exporter gives up after EXPORT_SECONDS
    # (unless OTEL_EXPORTER_OTLP_TIMEOUT says otherwise), and the flush at the end waits at most FLUSH_SECONDS.
    timeout = None if os.environ.get("OTEL_EXPORTER_OTLP_TIMEOUT") else EXPORT_SECONDS
    setup(BatchSpanProcessor(OTLPSpanExporter(timeout=timeout) if timeout else OTLPSpanExporter()))


EXPORT_SECONDS = 0.5
FLUSH_SECONDS = 0.3


def setup(processor: Any) -> None:
    """Trace through ``processor`` (tests pass a SimpleSpanProcessor around an in-memory exporter). A second
    setup replaces the first: every call is traced once."""
    global _tracer, _provider
    if _provider is not None:
        shutdown()
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider

    # The function's name (Lambda sets it) as the service: X-Ray's service map shows one node per function.
    service = os.environ.get("AWS_LAMBDA_FUNCTION_NAME") or "opsbot"
    _provider = TracerProvider(resource=Resource.create({"service.name": service}))
    _provider.add_span_processor(processor)
    _tracer = _provider.get_tracer("opsbot")
    _instrument()


def shutdown() -> None:
    """Stop tracing and undo the instrumentation (tests)."""
    global _tracer, _provider
    for owner, name, original in reversed(_patched):
        setattr(owner, name, original)
    _patched.clear()
    if _provider is not None:
        _provider.shutdown()
    _tracer = _provider = None


def _patch(owner: Any, name: str, make: Callable[[Any], Any]) -> None:
    original = getattr(owner, name)
    _patched.append((owner, name, original))
    setattr(owner, name, make(original))


def _instrument() -> None:
    """Spans around botocore's and slack_sdk's one funnel for API calls: every client, wherever made."""
    from botocore.client import BaseClient
    from slack_sdk.web.base_client import BaseClient as SlackClient
    from slack_sdk.webhook.client import WebhookClient

    def aws_call(original: Any) -> Any:
        @functools.wraps(original)
        def traced(client: Any, operation: str, params: Any) -> Any:
            service = client.meta.service_model.service_name
            attributes = {
                "rpc.system": "aws-api",
                "rpc.service": service,
                "rpc.method": operation,
                "cloud.region": client.meta.region_name or "",
            }
            with _tracer.start_as_current_span(f"{service}.{operation}", kind=_client_kind(),
                                               attributes=attributes) as current:  # fmt: skip
                try:
                    result = original(client, operation, params)
                except Exception as error:
                    _failed(current, error)
                    raise
                status = (result.get("ResponseMetadata") or {}).get("HTTPStatusCode")
                if status:
                    current.set_attribute("http.response.status_code", status)
                return result

        return traced

    def slack_call(original: Any) -> Any:
        @functools.wraps(original)
        def traced(client: Any, api_method: str, *args: Any, **kwargs: Any) -> Any:
            with _tracer.start_as_current_span(f"slack.{api_method}", kind=_client_kind(),
                                               attributes={"rpc.system": "slack", "rpc.method": api_method}) as current:  # fmt: skip
                try:
                    return original(client, api_method, *args, **kwargs)
                except Exception as error:
                    _failed(current, error)
                    raise

        return traced

    def webhook_send(original: Any) -> Any:
        @functools.wraps(original)
        def traced(client: Any, *args: Any, **kwargs: Any) -> Any:
            # The response_url holds a secret-like token: the span names the host only.
            with _tracer.start_as_current_span("slack.response_url", kind=_client_kind(),
                                               attributes={"rpc.system": "slack"}) as current:  # fmt: skip
                try:
                    response = original(client, *args, **kwargs)
                except Exception as error:
                    _failed(current, error)
                    raise
                current.set_attribute("http.response.status_code", getattr(response, "status_code", 0))
                return response

        return traced

    _patch(BaseClient, "_make_api_call", aws_call)
    _patch(SlackClient, "api_call", slack_call)
    _patch(WebhookClient, "send_dict", webhook_send)


def _client_kind() -> Any:
    from opentelemetry.trace import SpanKind

    return SpanKind.CLIENT


def _failed(current: Any, error: BaseException) -> None:
    from opentelemetry.trace import Status, StatusCode

    current.record_exception(error)
    current.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"[:200]))


def span(name: str) -> Callable[[F], F]:
    """A span around each call of the decorated function while tracing is on."""

    def decorate(function: F) -> F:
        @functools.wraps(function)
        def traced(*args: Any, **kwargs: Any) -> Any:
            if _tracer is None:
                return function(*args, **kwargs)
            with _tracer.start_as_current_span(name) as current:
                try:
                    return function(*args, **kwargs)
                except Exception as error:
                    _failed(current, error)
                    raise

        return traced  # type: ignore[return-value]

    return decorate


@contextlib.contextmanager
def invocation(name: str, context: Any) -> Iterator[None]:
    """One Lambda invocation's root span; its spans are flushed before Lambda freezes the container."""
    if _tracer is None:
        yield
        return
    from opentelemetry.trace import SpanKind

    attributes = {
        "faas.invocation_id": str(getattr(context, "aws_request_id", "") or ""),
        "cloud.resource_id": str(getattr(context, "invoked_function_arn", "") or ""),
    }
    try:
        with _tracer.start_as_current_span(name, kind=SpanKind.SERVER, attributes=attributes):
            yield
    finally:
        _flush_bounded(FLUSH_SECONDS)


def _flush_bounded(seconds: float) -> None:
    """Send the invocation's spans before Lambda freezes the container, but never hold the answer for a
    collector that does not answer: the SDK's force_flush ignores its own timeout (it exports in the calling
    thread), so it runs on a daemon thread joined for ``seconds``."""
    provider = _provider
    if provider is None:
        return
    flusher = threading.Thread(target=provider.force_flush, daemon=True, name="otel-flush")
    flusher.start()
    flusher.join(seconds)
