"""Lookups when the logs are not the happy path: no execution log, ERROR-level logging, HTTP APIs,
custom log groups, concurrent invocations, authorizers that log the API id, missing groups."""

from __future__ import annotations

import json
import random
import time
import uuid
from collections.abc import Iterable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest

from bot.aws import logs as cw
from bot.aws.clients import client
from bot.config import Settings
from bot.core.apilogs.commands import lookup
from bot.core.apilogs.ids import IdKind, parse_request_id
from bot.core.apilogs.lookup import LookupResult
from bot.core.common.timeparse import to_epoch_ms
from bot.local.apilogs_traffic import FunctionSpec, RawEvent, SimRequest, Traffic, uuid1_at, write_events
from bot.local.cloudwatch_paging import CloudWatchPaging
from bot.local.seeds import apilogs as seed_module
from tests.apilogs.conftest import FilterCalls, create_function, with_logging_config

SETTINGS = Settings.from_env({"AWS_REGION": "us-east-1"})
ROUTES = {route: function for route, (function, _) in seed_module.ROUTES.items()}


def traffic(api_id: str, **kwargs: object) -> Traffic:
    options: dict[str, object] = {
        "api_id": api_id,
        "stage": "prod",
        "functions": seed_module.FUNCTIONS,
        "routes": ROUTES,
        "authorizer": seed_module.AUTHORIZER,
        "access_log_group": seed_module.ACCESS_LOG_GROUP,
        "seed": 5,
    }
    options.update(kwargs)
    return Traffic(**options)  # type: ignore[arg-type]


def recent(minutes: int = 10) -> int:
    return to_epoch_ms(datetime.now(UTC) - timedelta(minutes=minutes))


def keys(events: Iterable[RawEvent]) -> set[tuple[str, str, int, str]]:
    return {(e.group, e.stream, e.timestamp, e.message) for e in events}


def found(result: LookupResult) -> set[tuple[str, str, int, str]]:
    return {(e.group, e.stream, e.timestamp, e.message) for e in result.events}


def lambda_only(request: SimRequest) -> list[RawEvent]:
    return [e for e in request.events if e.group.startswith("/aws/lambda/")]


def test_without_execution_logs_the_api_id_in_function_logs_finds_the_invocation(
    aws: None, cloudwatch: CloudWatchPaging | None
) -> None:
    api_id, _ = seed_module.create_api("us-east-1")
    sim = traffic(api_id, access_log_group="")
    request = sim.request(recent(), "GET /users")
    noise = sim.request(recent(9), "GET /users")
    write_events(client("logs"), lambda_only(request) + lambda_only(noise))
    result = lookup(request.api_request_id, SETTINGS, api=api_id, stage="prod")
    assert found(result) == keys(lambda_only(request))
    [invocation] = result.invocations
    assert invocation.matched_by == "api id in function log"
    missing = {s.group for s in result.searches if s.missing}
    assert f"API-Gateway-Execution-Logs_{api_id}/prod" in missing


def test_lambda_id_leads_back_to_the_api_request_through_correlation_id(
    aws: None, cloudwatch: CloudWatchPaging | None
) -> None:
    api_id, _ = seed_module.create_api("us-east-1")
    sim = traffic(api_id)
    request = sim.request(recent(), "GET /inventory")  # Powertools: correlation_id is the API id
    # No execution log for this request, but the access log has it.
    write_events(client("logs"), [e for e in request.events if not e.group.startswith("API-Gateway")])
    result = lookup(request.lambda_ids["inventory-api"], SETTINGS, api=api_id, stage="prod")
    assert found(result) == keys(e for e in request.events if not e.group.startswith("API-Gateway"))
    assert result.api is not None and result.api.request_id == request.api_request_id
    assert result.api.status == 200


def test_not_found_without_execution_logging_names_the_cause(
    aws: None, cloudwatch: CloudWatchPaging | None
) -> None:
    api_id, _ = seed_module.create_api("us-east-1")
    client("apigateway").update_stage(
        restApiId=api_id, stageName="prod", patchOperations=[{"op": "replace", "path": "/*/*/logging/loglevel", "value": "OFF"}]
    )  # fmt: skip
    sim = traffic(api_id)
    request = sim.request(recent(), "GET /users")
    result = lookup(request.api_request_id, SETTINGS, api=api_id, stage="prod")
    assert not result.found
    assert any("Execution logging is not enabled" in cause for cause in result.likely_causes)
    assert any("does not exist" in cause for cause in result.likely_causes)


