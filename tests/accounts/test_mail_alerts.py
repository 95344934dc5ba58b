"""SES bounce alerts carry the account their feedback was stored in: the real feedback function (wrapped as
handlers/ses_feedback.py wraps it) posts to the local Slack server, and a signed click on the alert acts in
that account, even when the alert channel is bound to another one."""

from __future__ import annotations

import json
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest

from bot.aws import mailing
from bot.aws.targets import in_event_account, posting_account
from bot.config import Settings
from bot.intake.ses_feedback import SesFeedbackApp
from bot.listeners.framework.accounts import unwrap_value
from bot.local import mail_samples
from bot.local.slack_api import LocalSlack, Message
from tests.accounts.conftest import PROD_ACCOUNT, PROD_CHANGE_ROLE, accounts_json
from tests.support.slack import ALICE, CAROL, SlackHarness, harness_settings

ALERTS = "C0ALERTS"
ADDRESS = "bounced@example.com"
T0 = 1_714_550_400_000
# Nothing listens there: every Slack call fails to connect, as in an outage.
SLACK_DOWN = "http://127.0.0.1:9/api/"
POLICY = {
    "rules": [
        {"allow": ["mail.*"], "users": ["U0ALICE"]},
        # Carol decides on mail in opsbot's own account only.
        {"allow": ["mail.*"], "users": ["U0CAROL"], "accounts": ["own"]},
    ],
    # The alert channel's commands go to opsbot's own account.
    "channel_accounts": {ALERTS: "own"},
}


def lambda_context(account: str) -> Any:
    return SimpleNamespace(
        invoked_function_arn=f"arn:aws:lambda:us-east-1:{account}:function:opsbot-SesFeedback",
        aws_request_id="r1",
    )


@pytest.fixture
def mailing_tables(state_table: str, in_prod: Callable[[], Any]) -> None:
    """A mailing table in each account (the same name, as two stacks would have)."""
    mailing.create_mailing_table("mailing")
    with in_prod():
        mailing.create_mailing_table("mailing")


def feedback_function(slack: LocalSlack, **env: str) -> Callable[[Any, Any], Any]:
    """The SES feedback Lambda as handlers/ses_feedback.py builds it, with its own settings."""
    settings = harness_settings(slack, OPSBOT_ACCOUNTS=accounts_json(), OPSBOT_ALERT_CHANNEL=ALERTS, **env)
    return in_event_account(SesFeedbackApp(settings), "ses-feedback", settings)


def bounce(address: str = ADDRESS) -> dict[str, Any]:
    return mail_samples.sqs_event([mail_samples.bounce([address], T0)])


def alert_of(slack: LocalSlack, address: str = ADDRESS) -> Message:
    found = [m for m in slack.visible(ALERTS) if address in m.text]
    assert found, f"no alert for {address} in {[m.text for m in slack.visible(ALERTS)]}"
    return found[-1]


def button_values(message: Message) -> list[str]:
    return [
        e["value"]
        for b in message.blocks
        if b["type"] == "actions"
        for e in b["elements"]
        if e.get("type") == "button" and "value" in e
    ]


def state_in(table_account: Callable[[], Any] | None, address: str = ADDRESS) -> str | None:
    if table_account is None:
        item = mailing.get_address("mailing", address)
    else:
        with table_account():
            item = mailing.get_address("mailing", address)
    return None if item is None else str(item["state"])


def test_a_click_on_the_alert_acts_in_the_account_whose_ses_bounced(
    make_harness: Callable[..., SlackHarness],
    slack_server: LocalSlack,
    mailing_tables: None,
    in_prod: Callable[[], Any],
    sts_calls: list[dict[str, Any]],
) -> None:
    harness = make_harness(OPSBOT_ACCOUNTS=accounts_json(), OPSBOT_POLICY=json.dumps(POLICY))
    # The feedback function of the prod account's SES (OPSBOT_FUNCTION_ACCOUNT, docs/accounts.md).
    answer = feedback_function(slack_server, OPSBOT_FUNCTION_ACCOUNT="prod")(
        bounce(), lambda_context("123456789012")
    )
    assert answer == {"batchItemFailures": []}
    assert (state_in(in_prod), state_in(None)) == ("disable", None)  # stored in prod only
    alert = alert_of(slack_server)
    values = button_values(alert)
    assert len(values) == 3 and all(unwrap_value(v) == (True, "prod", "us-east-1", ADDRESS) for v in values)
    assert f"Account `prod` ({PROD_ACCOUNT}) · region `us-east-1`" in json.dumps(
        alert.blocks, ensure_ascii=False
    )

    # Carol may decide in opsbot's own account (the channel's), not in prod: authorized for the alert's.
    harness.click(alert, "mail:reenable", user=CAROL)
    assert "You may not run `mail.reenable`" in harness.last(CAROL).text
    assert state_in(in_prod) == "disable"

    harness.click(alert, "mail:reenable", user=ALICE)
    assert (state_in(in_prod), state_in(None)) == ("enable", None)
    assert sts_calls[-1]["RoleArn"] == PROD_CHANGE_ROLE and sts_calls[-1]["SourceIdentity"] == "U0ALICE"
    resolved = slack_server.find(alert.ts, ALERTS)
    assert resolved is not None and "Re-enabled by <@U0ALICE>" in json.dumps(resolved.blocks)


