"""API Gateway (REST and HTTP APIs) and Lambda reads for apilogs discovery.

Thin typed wrappers that return the raw facts discovery needs: the API, its stage (variables, logging
level, access-log destination), every method/route integration URI, the authorizers, and where each
Lambda function logs (``LoggingConfig``). Turning integration URIs into functions (stage variables,
qualifiers) is pure logic in ``bot.core.apilogs.discovery``.

Everything here is cached for ``DISCOVERY_TTL`` seconds (the cache is registered with
``bot.aws.clients.register_cache`` so ``clear_caches()`` forgets it): a tail polls CloudWatch every
second and must never re-discover per poll.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from bot.aws.clients import client, register_cache, scope
from bot.aws.errors import aws_errors, error_code, translate

T = TypeVar("T")

DISCOVERY_TTL = 300.0

ApiKind = Literal["REST", "HTTP"]


@dataclass(frozen=True)
class ApiSummary:
    api_id: str
    name: str
    kind: ApiKind


@dataclass(frozen=True)
class StageInfo:
    api_id: str
    stage: str
    kind: ApiKind
    variables: dict[str, str] = field(default_factory=dict)
    # REST: OFF | ERROR | INFO, the most detailed of any method ("" if unset: OFF); see logging_level
    logging_level: str = ""
    access_log_arn: str = ""


@dataclass(frozen=True)
class IntegrationInfo:
    route: str  # "GET /orders" (REST: method + resource path) or the HTTP API route key
    type: str  # AWS, AWS_PROXY, HTTP, MOCK, ...
    uri: str


@dataclass(frozen=True)
class AuthorizerInfo:
    authorizer_id: str
    name: str
    type: str
    uri: str


@dataclass(frozen=True)
class FunctionLogging:
    name: str
    arn: str
    log_group: str
    log_format: str
    resolved: bool  # False: GetFunctionConfiguration failed; the group is the default guess
    problem: str = ""


# -- cache ----------------------------------------------------------------------------------------

_cache: dict[tuple[Any, ...], tuple[float, Any]] = {}
_cache_lock = threading.Lock()


def clear_cache() -> None:
    with _cache_lock:
        _cache.clear()


register_cache(clear_cache)


def _cached(key: tuple[Any, ...], load: Callable[[], T], ttl: float | None = None) -> T:
    now = time.monotonic()
    full_key = (*scope(), *key)  # per account and region
    with _cache_lock:
        hit = _cache.get(full_key)
        if hit is not None and hit[0] > now:
            return hit[1]
    value = load()
    with _cache_lock:
        _cache[full_key] = (now + (DISCOVERY_TTL if ttl is None else ttl), value)
    return value


# -- APIs and stages ------------------------------------------------------------------------------


def list_apis() -> list[ApiSummary]:
    """Every REST and HTTP API in the region."""

    def load() -> list[ApiSummary]:
        found: list[ApiSummary] = []
        with aws_errors(resource="REST APIs"):
            for page in client("apigateway").get_paginator("get_rest_apis").paginate(PaginationConfig={}):
                found.extend(ApiSummary(i["id"], i.get("name", ""), "REST") for i in page.get("items", []))
        with aws_errors(resource="HTTP APIs"):
            found.extend(
                ApiSummary(i["ApiId"], i.get("Name", ""), "HTTP")
                for i in _v2_items("get_apis")
                if i.get("ProtocolType", "HTTP") == "HTTP"
            )
        return found

    return _cached(("apis",), load)


def get_api(api_id: str) -> ApiSummary | None:
    """The API with this id (REST first, then HTTP), None when neither exists."""

    def load() -> ApiSummary | None:
        try:
            rest = client("apigateway").get_rest_api(restApiId=api_id)
            return ApiSummary(rest["id"], rest.get("name", ""), "REST")
        except Exception as error:
            if error_code(error) not in {"NotFoundException", "BadRequestException"}:
                raise translate(error, resource=f"REST API {api_id}") from error
        try:
            http = client("apigatewayv2").get_api(ApiId=api_id)
            return ApiSummary(http["ApiId"], http.get("Name", ""), "HTTP")
        except Exception as error:
            if error_code(error) not in {"NotFoundException", "BadRequestException"}:
                raise translate(error, resource=f"HTTP API {api_id}") from error
        return None

    return _cached(("api", api_id), load)


def list_stage_names(api: ApiSummary) -> list[str]:
    def load() -> list[str]:
        with aws_errors(resource=f"stages of API {api.api_id}"):
            if api.kind == "REST":
                items = client("apigateway").get_stages(restApiId=api.api_id).get("item", [])
                return sorted(str(i["stageName"]) for i in items)
            return sorted(str(i["StageName"]) for i in _v2_items("get_stages", ApiId=api.api_id))

    return _cached(("stages", api.api_id), load)


_LEVEL_DETAIL = {"OFF": 0, "ERROR": 1, "INFO": 2}


def logging_level(method_settings: dict[str, Any]) -> str:
    """A REST stage's execution logging level: the most detailed of ``*/*`` and every method's own
    setting (``orders/GET``), since one method that logs makes the stage's logging not off."""
    levels = [
        str((settings or {}).get("loggingLevel") or "").upper() for settings in method_settings.values()
    ]
    known = [level for level in levels if level in _LEVEL_DETAIL]
    return max(known, key=_LEVEL_DETAIL.__getitem__, default="")


