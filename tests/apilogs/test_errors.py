"""/apilogs errors against moto (and CloudWatch's paging double): each kind of failure, grouped; windows
with none and past the cap; access logs only, execution logs only, an HTTP API; the CLI's --json."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from bot.aws.clients import client
from bot.cli import main
from bot.config import Settings
from bot.core.apilogs import discovery as disc
from bot.core.apilogs.errors import ErrorsReport, errors, find_errors
from bot.core.common.timeparse import to_epoch_ms
from bot.local.apilogs_traffic import FailureKind, FunctionSpec, RawEvent, SimRequest, Traffic, write_events
from bot.local.cloudwatch_paging import CloudWatchPaging
from bot.local.seeds import apilogs as seed_module
from tests.apilogs.conftest import create_function

SETTINGS = Settings.from_env({"AWS_REGION": "us-east-1"})
ROUTES = {route: function for route, (function, _) in seed_module.ROUTES.items()}


def recent(minutes: float = 5) -> int:
    return to_epoch_ms(datetime.now(UTC) - timedelta(minutes=minutes))


def traffic(api_id: str, **kwargs: object) -> Traffic:
    options: dict[str, object] = {
        "api_id": api_id, "stage": "prod", "functions": seed_module.FUNCTIONS, "routes": ROUTES,
        "authorizer": seed_module.AUTHORIZER, "access_log_group": seed_module.ACCESS_LOG_GROUP, "seed": 9,
    }  # fmt: skip
    options.update(kwargs)
    return Traffic(**options)  # type: ignore[arg-type]


KINDS: list[tuple[str, FailureKind | None]] = [
    ("POST /orders", "lambda_error"),
    ("GET /users", "timeout"),
    ("POST /payments", "config"),
    ("GET /inventory", "throttle"),
    ("GET /orders", "deny"),
    ("POST /payments", "handled"),
    ("GET /users", None),
    ("GET /inventory", None),
]


def mixed(sim: Traffic, rounds: int = 2) -> list[SimRequest]:
    out = []
    at = recent(12)
    for _ in range(rounds):
        for route, kind in KINDS:
            at += 20_000
            out.append(sim.request(at, route, failure=kind, use_authorizer=route == "GET /orders"))
    return out


def stage_of(api_id: str) -> disc.ApiStage:
    return disc.resolve_stage(api_id, "prod", region="us-east-1")


def by_status(report: ErrorsReport) -> dict[int | None, list[tuple[str, str, str, int]]]:
    out: dict[int | None, list[tuple[str, str, str, int]]] = {}
    for g in report.groups:
        out.setdefault(g.status, []).append((g.method, g.path, g.cause, g.count))
    return out


def test_each_kind_of_failure_is_grouped_with_its_cause(
    aws: None, cloudwatch: CloudWatchPaging | None
) -> None:
    api_id, _ = seed_module.create_api("us-east-1")
    requests = mixed(traffic(api_id))
    write_events(client("logs"), [e for r in requests for e in r.events])
    report = errors(SETTINGS, api=api_id, stage="prod", since="15m", status="all")
    groups = by_status(report)
    assert groups[502] == [("POST", "/orders", "KeyError: 'customer_id'", 2)]
    assert groups[504] == [("GET", "/users", "Integration timeout", 2)]
    assert groups[500] == [
        (
            "POST",
            "/payments",
            "Execution failed due to configuration error: Invalid permissions on Lambda function",
            2,
        )
    ]
    assert groups[429] == [("GET", "/inventory", "Throttled (429)", 2)]
    assert groups[403] == [("GET", "/orders", "Authorizer deny (403)", 2)]
    assert report.total == 10 and report.requests == 16 and report.complete
    # Ids are exact: every failing request once, no succeeding one.
    failing = {r.api_request_id for r in requests if r.status >= 400}
    listed = [i for g in report.groups for i in g.request_ids]
    assert sorted(listed) == sorted(failing)
    functions = {g.status: g.functions for g in report.groups}
    assert functions[502] == ["orders-api"] and functions[403] == ["shop-authorizer"]
    # The function ERROR behind a 200, under its own heading, with the API request id.
    [handled] = report.function_errors
    assert handled.cause == "payment provider declined the charge: card_declined"
    assert handled.functions == ["payments-api"] and handled.count == 2
    assert set(handled.request_ids) == {
        r.api_request_id for r in requests if r.status == 200 and r.path == "/payments"
    }
    # One paginated search per log group of the stage.
    assert len(report.searches) == len(set(s.group for s in report.searches)) == 7
    # 5xx only by default; sorted by count.
    only = errors(SETTINGS, api=api_id, stage="prod", since="15m")
    assert {g.status for g in only.groups} == {500, 502, 504} and only.total == 6
    assert only.to_json()["status"] == "5xx"
    path = errors(SETTINGS, api=api_id, stage="prod", since="15m", status="all", path="/users")
    assert {(g.status, g.path) for g in path.groups} == {(504, "/users")} and path.requests == 4


def test_a_window_with_no_failures(aws: None) -> None:
    api_id, _ = seed_module.create_api("us-east-1")
    sim = traffic(api_id)
    requests = [sim.request(recent(5) + i * 1000, "GET /users") for i in range(5)]
    write_events(client("logs"), [e for r in requests for e in r.events])
    report = errors(SETTINGS, api=api_id, stage="prod")
    assert report.groups == [] and report.total == 0 and report.requests == 5 and report.complete


def test_past_the_cap_says_how_far_it_got(aws: None) -> None:
    api_id, _ = seed_module.create_api("us-east-1")
    start = recent(10)
    lines = [
        RawEvent(
            seed_module.ACCESS_LOG_GROUP, "s", start + i * 20,
            json.dumps({"requestId": f"r-{i:05d}", "httpMethod": "GET", "resourcePath": "/users", "status": "500"}),
        )
        for i in range(10_001)
    ]  # fmt: skip
    write_events(client("logs"), lines)
    client("apigateway").update_stage(
        restApiId=api_id, stageName="prod", patchOperations=[{"op": "replace", "path": "/*/*/logging/loglevel", "value": "OFF"}]
    )  # fmt: skip
    report = errors(SETTINGS, api=api_id, stage="prod")
    assert report.total == 10_000 and report.capped and not report.complete
    assert report.reached_ms == start + 9_999 * 20
    assert report.requests == 10_001
    [group] = report.groups
    assert group.count == 10_000 and len(group.to_json()["requestIds"]) == 1_000


def test_access_logs_only(aws: None, cloudwatch: CloudWatchPaging | None) -> None:
    api_id, _ = seed_module.create_api("us-east-1")
    client("apigateway").update_stage(
        restApiId=api_id, stageName="prod", patchOperations=[{"op": "replace", "path": "/*/*/logging/loglevel", "value": "OFF"}]
    )  # fmt: skip
    requests = mixed(traffic(api_id))
    events = [e for r in requests for e in r.events if not e.group.startswith("API-Gateway")]
    write_events(client("logs"), events)
    report = errors(SETTINGS, api=api_id, stage="prod", since="15m", status="all")
    groups = by_status(report)
    # The cause comes from the access log's error message or the function's own error line.
    assert groups[504] == [("GET", "/users", "Integration timeout", 2)]
    assert groups[429] == [("GET", "/inventory", "Throttled (429)", 2)]
    assert groups[403] == [("GET", "/orders", "Authorizer deny (403)", 2)]
    assert groups[502][0][:2] == ("POST", "/orders") and report.total == 10
    assert not any(s.group.startswith("API-Gateway") for s in report.searches)


@pytest.mark.parametrize("access_format", ["clf", "csv", "xml"])
def test_access_log_formats(aws: None, access_format: str) -> None:
    api_id, _ = seed_module.create_api("us-east-1")
    requests = mixed(traffic(api_id, access_format=access_format), rounds=1)
    write_events(client("logs"), [e for r in requests for e in r.events])
    report = errors(SETTINGS, api=api_id, stage="prod", since="15m", status="all")
    assert report.requests == 8 and report.total == 5
    assert {g.status for g in report.groups} == {403, 429, 500, 502, 504}


def test_execution_logs_only(aws: None, cloudwatch: CloudWatchPaging | None) -> None:
    api_id, _ = seed_module.create_api("us-east-1")
    requests = mixed(traffic(api_id, access_log_group=""))
    write_events(client("logs"), [e for r in requests for e in r.events])
    stage = replace(stage_of(api_id), access_log_group="")
    start, end = recent(15), recent(0)
    report = find_errors(SETTINGS, stage, start, end, "all")
    groups = by_status(report)
    assert groups[502] == [("POST", "/orders", "KeyError: 'customer_id'", 2)]
    assert groups[500][0][:2] == ("POST", "/payments")
    assert report.total == 10 and report.requests_source == "execution log"
    # Requests that reached execution are counted from their "HTTP Method:" line.
    assert report.requests == 12
    [handled] = report.function_errors
    assert set(handled.request_ids) == {
        r.api_request_id for r in requests if r.status == 200 and r.path == "/payments"
    }


def test_http_api(aws: None, cloudwatch: CloudWatchPaging | None) -> None:
    create_function("items-api")
    v2 = client("apigatewayv2")
    api_id = v2.create_api(Name="items", ProtocolType="HTTP")["ApiId"]
    integration = v2.create_integration(
        ApiId=api_id, IntegrationType="AWS_PROXY", PayloadFormatVersion="2.0",
        IntegrationUri="arn:aws:lambda:us-east-1:123456789012:function:items-api",
    )["IntegrationId"]  # fmt: skip
    v2.create_route(ApiId=api_id, RouteKey="GET /items/{id}", Target=f"integrations/{integration}")
    v2.create_stage(
        ApiId=api_id, StageName="$default",
        AccessLogSettings={"DestinationArn": "arn:aws:logs:us-east-1:123456789012:log-group:/http/items", "Format": "{}"},
    )  # fmt: skip
    sim = Traffic(
        api_id=api_id, stage="$default", kind="HTTP", access_log_group="/http/items",
        functions=[FunctionSpec("items-api", "node")], routes={"GET /items/{id}": "items-api"},
    )  # fmt: skip
    at = recent(8)
    requests = [
        sim.request(at + i * 10_000, "GET /items/{id}", failure="lambda_error" if i % 2 else None)
        for i in range(6)
    ]
    write_events(client("logs"), [e for r in requests for e in r.events])
    report = errors(SETTINGS, api=api_id)
    [group] = report.groups
    assert (group.method, group.path, group.status, group.count) == ("GET", "/items/{id}", 502, 3)
    assert group.cause.startswith("TypeError: Cannot read properties of undefined")
    assert group.functions == ["items-api"] and report.requests == 6
    assert set(group.request_ids) == {r.api_request_id for r in requests if r.status == 502}


def test_cli_json_shape_and_exit_codes(aws: None, capsys: pytest.CaptureFixture[str]) -> None:
    api_id, _ = seed_module.create_api("us-east-1")
    requests = mixed(traffic(api_id), rounds=1)
    write_events(client("logs"), [e for r in requests for e in r.events])
    assert (
        main(
            [
                "apilogs",
                "errors",
                "--api-id",
                "shop-api",
                "--stage",
                "prod",
                "--since",
                "15",
                "min",
                "ago",
                "--json",
            ]
        )
        == 0
    )
    doc = json.loads(capsys.readouterr().out)
    assert set(doc) >= {"window", "status", "total", "requests", "complete", "groups"}
    assert set(doc["window"]) == {"start", "end"} and doc["status"] == "5xx"
    assert doc["total"] == 3 and doc["requests"] == 8 and doc["complete"] is True
    for group in doc["groups"]:
        assert set(group) == {
            "method",
            "path",
            "status",
            "cause",
            "count",
            "first",
            "last",
            "functions",
            "requestIds",
        }
        assert isinstance(group["first"], int) and group["count"] == len(group["requestIds"])
    assert main(["apilogs", "errors", "--api-id", "shop-api", "--status", "3xx"]) == 2
    assert main(["apilogs", "errors", "--api-id", "shop-api", "--path", "orders"]) == 2
    assert main(["apilogs", "errors", "--api-id", "shop-api", "--since", "1m", "--until", "1h ago"]) == 2
    assert main(["apilogs", "errors", "--api-id", "shop-api", "--filter", "x"]) == 2
    capsys.readouterr()
    assert main(["apilogs", "errors", "--api-id", "shop-api", "--stage", "prod", "--since", "15m"]) == 0
    out = capsys.readouterr().out
    assert "3 failed of 8 requests (37.5%) in the last 15 min; 3 causes" in out


def test_the_verdict_names_its_window_and_counts_a_quiet_access_log(aws: None) -> None:
    """A window with no request at all is "0 of 0" (the access log was read), not an unknown total; a
    window that ends before now says when it was; seconds stay seconds."""
    from bot.render.apilogs_errors import verdict

    api_id, _ = seed_module.create_api("us-east-1")
    sim = traffic(api_id)
    requests = [sim.request(recent(50) + i * 1000, "POST /orders", failure="lambda_error") for i in range(3)]
    write_events(client("logs"), [e for r in requests for e in r.events])
    quiet = errors(SETTINGS, api=api_id, stage="prod", since="30s")
    assert quiet.requests == 0 and quiet.requests_source == "access log"
    assert verdict(quiet) == "0 failed of 0 requests in the last 30 s"
    past = errors(SETTINGS, api=api_id, stage="prod", since="1h", until="40m", status="all")
    assert past.total == 3 and not past.until_now
    start = datetime.fromtimestamp(past.start_ms / 1000, UTC)
    assert verdict(past).startswith("3 failed (4xx and 5xx) of 3 requests (100.0%) from ")
    assert f"from {start:%Y-%m-%d %H:%M} to " in verdict(past) and "UTC (20 min); 1 cause" in verdict(past)
