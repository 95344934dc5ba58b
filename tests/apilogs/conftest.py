"""Fixtures for apilogs: a fast limiter, the demo API in moto, log writing helpers, and ``cloudwatch``:
each test that uses it runs twice, against moto's paging (every match in one page) and against
CloudWatch's (``bot.local.cloudwatch_paging``: scanned slices, runs of empty pages with a nextToken)."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import pytest

from bot.aws import logs as cw
from bot.aws.clients import client
from bot.local.apilogs_traffic import RawEvent, write_events
from bot.local.cloudwatch_paging import CloudWatchPaging, PagingStats, cloudwatch_paging
from bot.local.seeds import apilogs as seed_module


@pytest.fixture(autouse=True)
def fast_limiter() -> Iterator[cw.Limiter]:
    """The real limiter logic with quotas high enough that tests do not wait on them.

    The 5 requests/s behaviour itself is tested with a fake clock in test_logs.py.
    """
    limiter = cw.Limiter({"FilterLogEvents": 1000.0}, default_rate=1000.0, retry_delays=(0.01, 0.02))
    with cw.use_limiter(limiter):
        yield limiter


# Small slices so that the tests' few hundred events span several pages; empty pages often, in runs.
TEST_PAGING = {"scan_events": 40, "empty_rate": 0.4, "max_empty_run": 3}


@pytest.fixture(params=["moto", "cloudwatch-paging"])
def cloudwatch(request: pytest.FixtureRequest) -> Iterator[CloudWatchPaging | None]:
    """None with moto's own paging; the paging double (installed on every logs client) otherwise."""
    if request.param == "moto":
        yield None
        return
    with cloudwatch_paging(**TEST_PAGING) as double:
        yield double


class FilterCalls:
    """FilterLogEvents of one lookup or tail as the budget counts them.

    ``searches`` are requests that begin a search (without nextToken); the other requests follow a
    nextToken CloudWatch returned (``forced``): how many a search takes is CloudWatch's choice, not
    ours, so the budget bounds the searches and every further page is shown apart. With moto's paging
    (one page per search at these sizes) every call is a search."""

    def __init__(self, double: CloudWatchPaging | None) -> None:
        self.double = double
        self.before: PagingStats | None = double.stats.snapshot() if double else None

    def counted(self, calls: int) -> tuple[int, int]:
        """(searches, forced pages) of ``calls`` FilterLogEvents counted by the code under test."""
        if self.double is None or self.before is None:
            return calls, 0
        made = self.double.stats.since(self.before)
        # Every call the code counted was answered by the double: none bypassed it.
        assert made.requests == calls, (made, calls)
        return made.searches, made.continued


@pytest.fixture
def demo(aws: None) -> seed_module.DemoApi:
    """The demo API (5 routes, alias via stage variable, TOKEN authorizer) with an hour of logs."""
    api_id, account = seed_module.create_api("us-east-1")
    generated = seed_module.generate(api_id, account, datetime.now(UTC), count=30)
    write_events(client("logs"), (e for r in generated.requests for e in r.events))
    return generated


def put_lines(group: str, stream: str, lines: Sequence[tuple[int, str]]) -> None:
    write_events(client("logs"), [RawEvent(group, stream, ts, message) for ts, message in lines])


def lambda_role() -> str:
    iam = client("iam")
    trust = {"Version": "2012-10-17", "Statement": []}
    try:
        return str(
            iam.create_role(RoleName="test-lambda", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
        )
    except iam.exceptions.EntityAlreadyExistsException:
        return str(iam.get_role(RoleName="test-lambda")["Role"]["Arn"])


def create_function(name: str) -> str:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", "def handler(e, c):\n    return {}\n")
    return str(
        client("lambda").create_function(
            FunctionName=name, Runtime="python3.12", Role=lambda_role(), Handler="app.handler",
            Code={"ZipFile": buffer.getvalue()},
        )["FunctionArn"]
    )  # fmt: skip


def with_logging_config(groups: dict[str, str]) -> Callable[..., None]:
    """A botocore after-call hook adding ``LoggingConfig`` as AWS returns it (moto does not store it)."""

    def hook(parsed: dict[str, Any], **_: Any) -> None:
        name = parsed.get("FunctionName", "")
        if name in groups:
            parsed["LoggingConfig"] = {"LogFormat": "JSON", "LogGroup": groups[name]}

    client("lambda").meta.events.register("after-call.lambda.GetFunctionConfiguration", hook)
    return hook
