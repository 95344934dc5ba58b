"""Fixtures for /mail: moto tables (mailing + state) and the local Slack server for alerts."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from botocore.stub import Stubber

from bot.config import Settings
from bot.local.slack_api import LocalSlack
from tests.support.slack import harness_settings

ALERTS = "C0ALERTS"


@pytest.fixture
def sesv2() -> Iterator[Stubber]:
    """The cached sesv2 client the wrappers use, with every call checked against the service model (moto
    does not implement the suppression-list calls)."""
    from bot.aws.clients import client

    with Stubber(client("sesv2")) as stubber:
        yield stubber
        stubber.assert_no_pending_responses()


@pytest.fixture
def atomic_moto(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make moto's DynamoDB writes atomic, as DynamoDB's are, for tests with concurrent writers.

    moto checks a condition and applies an update without a lock, so two threads can both pass a condition
    or lose one of two ADDs: races DynamoDB does not have.
    """
    import threading

    from moto.dynamodb.models import DynamoDBBackend

    lock = threading.RLock()
    for name in ("put_item", "update_item", "delete_item", "transact_write_items"):
        original = getattr(DynamoDBBackend, name)

        def serialised(self: Any, *args: Any, _original: Any = original, **kwargs: Any) -> Any:
            with lock:
                return _original(self, *args, **kwargs)

        monkeypatch.setattr(DynamoDBBackend, name, serialised)


@pytest.fixture
def mailing_table(state_table: str) -> str:
    from bot.aws.mailing import create_mailing_table

    create_mailing_table("mailing")
    return "mailing"


@pytest.fixture
def make_mail_settings(mailing_table: str, slack_server: LocalSlack) -> Callable[..., Settings]:
    """Settings pointing at moto's tables and the local Slack server, with ``env`` on top."""

    def make(**env: str) -> Settings:
        return harness_settings(slack_server, OPSBOT_ALERT_CHANNEL=ALERTS, **env)

    return make


@pytest.fixture
def mail_settings(make_mail_settings: Callable[..., Settings]) -> Settings:
    return make_mail_settings()