def test_error_level_execution_log_without_the_function_name(
    aws: None, cloudwatch: CloudWatchPaging | None
) -> None:
    api_id, _ = seed_module.create_api("us-east-1")
    sim = traffic(api_id, access_log_group="")
    request = sim.request(recent(), "POST /orders", fail=True)
    # At ERROR level API Gateway writes only the failure lines: no Endpoint request URI, no method line.
    kept = [
        e
        for e in request.events
        if not e.group.startswith("API-Gateway") or "failed" in e.message or "Method completed" in e.message
    ]
    write_events(client("logs"), kept)
    result = lookup(request.api_request_id, SETTINGS, api=api_id, stage="prod")
    assert found(result) == keys(kept)
    [invocation] = result.invocations
    assert invocation.function == "orders-api" and invocation.lambda_id == request.lambda_ids["orders-api"]
    assert result.api is not None and result.api.status == 502


def test_http_api_by_its_request_id(aws: None, cloudwatch: CloudWatchPaging | None) -> None:
    create_function("items-api")
    create_function("other-api")
    v2 = client("apigatewayv2")
    api_id = v2.create_api(Name="items", ProtocolType="HTTP")["ApiId"]
    for route, name in (("GET /items", "items-api"), ("GET /other", "other-api")):
        integration = v2.create_integration(
            ApiId=api_id, IntegrationType="AWS_PROXY", PayloadFormatVersion="2.0",
            IntegrationUri=f"arn:aws:lambda:us-east-1:123456789012:function:{name}",
        )["IntegrationId"]  # fmt: skip
        v2.create_route(ApiId=api_id, RouteKey=route, Target=f"integrations/{integration}")
    v2.create_stage(
        ApiId=api_id, StageName="$default",
        AccessLogSettings={"DestinationArn": "arn:aws:logs:us-east-1:123456789012:log-group:/http/items", "Format": "{}"},
    )  # fmt: skip
    sim = Traffic(
        api_id=api_id, stage="$default", kind="HTTP", access_log_group="/http/items",
        functions=[FunctionSpec("items-api", "node"), FunctionSpec("other-api", "python")],
        routes={"GET /items": "items-api", "GET /other": "other-api"},
    )  # fmt: skip
    request = sim.request(recent(), "GET /items")
    other = sim.request(recent(), "GET /other")
    write_events(client("logs"), request.events + other.events)
    assert request.api_request_id.endswith("=")
    result = lookup(request.api_request_id, SETTINGS, api=api_id)
    assert found(result) == keys(request.events)
    # The access log's route key named the function: other-api's group was never searched.
    assert "/aws/lambda/other-api" not in result.searched_groups
    assert result.api is not None and result.api.route == "GET /items"


def test_custom_log_group(aws: None, cloudwatch: CloudWatchPaging | None) -> None:
    functions = tuple(
        FunctionSpec(f.name, f.log_format, log_group="/shop/payments", memory_mb=f.memory_mb)
        if f.name == "payments-api"
        else f
        for f in seed_module.FUNCTIONS
    )
    api_id, _ = seed_module.create_api("us-east-1")
    with_logging_config({"payments-api": "/shop/payments"})
    request = traffic(api_id, functions=functions).request(recent(), "POST /payments")
    write_events(client("logs"), request.events)
    assert "/shop/payments" in request.groups()
    result = lookup(request.api_request_id, SETTINGS, api=api_id, stage="prod")
    assert found(result) == keys(request.events)
    assert result.invocations[0].group == "/shop/payments"


def test_concurrent_invocations_stay_apart(aws: None, cloudwatch: CloudWatchPaging | None) -> None:
    api_id, _ = seed_module.create_api("us-east-1")
    sim = traffic(api_id, max_environments=4)
    at = recent()
    requests = [sim.request(at + offset, "GET /users", duration_ms=200) for offset in (0, 3, 5, 8)]
    assert len({r.events[-3].stream for r in requests}) > 1
    write_events(client("logs"), [e for r in requests for e in r.events])
    for request in requests:
        result = lookup(request.api_request_id, SETTINGS, api=api_id, stage="prod")
        assert found(result) == keys(request.events)


