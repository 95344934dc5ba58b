"""Fixtures for /mail: moto tables (mailing + state) and the local Slack server for alerts."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from botocore.stub import Stubber

from bot.config import Settings
from bot.local.slack_api import LocalSlack
from tests.support.slack import harness_settings, quick_slack_retries  # noqa: F401  (autouse)

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
