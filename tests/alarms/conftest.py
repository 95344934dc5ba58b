"""Fixtures for alarms: moto (state table, logs, lambda), the local Slack server, sample events."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bot.config import Settings
from bot.local.slack_api import LocalSlack
from tests.apilogs.conftest import fast_limiter  # noqa: F401  (autouse: Logs' quotas, without the waits)
from tests.support.slack import harness_settings, quick_slack_retries  # noqa: F401  (autouse)

ALERTS = "C0ALERTS"
EVENTS = Path(__file__).resolve().parents[1] / "events"


def sample(name: str) -> dict[str, Any]:
    return copy.deepcopy(json.loads((EVENTS / name).read_text()))


def sns_message(name: str) -> dict[str, Any]:
    """The alarm JSON inside a sample SNS event."""
    return dict(json.loads(sample(name)["Records"][0]["Sns"]["Message"]))


def sqs_event(*messages: dict[str, Any], envelope: bool = True) -> dict[str, Any]:
    """SQS records carrying the SNS envelope of each message (or the raw message)."""
    records = []
    for number, message in enumerate(messages):
        body: Any = message
        if envelope and "detail-type" not in message:
            body = {"Type": "Notification", "MessageId": f"sns-{number}", "Message": json.dumps(message)}
        records.append(
            {"messageId": f"m-{number}", "body": json.dumps(body), "eventSource": "aws:sqs", "attributes": {}}
        )
    return {"Records": records}


class FakeFind:
    """A ``find_errors`` that records its queries and answers with one group."""

    def __init__(self, groups: list[dict[str, Any]] | None = None) -> None:
        self.queries: list[Any] = []
        self.groups = groups if groups is not None else [
            {"method": "POST", "path": "/orders", "status": 502, "cause": "KeyError: 'customer_id'", "count": 7,
             "first": 1796609100000, "last": 1796609400000, "functions": ["orders-api"],
             "requestIds": ["e8e5b475-f1e2-11f1-bbf2-5cd8c7aa9a87"]},
        ]  # fmt: skip

    def __call__(self, query: Any) -> Any:
        self.queries.append(query)
        groups = self.groups

        class Result:
            def to_json(self) -> dict[str, Any]:
                return {"groups": groups, "complete": True}

        return Result()


@pytest.fixture
def make_alarm_settings(state_table: str, slack_server: LocalSlack) -> Callable[..., Settings]:
    def make(**env: str) -> Settings:
        return harness_settings(slack_server, OPSBOT_ALERT_CHANNEL=ALERTS, **env)

    return make


@pytest.fixture
def alarm_settings(make_alarm_settings: Callable[..., Settings]) -> Settings:
    return make_alarm_settings()