def test_authorizer_that_logs_the_api_id(aws: None, cloudwatch: CloudWatchPaging | None) -> None:
    api_id, _ = seed_module.create_api("us-east-1")
    request = traffic(api_id, authorizer_logs_api_id=True).request(
        recent(), "GET /orders", use_authorizer=True
    )
    write_events(client("logs"), request.events)
    result = lookup(request.api_request_id, SETTINGS, api=api_id, stage="prod")
    assert found(result) == keys(request.events)
    authorizer = next(i for i in result.invocations if i.role == "authorizer")
    assert authorizer.matched_by == "api id in function log"
    assert authorizer.lambda_id == request.authorizer_lambda_id


def test_busy_authorizer_is_not_guessed(aws: None, cloudwatch: CloudWatchPaging | None) -> None:
    api_id, _ = seed_module.create_api("us-east-1")
    sim = traffic(api_id, max_environments=3)
    at = recent()
    first = sim.request(at, "GET /orders", use_authorizer=True)
    sim._authorizer_cache_until = 0  # a second caller with another token, authorized at the same time
    second = sim.request(at + 1, "GET /orders", use_authorizer=True)
    write_events(client("logs"), first.events + second.events)
    result = lookup(first.api_request_id, SETTINGS, api=api_id, stage="prod")
    # Two authorizer invocations overlap the call: neither is shown as this request's, and we say why.
    assert all(i.role != "authorizer" for i in result.invocations)
    assert any("cannot be told apart" in note for note in result.notes)
    assert keys(e for e in first.events if e.group != "/aws/lambda/shop-authorizer") <= found(result)


def test_missing_lambda_group_is_reported(aws: None, cloudwatch: CloudWatchPaging | None) -> None:
    api_id, _ = seed_module.create_api("us-east-1")
    request = traffic(api_id).request(recent(), "GET /users")
    write_events(client("logs"), [e for e in request.events if not e.group.startswith("/aws/lambda/")])
    result = lookup(request.api_request_id, SETTINGS, api=api_id, stage="prod")
    assert result.found and result.invocations == []
    assert any(s.group == "/aws/lambda/users-api" and s.missing for s in result.searches)


def test_going_back_to_the_api_request_costs_no_extra_searches(
    aws: None, cloudwatch: CloudWatchPaging | None
) -> None:
    api_id, _ = seed_module.create_api("us-east-1")
    request = traffic(api_id, access_log_group="").request(recent(), "GET /inventory")
    write_events(client("logs"), lambda_only(request))
    result = lookup(request.lambda_ids["inventory-api"], SETTINGS, api=api_id, stage="prod")
    assert found(result) == keys(lambda_only(request))
    # The API groups once (both missing), the Lambda id in every function's group (5), its invocation's
    # stream (1); the API request id the function logged leads nowhere new, and nothing is searched twice.
    searched = [(s.group, s.term, s.stream) for s in result.searches]
    assert len(searched) == len(set(searched)) == 8
    assert result.api is not None and result.api.request_id == request.api_request_id


def test_a_version_1_lambda_request_id_as_in_the_seed_post(
    aws: None, cloudwatch: CloudWatchPaging | None
) -> None:
    """In the seed post both ids are version 1 UUIDs (Lambda request ids were then). Such a Lambda id
    looks like an API request id; the execution log says which request it belongs to."""
    api_id, _ = seed_module.create_api("us-east-1")
    at = recent()
    request = traffic(api_id).request(at, "GET /users")
    v4_id = request.lambda_ids["users-api"]
    v1_id = uuid1_at(at + 3, random.Random(3))
    events = [replace(e, message=e.message.replace(v4_id, v1_id)) for e in request.events]
    write_events(client("logs"), events)
    assert parse_request_id(v1_id).kind == IdKind.API_REQUEST
    result = lookup(v1_id, SETTINGS, api=api_id, stage="prod")
    assert found(result) == keys(events)
    assert result.api is not None and result.api.request_id == request.api_request_id
    [invocation] = result.invocations
    assert (invocation.function, invocation.lambda_id) == ("users-api", v1_id)


