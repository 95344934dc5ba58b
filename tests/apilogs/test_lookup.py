"""Lookup against the demo API in moto: every id kind and log format, the hop from the API id to the
Lambda id, START..REPORT with print() lines, the alias and the authorizer, the call budget, throttling."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot.aws import clients
from bot.aws.clients import client
from bot.config import Settings
from bot.core.apilogs.commands import lookup
from bot.core.apilogs.formats import parse_lambda_line
from bot.core.apilogs.ids import IdKind, RequestId
from bot.core.apilogs.lookup import LookupResult, search_window
from bot.errors import UsageError
from bot.local.apilogs_traffic import SimRequest, uuid1_at, write_events
from bot.local.cloudwatch_paging import CloudWatchPaging
from bot.local.seeds import apilogs as seed_module
from tests.apilogs.conftest import FilterCalls
from tests.conftest import FAKE_AWS_ENV

SETTINGS = Settings.from_env({"AWS_REGION": "us-east-1"})
# Every lookup here runs with moto's paging and with CloudWatch's (empty pages, scanned slices).
pytestmark = pytest.mark.usefixtures("cloudwatch")


@pytest.fixture(scope="module")
def shop() -> Iterator[seed_module.DemoApi]:
    """One moto account with the demo API and 30 requests, shared by this module's (read-only) tests."""
    from moto import mock_aws

    with pytest.MonkeyPatch.context() as patch:
        for key, value in FAKE_AWS_ENV.items():
            patch.setenv(key, value)
        with mock_aws():
            clients.clear_caches()
            api_id, account = seed_module.create_api("us-east-1")
            demo = seed_module.generate(api_id, account, datetime.now(UTC), count=30)
            write_events(client("logs"), (e for r in demo.requests for e in r.events))
            yield demo
    clients.clear_caches()


def truth(request: SimRequest) -> set[tuple[str, str, int, str]]:
    return {(e.group, e.stream, e.timestamp, e.message) for e in request.events}


def got(result: LookupResult) -> set[tuple[str, str, int, str]]:
    return {(e.group, e.stream, e.timestamp, e.message) for e in result.events}


def run(shop: seed_module.DemoApi, text: str, **kwargs: Any) -> LookupResult:
    return lookup(text, SETTINGS, api=shop.api_id, stage="prod", **kwargs)


def by_route(shop: seed_module.DemoApi, route: str) -> SimRequest:
    method, path = route.split(" ")
    return next(r for r in shop.requests if (r.method, r.path) == (method, path) and r is not shop.failed)


def assert_complete(result: LookupResult, request: SimRequest) -> None:
    expected, found = truth(request), got(result)
    assert found == expected, {"missing": sorted(expected - found)[:3], "extra": sorted(found - expected)[:3]}
    # Time order across groups, each event once.
    assert [e.timestamp for e in result.events] == sorted(e.timestamp for e in result.events)
    assert len({e.key for e in result.events}) == len(result.events)


def test_failed_request_by_api_request_id(shop: seed_module.DemoApi) -> None:
    failed = shop.failed
    assert failed is not None
    result = run(shop, failed.api_request_id)
    assert_complete(result, failed)
    assert result.api is not None and (result.api.method, result.api.path, result.api.status) == (
        "POST",
        "/orders",
        502,
    )
    [invocation] = result.invocations
    assert invocation.function == "orders-api" and invocation.lambda_id == failed.lambda_ids["orders-api"]
    assert invocation.report is not None and invocation.report.status == "error" and invocation.errors >= 2
    messages = [e.message for e in result.events]
    assert any(m.startswith("[ERROR] KeyError") and "Traceback" in m for m in messages)  # carries no id
    assert any(m.startswith("fetched ") for m in messages)  # a print() line
    # The window came from the id's own time: +/- 5 minutes, not the last hour.
    assert result.end_ms - result.start_ms <= 10 * 60 * 1000


@pytest.mark.parametrize("kind", ["lambda", "extended", "xray"])
def test_the_same_request_by_any_other_id(shop: seed_module.DemoApi, kind: str) -> None:
    failed = shop.failed
    assert failed is not None
    text = {
        "lambda": failed.lambda_ids["orders-api"],
        "extended": failed.extended_id,
        "xray": failed.xray_trace_id,
    }[kind]
    result = run(shop, text)
    assert_complete(result, failed)
    assert result.api is not None and result.api.request_id == failed.api_request_id