def get_stage(api: ApiSummary, stage: str) -> StageInfo | None:
    """The stage's variables and logging settings; None when the stage does not exist."""

    def load() -> StageInfo | None:
        try:
            if api.kind == "REST":
                raw = client("apigateway").get_stage(restApiId=api.api_id, stageName=stage)
                return StageInfo(
                    api.api_id,
                    stage,
                    "REST",
                    dict(raw.get("variables") or {}),
                    logging_level(raw.get("methodSettings") or {}),
                    str((raw.get("accessLogSettings") or {}).get("destinationArn", "") or ""),
                )
            raw = client("apigatewayv2").get_stage(ApiId=api.api_id, StageName=stage)
            return StageInfo(
                api.api_id,
                stage,
                "HTTP",
                dict(raw.get("StageVariables") or {}),
                "",
                str((raw.get("AccessLogSettings") or {}).get("DestinationArn", "") or ""),
            )
        except Exception as error:
            if error_code(error) == "NotFoundException":
                return None
            raise translate(error, resource=f"stage {stage} of API {api.api_id}") from error

    return _cached(("stage", api.api_id, stage), load)


# -- integrations and authorizers -----------------------------------------------------------------


def rest_integrations(api_id: str, *, page_size: int = 500) -> list[IntegrationInfo]:
    """Every method integration of a REST API, following ``position`` over all resource pages."""

    def load() -> list[IntegrationInfo]:
        gateway = client("apigateway")
        found: list[IntegrationInfo] = []
        with aws_errors(resource=f"resources of REST API {api_id}"):
            kwargs: dict[str, Any] = {"restApiId": api_id, "embed": ["methods"], "limit": page_size}
            while True:
                page = gateway.get_resources(**kwargs)
                for resource in page.get("items", []):
                    path = resource.get("path", "")
                    for method, detail in (resource.get("resourceMethods") or {}).items():
                        integration = (detail or {}).get("methodIntegration")
                        if integration is None:
                            # Not embedded (older API versions): ask for it.
                            try:
                                integration = gateway.get_integration(
                                    restApiId=api_id, resourceId=resource["id"], httpMethod=method
                                )
                            except Exception as error:
                                if error_code(error) == "NotFoundException":
                                    continue
                                raise
                        found.append(
                            IntegrationInfo(
                                f"{method} {path}",
                                str(integration.get("type", "")),
                                str(integration.get("uri", "")),
                            )
                        )
                position = page.get("position")
                if not position:
                    break
                kwargs["position"] = position
        return found

    return _cached(("rest-integrations", api_id), load)


def rest_authorizers(api_id: str) -> list[AuthorizerInfo]:
    def load() -> list[AuthorizerInfo]:
        gateway = client("apigateway")
        found: list[AuthorizerInfo] = []
        with aws_errors(resource=f"authorizers of REST API {api_id}"):
            kwargs: dict[str, Any] = {"restApiId": api_id, "limit": 500}
            while True:
                page = gateway.get_authorizers(**kwargs)
                found.extend(
                    AuthorizerInfo(a["id"], a.get("name", ""), a.get("type", ""), a.get("authorizerUri", ""))
                    for a in page.get("items", [])
                )
                if not page.get("position"):
                    break
                kwargs["position"] = page["position"]
        return found

    return _cached(("rest-authorizers", api_id), load)


def _v2_items(operation: str, **kwargs: Any) -> list[dict[str, Any]]:
    """Every item of an API Gateway v2 listing, through botocore's paginator (all pages)."""
    pages = client("apigatewayv2").get_paginator(operation).paginate(**kwargs)
    return [item for page in pages for item in page.get("Items", [])]


def _v2_all(operation: str, api_id: str) -> list[dict[str, Any]]:
    return _v2_items(operation, ApiId=api_id)