def test_a_busy_function_is_not_read_whole_for_the_call_window(
    aws: None, cloudwatch: CloudWatchPaging | None
) -> None:
    api_id, _ = seed_module.create_api("us-east-1")
    request = traffic(api_id).request(recent(), "GET /users")
    start = next(e for e in request.events if e.message.startswith("START"))
    # Other environments of the same function log 3,000 lines during the call.
    noise = [
        RawEvent(start.group, f"2026/11/27/[$LATEST]busy{n % 30:02d}", start.timestamp + n % 50, f"other {n}")
        for n in range(3_000)
    ]
    write_events(client("logs"), request.events + noise)
    calls = FilterCalls(cloudwatch)
    result = lookup(request.api_request_id, SETTINGS, api=api_id, stage="prod")
    assert found(result) == keys(request.events)
    window_reads = [s for s in result.searches if s.purpose.endswith("(call window)")]
    stream_reads = [s for s in result.searches if s.stream]
    # One bounded page of the call window (not 3,000 lines), then the invocation's own stream.
    assert len(window_reads) == 1 and window_reads[0].found <= 1_000
    assert [s.stream for s in stream_reads] == [start.stream]
    searches, _ = calls.counted(result.stats.calls["FilterLogEvents"])
    assert searches <= len(request.groups()) + 3
    assert result.stats.events < 1_500


def test_searches_stopped_by_the_time_limit_are_said(aws: None, monkeypatch: Any) -> None:
    # moto's paging only: the clock moves a second per call, and the premise is that the API Gateway
    # searches end in their first call (CloudWatch's empty pages would spend the limit there).
    api_id, _ = seed_module.create_api("us-east-1")
    request = traffic(api_id).request(recent(), "GET /users")
    write_events(client("logs"), request.events)

    # The searches see a clock that moves only when a FilterLogEvents call is made, one second per
    # call: a wall clock made this test depend on how fast the machine discovers the functions.
    clock = {"now": 1_000.0}
    monkeypatch.setattr(cw, "time", SimpleNamespace(monotonic=lambda: clock["now"], sleep=time.sleep))

    def slow(**_: Any) -> None:
        clock["now"] += 1.0

    logs = cw.logs_client(bounded=True)  # the client of searches with a deadline
    logs.meta.events.register("before-call.cloudwatch-logs.FilterLogEvents", slow)
    try:
        # The API Gateway searches start in time; the Lambda side would start after the limit.
        result = lookup(
            request.api_request_id, SETTINGS, api=api_id, stage="prod", deadline=clock["now"] + 0.5,
            asked_from="slack",
        )  # fmt: skip
    finally:
        logs.meta.events.unregister("before-call.cloudwatch-logs.FilterLogEvents", slow)
    assert result.found and not result.complete
    assert any(s.cut_short for s in result.searches)
    assert "may be incomplete" in result.notes[0]
    # Slack's time limit is the Lambda's: the CLI, with its --timeout, can search longer.
    assert result.notes[0].endswith("The CLI (`opsbot apilogs ID --timeout N`) can search longer.")
    assert result.to_json()["summary"]["complete"] is False


def _authorizers_as_aws_lists_them(api_id: str, authorizer_id: str, function: str) -> Any:
    """moto lacks apigatewayv2 GetAuthorizers: answer it with the documented shape, as AWS does."""
    uri = (
        "arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/arn:aws:lambda:us-east-1:"
        f"123456789012:function:{function}/invocations"
    )
    item = {"AuthorizerId": authorizer_id, "Name": "auth", "AuthorizerType": "REQUEST", "AuthorizerUri": uri}

    def hook(params: dict[str, Any], **_: Any) -> Any:
        if f"/apis/{api_id}/" not in str(params.get("url_path", "")):
            return None
        return (
            type("Http", (), {"status_code": 200, "headers": {}})(),
            {"Items": [item], "ResponseMetadata": {}},
        )

    client("apigatewayv2").meta.events.register("before-call.apigatewayv2.GetAuthorizers", hook)
    return hook