@pytest.mark.parametrize(
    ("route", "function", "log_format"),
    [
        ("GET /users", "users-api", "node"),
        ("POST /payments", "payments-api", "json"),
        ("GET /inventory", "inventory-api", "powertools"),
        ("POST /orders", "orders-api", "python"),
    ],
)
def test_every_log_format(shop: seed_module.DemoApi, route: str, function: str, log_format: str) -> None:
    request = by_route(shop, route)
    result = run(shop, request.api_request_id)
    assert_complete(result, request)
    [invocation] = result.invocations
    assert invocation.function == function and invocation.report is not None
    assert invocation.report.duration_ms and invocation.report.memory_mb
    assert invocation.matched_by == "execution log"


def test_stage_variable_alias_and_time_matched_authorizer(shop: seed_module.DemoApi) -> None:
    request = next(r for r in shop.requests if r.authorizer_lambda_id)
    result = run(shop, request.api_request_id)
    assert_complete(result, request)
    roles = {(i.function, i.role, i.matched_by) for i in result.invocations}
    assert ("shop-authorizer", "authorizer", "time") in roles
    assert ("orders-api", "integration", "execution log") in roles
    orders = next(i for i in result.invocations if i.function == "orders-api")
    assert orders.version == "3"  # the `live` alias from ${stageVariables.ordersAlias}
    assert result.api is not None
    [authorizer_call] = [c for c in result.api.calls if c.role == "authorizer"]
    assert authorizer_call.function == "shop-authorizer"


def test_call_budget_when_the_execution_log_names_the_integration(
    shop: seed_module.DemoApi, cloudwatch: CloudWatchPaging | None
) -> None:
    forced = 0
    for request in shop.requests[:12]:
        calls = FilterCalls(cloudwatch)
        result = run(shop, request.api_request_id)
        assert_complete(result, request)
        budget = len(request.groups()) + 3
        searches, more = calls.counted(result.stats.calls.get("FilterLogEvents", 0))
        assert searches <= budget, (request.path, result.stats.calls, searches)
        forced += more
        # The call window's one-page read held the invocation: its stream was not read again, even
        # when CloudWatch answered the read with empty pages first.
        assert not [s for s in result.searches if s.stream], request.path
        # Only the groups named by the execution log (and the API's own) were searched.
        assert set(result.searched_groups) <= request.groups() | {
            f"API-Gateway-Execution-Logs_{shop.api_id}/prod",
            seed_module.ACCESS_LOG_GROUP,
        }
    if cloudwatch is not None:
        # The double did page: searches went on through empty pages and slices, and still found all.
        assert forced > 0 and cloudwatch.stats.empty > 0


def test_throttling_slows_the_lookup_but_loses_nothing(shop: seed_module.DemoApi) -> None:
    request = next(r for r in shop.requests if r.authorizer_lambda_id)
    calls = {"n": 0}

    def throttle_every_other(**_: Any) -> Any:
        calls["n"] += 1
        if calls["n"] % 2:
            error = {
                "Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"},
                "ResponseMetadata": {},
            }
            return (type("Http", (), {"status_code": 400, "headers": {}})(), error)
        return None

    logs = client("logs")
    logs.meta.events.register("before-call.cloudwatch-logs.FilterLogEvents", throttle_every_other)
    try:
        result = run(shop, request.api_request_id)
    finally:
        logs.meta.events.unregister("before-call.cloudwatch-logs.FilterLogEvents", throttle_every_other)
    assert result.stats.throttled >= 3
    assert_complete(result, request)


def test_json_document(shop: seed_module.DemoApi) -> None:
    failed = shop.failed
    assert failed is not None
    document = run(shop, failed.api_request_id).to_json()
    assert set(document) == {"events", "summary"}
    first = document["events"][0]
    assert set(first) >= {"timestamp", "group", "stream", "message", "eventId"}
    assert [e["timestamp"] for e in document["events"]] == sorted(e["timestamp"] for e in document["events"])
    summary = document["summary"]
    assert summary["requestInfo"]["status"] == 502
    assert summary["invocations"][0]["report"]["durationMs"] > 0
    assert summary["insightsUrl"].startswith("https://us-east-1.console.aws.amazon.com/cloudwatch/")


def test_nothing_found_says_where_and_when_it_searched(shop: seed_module.DemoApi) -> None:
    unknown = uuid1_at(int((datetime.now(UTC) - timedelta(minutes=20)).timestamp() * 1000), random.Random(99))
    result = run(shop, unknown)
    assert not result.found
    groups = set(result.searched_groups)
    assert f"API-Gateway-Execution-Logs_{shop.api_id}/prod" in groups and "/aws/lambda/orders-api" in groups
    assert any("another API, stage or region" in cause for cause in result.likely_causes)
    assert result.end_ms - result.start_ms == 10 * 60 * 1000