def http_integrations(api_id: str) -> list[IntegrationInfo]:
    """Routes of an HTTP API with the URI of the integration each targets."""

    def load() -> list[IntegrationInfo]:
        with aws_errors(resource=f"routes of HTTP API {api_id}"):
            integrations = {i["IntegrationId"]: i for i in _v2_all("get_integrations", api_id)}
            routes = _v2_all("get_routes", api_id)
        found: list[IntegrationInfo] = []
        targeted: set[str] = set()
        for route in routes:
            target = str(route.get("Target", ""))
            integration = integrations.get(target.removeprefix("integrations/"))
            if integration is None:
                continue
            targeted.add(integration["IntegrationId"])
            found.append(
                IntegrationInfo(
                    str(route.get("RouteKey", "")),
                    str(integration.get("IntegrationType", "")),
                    str(integration.get("IntegrationUri", "")),
                )
            )
        # Integrations no route targets yet still belong to the API (a route may be added any time).
        for integration_id, integration in integrations.items():
            if integration_id not in targeted:
                found.append(
                    IntegrationInfo(
                        "",
                        str(integration.get("IntegrationType", "")),
                        str(integration.get("IntegrationUri", "")),
                    )
                )
        return found

    return _cached(("http-integrations", api_id), load)


def http_authorizers(api_id: str) -> list[AuthorizerInfo]:
    def load() -> list[AuthorizerInfo]:
        with aws_errors(resource=f"authorizers of HTTP API {api_id}"):
            return [
                AuthorizerInfo(
                    a["AuthorizerId"],
                    a.get("Name", ""),
                    a.get("AuthorizerType", ""),
                    a.get("AuthorizerUri", ""),
                )
                for a in _v2_all("get_authorizers", api_id)
            ]

    return _cached(("http-authorizers", api_id), load)


# -- Lambda ---------------------------------------------------------------------------------------


def function_logging(name: str) -> FunctionLogging:
    """Where a function logs: ``LoggingConfig.LogGroup`` when set, else ``/aws/lambda/<name>``.

    Versions and aliases log to the function's group, so the unqualified configuration is asked for.
    A function we cannot read (deleted, another account, no permission) gets the default group and
    ``resolved=False`` rather than failing discovery.
    """

    def load() -> FunctionLogging:
        default_group = f"/aws/lambda/{name}"
        try:
            config = client("lambda").get_function_configuration(FunctionName=name)
        except Exception as error:
            code = error_code(error)
            problem = translate(error, resource=f"function {name}").message
            if code in {"ResourceNotFoundException", "AccessDeniedException", "AccessDenied"}:
                return FunctionLogging(name, "", default_group, "Text", False, problem)
            raise translate(error, resource=f"function {name}") from error
        logging_config = config.get("LoggingConfig") or {}
        return FunctionLogging(
            name,
            str(config.get("FunctionArn", "")),
            str(logging_config.get("LogGroup") or default_group),
            str(logging_config.get("LogFormat") or "Text"),
            True,
        )

    return _cached(("function", name), load)


# -- wiring the doctor reads (never cached: a fix made a minute ago must show) ---------------------------


@dataclass(frozen=True)
class StageLogging:
    api_id: str
    stage: str
    kind: ApiKind
    method_levels: dict[str, str]  # REST "*/*" or "resource/METHOD" -> OFF | ERROR | INFO
    data_trace: bool
    access_destination: str  # the access log's destination ARN, "" when off
    access_format: str


def cloudwatch_role_arn() -> str:
    """The API Gateway account setting without which REST stages write no execution log ("" when unset)."""
    try:
        return str(client("apigateway").get_account().get("cloudwatchRoleArn") or "")
    except Exception as error:
        raise translate(error, resource="the API Gateway account settings") from error


def stage_logging(api: ApiSummary, stage: str) -> StageLogging | None:
    """The stage's logging settings as configured (None when the stage does not exist)."""
    try:
        if api.kind == "REST":
            raw = client("apigateway").get_stage(restApiId=api.api_id, stageName=stage)
            levels = {
                key: str(value.get("loggingLevel") or "OFF").upper()
                for key, value in (raw.get("methodSettings") or {}).items()
            }
            trace = any(bool(v.get("dataTraceEnabled")) for v in (raw.get("methodSettings") or {}).values())
            access = raw.get("accessLogSettings") or {}
            return StageLogging(
                api.api_id,
                stage,
                "REST",
                levels,
                trace,
                str(access.get("destinationArn") or ""),
                str(access.get("format") or ""),
            )
        raw = client("apigatewayv2").get_stage(ApiId=api.api_id, StageName=stage)
        access = raw.get("AccessLogSettings") or {}
        return StageLogging(
            api.api_id,
            stage,
            "HTTP",
            {},
            False,
            str(access.get("DestinationArn") or ""),
            str(access.get("Format") or ""),
        )
    except Exception as error:
        if error_code(error) == "NotFoundException":
            return None
        raise translate(error, resource=f"stage {stage} of API {api.api_id}") from error