def test_http_api_lambda_authorizer_is_searched_for_the_api_id(
    aws: None, cloudwatch: CloudWatchPaging | None
) -> None:
    """HTTP APIs have no execution log to say an authorizer ran: its group is searched for the API id
    alongside the integration's, within the call budget. One authorizer logs the id with its logger,
    the other with print() (placed in its invocation)."""
    create_function("items-api")
    create_function("auth-fn")
    v2 = client("apigatewayv2")
    api_id = v2.create_api(Name="items", ProtocolType="HTTP")["ApiId"]
    integration = v2.create_integration(
        ApiId=api_id, IntegrationType="AWS_PROXY", PayloadFormatVersion="2.0",
        IntegrationUri="arn:aws:lambda:us-east-1:123456789012:function:items-api",
    )["IntegrationId"]  # fmt: skip
    authorizer = v2.create_authorizer(
        ApiId=api_id, AuthorizerType="REQUEST", Name="auth", IdentitySource=["$request.header.Authorization"],
        AuthorizerUri="arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/arn:aws:lambda:us-east-1:"
        "123456789012:function:auth-fn/invocations", AuthorizerPayloadFormatVersion="2.0",
    )["AuthorizerId"]  # fmt: skip
    v2.create_route(
        ApiId=api_id, RouteKey="GET /items", Target=f"integrations/{integration}",
        AuthorizationType="CUSTOM", AuthorizerId=authorizer,
    )  # fmt: skip
    v2.create_stage(
        ApiId=api_id, StageName="$default",
        AccessLogSettings={"DestinationArn": "arn:aws:logs:us-east-1:123456789012:log-group:/http/items", "Format": "{}"},
    )  # fmt: skip
    _authorizers_as_aws_lists_them(api_id, authorizer, "auth-fn")
    at = recent()
    report = "REPORT RequestId: {}\tDuration: 2.00 ms\tBilled Duration: 2 ms\tMemory Size: 128 MB\tMax Memory Used: 50 MB"

    def request(at: int, request_id: str, auth_id: str, lambda_id: str, *, printed: bool) -> list[RawEvent]:
        said = f"API Gateway Request ID: {request_id}"
        auth_line = said if printed else f"[INFO]\t2026-11-27T04:22:14.608Z\t{auth_id}\t{said}"
        access = {"requestId": request_id, "routeKey": "GET /items", "status": "403" if printed else "200",
                  "integrationRequestId": lambda_id}  # fmt: skip
        auth_stream, items_stream = (
            f"2026/11/27/[$LATEST]a{request_id[:4]}",
            f"2026/11/27/[$LATEST]i{request_id[:4]}",
        )
        return [
            RawEvent("/aws/lambda/auth-fn", auth_stream, at + 1, f"START RequestId: {auth_id} Version: $LATEST"),
            RawEvent("/aws/lambda/auth-fn", auth_stream, at + 2, auth_line),
            RawEvent("/aws/lambda/auth-fn", auth_stream, at + 3, "checking the token"),
            RawEvent("/aws/lambda/auth-fn", auth_stream, at + 4, f"END RequestId: {auth_id}"),
            RawEvent("/aws/lambda/auth-fn", auth_stream, at + 4, report.format(auth_id)),
            *(
                []
                if printed
                else [
                    RawEvent("/aws/lambda/items-api", items_stream, at + 10, f"START RequestId: {lambda_id} Version: $LATEST"),
                    RawEvent("/aws/lambda/items-api", items_stream, at + 11, f"[INFO]\t2026-11-27T04:22:14.700Z\t{lambda_id}\tlisting items"),
                    RawEvent("/aws/lambda/items-api", items_stream, at + 12, f"END RequestId: {lambda_id}"),
                    RawEvent("/aws/lambda/items-api", items_stream, at + 12, report.format(lambda_id)),
                ]
            ),
            RawEvent("/http/items", "access", at + 15, json.dumps(access)),
        ]  # fmt: skip

    logged = request(at, "Vwc2MGFUrPEFV_g=", *(str(uuid.uuid4()) for _ in range(2)), printed=False)
    refused = request(at + 100, "Qxd3NHGVsQGGW_h=", str(uuid.uuid4()), "", printed=True)
    write_events(client("logs"), logged + refused)

    calls = FilterCalls(cloudwatch)
    result = lookup("Vwc2MGFUrPEFV_g=", SETTINGS, api=api_id)
    assert found(result) == keys(logged)
    assert {(i.function, i.role) for i in result.invocations} == {
        ("auth-fn", "authorizer"),
        ("items-api", "integration"),
    }
    holding = {e.group for e in logged}
    assert calls.counted(result.stats.calls["FilterLogEvents"])[0] <= len(holding) + 3

    # A request the authorizer refused: it never reached the function, only the authorizer printed.
    calls = FilterCalls(cloudwatch)
    denied = lookup("Qxd3NHGVsQGGW_h=", SETTINGS, api=api_id)
    assert found(denied) == keys(refused)
    [auth] = denied.invocations
    assert auth.role == "authorizer" and auth.function == "auth-fn"
    assert calls.counted(denied.stats.calls["FilterLogEvents"])[0] <= len({e.group for e in refused}) + 3