def test_an_alert_posted_late_from_the_outbox_keeps_its_account(
    make_harness: Callable[..., SlackHarness],
    slack_server: LocalSlack,
    mailing_tables: None,
    in_prod: Callable[[], Any],
) -> None:
    """Slack is down when prod's bounce is stored; opsbot's own feedback function posts it later: its
    buttons still act in prod."""
    harness = make_harness(OPSBOT_ACCOUNTS=accounts_json(), OPSBOT_POLICY=json.dumps(POLICY))
    down = feedback_function(slack_server, OPSBOT_FUNCTION_ACCOUNT="prod", SLACK_API_URL=SLACK_DOWN)
    down(bounce(), lambda_context("123456789012"))
    assert slack_server.visible(ALERTS) == []
    feedback_function(slack_server)(bounce("own.reader@example.com"), lambda_context("123456789012"))
    late = alert_of(slack_server, ADDRESS)
    assert all(unwrap_value(v)[:3] == (True, "prod", "us-east-1") for v in button_values(late))
    own = alert_of(slack_server, "own.reader@example.com")
    assert all(unwrap_value(v)[:3] == (True, "own", "us-east-1") for v in button_values(own))
    harness.click(late, "mail:suppress", user=ALICE)
    with in_prod():
        assert mailing.get_address("mailing", ADDRESS)["sticky"] is True  # type: ignore[index]


def test_without_accounts_the_alert_buttons_are_as_they_were(
    slack_server: LocalSlack, mailing_tables: None
) -> None:
    settings = harness_settings(slack_server, OPSBOT_ALERT_CHANNEL=ALERTS)
    in_event_account(SesFeedbackApp(settings), "ses-feedback", settings)(
        bounce(), lambda_context(PROD_ACCOUNT)
    )
    alert = alert_of(slack_server)
    assert button_values(alert) == [ADDRESS, ADDRESS, ADDRESS]
    assert "Account `" not in json.dumps(alert.blocks)


def settings(accounts: str = "", **env: str) -> Settings:
    return Settings.from_env(
        {"AWS_REGION": "us-east-1", "OPSBOT_ACCOUNTS": accounts or accounts_json(), **env}
    )


def test_the_posting_account_follows_the_function_and_its_event() -> None:
    """The target in_event_account chose; else the entry with a role in the account the function runs in
    (opsbot's stack deployed in a member account); else opsbot's own entry, named or not."""
    from bot.core.common.accounts import OWN

    def chosen(
        context: Any, used: Settings | None = None, event: dict[str, Any] | None = None
    ) -> tuple[str, str] | None:
        used = used or settings()
        seen: list[tuple[str, str] | None] = []

        def handler(_: Any, lambda_context: Any) -> None:
            found = posting_account(used, lambda_context)
            seen.append(None if found is None else (found[0].name, found[1]))

        in_event_account(handler, "ses-feedback", used)(event or {"Records": []}, context)
        return seen[0]

    assert chosen(None, settings(OPSBOT_FUNCTION_ACCOUNT="prod")) == ("prod", "us-east-1")
    assert chosen(None, event={"AWSAccountId": PROD_ACCOUNT}) == ("prod", "us-east-1")  # the event's
    assert chosen(lambda_context(PROD_ACCOUNT)) == ("prod", "us-east-1")  # runs in prod
    assert chosen(lambda_context("123456789012")) == ("own", "us-east-1")
    assert chosen(lambda_context("999999999999")) == ("own", "us-east-1")  # no entry there: opsbot's own
    in_singapore = settings(json.dumps({"own": {}, "prod": {"roleArn": f"arn:aws:iam::{PROD_ACCOUNT}:role/r",
                                                          "regions": ["ap-southeast-1"]}}))  # fmt: skip
    assert chosen(lambda_context(PROD_ACCOUNT), in_singapore) == ("prod", "ap-southeast-1")
    unnamed = settings(json.dumps({"prod": {"roleArn": f"arn:aws:iam::{PROD_ACCOUNT}:role/r"}}))
    assert chosen(None, unnamed) == (OWN, "us-east-1")
    assert chosen(None, Settings.from_env({"AWS_REGION": "us-east-1"})) is None