def test_an_old_id_is_explained(shop: seed_module.DemoApi) -> None:
    result = run(shop, "9439989f-7543-11e6-8dda-150c09a55dc2")
    assert not result.found
    assert any("2016-09-07" in cause for cause in result.likely_causes)


@pytest.mark.parametrize(
    ("text", "kwargs", "message"),
    [
        ("not-an-id", {}, "is not a request id"),
        ("9439989f-7543-11e6-8dda-150c09a55dc2", {"since": "yesterday-ish"}, "Cannot read the time"),
        ("0f7d2c1e-4b2a-4c55-9a3f-8f2b3c4d5e6f", {"since": "1h ago", "until": "2h ago"}, "must be before"),
    ],
)
def test_bad_input_is_a_usage_error(
    shop: seed_module.DemoApi, text: str, kwargs: dict[str, str], message: str
) -> None:
    with pytest.raises(UsageError, match=message):
        run(shop, text, **kwargs)


def test_settings_defaults_pick_the_api(shop: seed_module.DemoApi) -> None:
    failed = shop.failed
    assert failed is not None
    settings = Settings.from_env(
        {"AWS_REGION": "us-east-1", "OPSBOT_DEFAULT_API": "shop-api", "OPSBOT_DEFAULT_STAGE": "prod"}
    )
    result = lookup(failed.api_request_id, settings)
    assert result.stage.api_id == shop.api_id and result.found


def test_demo_cold_starts_begin_when_api_gateway_calls(shop: seed_module.DemoApi) -> None:
    """The generator's timelines read like real ones: a cold start's INIT_START comes after API
    Gateway sent the request (not before the request existed), and its START after the init."""
    cold = 0
    for request in shop.requests:
        api_lines = [e for e in request.events if e.group.startswith("API-Gateway")]
        for event in request.events:
            if event.message.startswith("INIT_START"):
                cold += 1
                sent = [e.timestamp for e in api_lines if "Sending request to" in e.message]
                assert any(at <= event.timestamp for at in sent), event
                start = next(
                    e
                    for e in request.events
                    if e.stream == event.stream and parse_lambda_line(e.message).kind == "start"
                )
                assert start.timestamp > event.timestamp + 100
    assert cold >= 3


def test_search_windows() -> None:
    now = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
    minute = 60_000
    now_ms = int(now.timestamp() * 1000)

    def window(moment: datetime | None, **kwargs: str) -> tuple[int, int]:
        kind = IdKind.API_REQUEST if moment else IdKind.LAMBDA_REQUEST
        return search_window(RequestId("x", kind, moment), now=now, **kwargs)

    # Around the id's own time, never past now.
    assert window(now - timedelta(minutes=20)) == (now_ms - 25 * minute, now_ms - 15 * minute)
    assert window(now - timedelta(minutes=2)) == (now_ms - 7 * minute, now_ms)
    # An id from a clock ahead of ours still gets a window that starts before it ends.
    assert window(now + timedelta(minutes=30)) == (now_ms + 25 * minute, now_ms + 35 * minute)
    # No time in the id: the last hour, or the hour before --until.
    assert window(None) == (now_ms - 60 * minute, now_ms)
    assert window(None, until="3h ago") == (now_ms - 240 * minute, now_ms - 180 * minute)
    assert window(None, since="2h", until="1h ago") == (now_ms - 120 * minute, now_ms - 60 * minute)


@pytest.mark.parametrize("kind", ["api", "lambda", "extended", "xray"])
def test_every_filter_pattern_sent_is_one_quoted_id(shop: seed_module.DemoApi, kind: str) -> None:
    failed = shop.failed
    assert failed is not None
    text = {
        "api": f'"{failed.api_request_id.upper()}"',
        "lambda": f"x-amzn-RequestId: {failed.lambda_ids['orders-api']}",
        "extended": f"`{failed.extended_id}`",
        "xray": f"Root={failed.xray_trace_id}",
    }[kind]
    sent: list[dict[str, Any]] = []

    def capture(params: dict[str, Any], **_: Any) -> None:
        sent.append(dict(params))

    logs = client("logs")
    logs.meta.events.register("provide-client-params.cloudwatch-logs.FilterLogEvents", capture)
    try:
        result = run(shop, text)
    finally:
        logs.meta.events.unregister("provide-client-params.cloudwatch-logs.FilterLogEvents", capture)
    assert result.found
    patterns = {p["filterPattern"] for p in sent if "filterPattern" in p}
    ids = {failed.api_request_id, failed.lambda_ids["orders-api"], failed.extended_id, failed.xray_trace_id}
    assert patterns and all(p[0] == p[-1] == '"' and p[1:-1] in ids for p in patterns), patterns