@pytest.mark.serial  # asserts on the wall clock: run apart from the parallel run
def test_heavy_throttling_returns_what_was_found_marked_incomplete(aws: None) -> None:
    api_id, _ = seed_module.create_api("us-east-1")
    request = traffic(api_id).request(recent(), "GET /users")
    write_events(client("logs"), request.events)
    calls = {"n": 0}

    def throttle_after_the_api_side(**_: Any) -> Any:
        calls["n"] += 1
        if calls["n"] <= 2:  # the execution and access logs are read
            return None
        error = {"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}
        return (type("Http", (), {"status_code": 400, "headers": {}})(), {**error, "ResponseMetadata": {}})

    logs = cw.logs_client(bounded=True)  # the client of searches with a deadline
    logs.meta.events.register("before-call.cloudwatch-logs.FilterLogEvents", throttle_after_the_api_side)
    began = time.monotonic()
    try:
        result = lookup(
            request.api_request_id, SETTINGS, api=api_id, stage="prod", deadline=time.monotonic() + 1.5
        )
    finally:
        logs.meta.events.unregister(
            "before-call.cloudwatch-logs.FilterLogEvents", throttle_after_the_api_side
        )
    assert time.monotonic() - began < 6.5  # the deadline, and room for a busy machine
    api_side = {e for e in keys(request.events) if not e[0].startswith("/aws/lambda/")}
    assert api_side <= found(result)  # nothing read before the throttling is dropped
    assert result.found and not result.complete
    assert result.stats.throttled > 0
    assert "throttling" in result.notes[0] and "may be incomplete" in result.notes[0]
    assert result.to_json()["summary"]["complete"] is False


def test_an_explicit_window_that_leaves_out_the_ids_time_is_named_as_the_cause(
    aws: None, cloudwatch: CloudWatchPaging | None
) -> None:
    api_id, _ = seed_module.create_api("us-east-1")
    request = traffic(api_id).request(recent(120), "GET /users")  # two hours ago
    write_events(client("logs"), request.events)
    result = lookup(request.api_request_id, SETTINGS, api=api_id, stage="prod", since="30m")
    assert not result.found
    first = result.likely_causes[0]
    assert "outside the window you searched" in first and "drop --since/--until" in first
    assert str(request.api_request_id) not in first  # the time is named, as ISO with its zone
    assert first.startswith("The id is from 20") and "Z, outside" in first
    # Without --since the id's own time is searched and the request is found: the advice holds.
    assert lookup(request.api_request_id, SETTINGS, api=api_id, stage="prod").found


def test_the_window_cause_is_not_given_when_the_window_holds_the_id(
    aws: None, cloudwatch: CloudWatchPaging | None
) -> None:
    api_id, _ = seed_module.create_api("us-east-1")
    request = traffic(api_id).request(recent(), "GET /users")  # nothing written: not found anyway
    result = lookup(request.api_request_id, SETTINGS, api=api_id, stage="prod", since="1h")
    assert not result.found
    assert not any("outside the window" in cause for cause in result.likely_causes)
