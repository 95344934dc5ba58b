"""The scheduled and event-driven functions: the account from their configuration or their event, with
opsbot-<function> as session name and source identity; /dns work carries its target to the mirror."""

from __future__ import annotations

from typing import Any

import pytest

from bot.aws import clients
from bot.aws.targets import for_function, from_wire, in_event_account
from bot.config import Settings
from bot.errors import UsageError
from tests.accounts.conftest import PROD_ACCOUNT, PROD_CHANGE_ROLE, accounts_json


def settings(**env: str) -> Settings:
    return Settings.from_env({"AWS_REGION": "us-east-1", "OPSBOT_ACCOUNTS": accounts_json(), **env})


def test_the_event_names_the_account(aws: None, sts_calls: list[dict[str, Any]]) -> None:
    seen: list[str] = []

    def handler(event: Any, context: Any) -> str:
        identity = clients.client("sts").get_caller_identity()
        seen.append(identity["Account"])
        return str(identity["Arn"])

    wrapped = in_event_account(handler, "device-registration", settings())
    assert wrapped({"AWSAccountId": PROD_ACCOUNT, "serialNumber": "x"}, None).endswith(
        "assumed-role/opsbot-change/opsbot-device-registration"
    )
    assert sts_calls[-1]["SourceIdentity"] == "opsbot-device-registration"
    wrapped({"account": "123456789012"}, None)  # opsbot's own account
    wrapped({"AWSAccountId": "999999999999"}, None)  # no role there: opsbot's own, logged
    wrapped({}, None)
    assert seen == [PROD_ACCOUNT, "123456789012", "123456789012", "123456789012"]
    configured = in_event_account(handler, "ses-feedback", settings(OPSBOT_FUNCTION_ACCOUNT="prod"))
    assert configured({"Records": []}, None).endswith("/opsbot-ses-feedback")


def test_without_accounts_nothing_changes() -> None:
    plain = Settings.from_env({"AWS_REGION": "us-east-1"})
    assert for_function(plain, "dns-mirror", account_id=PROD_ACCOUNT) is None


def test_a_wire_target_is_resolved_from_the_receivers_configuration() -> None:
    target = from_wire(
        settings(), {"account": "prod", "region": "ap-southeast-1", "principal": "U0ALICE"}, mutating=True
    )
    assert target is not None
    assert (target.role_arn, target.region, target.principal) == (
        PROD_CHANGE_ROLE,
        "ap-southeast-1",
        "U0ALICE",
    )
    with pytest.raises(UsageError, match="There is no account `evil`"):
        from_wire(settings(), {"account": "evil", "principal": "U0ALICE"}, mutating=False)
    assert from_wire(settings(), None, mutating=False) is None


def test_an_alarm_is_correlated_in_its_account_with_the_read_role(aws: None) -> None:
    from types import SimpleNamespace

    from bot.core.alarms.delivery import _in_account_of

    # The intake only reads in the alarm's account (logs, metrics, the API): its read-only role.
    with _in_account_of(settings(), SimpleNamespace(account=PROD_ACCOUNT)):  # type: ignore[arg-type]
        assert (
            clients.client("sts")
            .get_caller_identity()["Arn"]
            .endswith("assumed-role/opsbot-read/opsbot-alarms")
        )
    with _in_account_of(settings(), SimpleNamespace(account="123456789012")):  # type: ignore[arg-type]
        assert clients.client("sts").get_caller_identity()["Account"] == "123456789012"


def test_an_alarm_posts_buttons_made_for_its_account() -> None:
    """An alarm of a member account is posted with buttons that carry that account and the alarm's region:
    Look up and Errors since read where the alarm is, whatever account the channel is bound to."""
    from bot.core.alarms.delivery import EpisodeView
    from bot.core.alarms.model import Alarm
    from bot.intake.alarms import SlackAlarmPoster
    from bot.listeners.framework.accounts import unwrap_value

    def values(account: str, poster_settings: Settings) -> list[str]:
        alarm = Alarm("orders-5xx", "ALARM", 1_700_000_000_000, account=account, region="ap-southeast-1")
        _, blocks = SlackAlarmPoster(poster_settings).episode(EpisodeView("k", alarm, 1_700_000_000_000))
        return [
            e["value"]
            for b in blocks
            if b.get("type") == "actions"
            for e in b["elements"]
            if e.get("type") == "button" and "value" in e
        ]

    prod = values(PROD_ACCOUNT, settings())
    assert prod and all(unwrap_value(v)[:3] == (True, "prod", "ap-southeast-1") for v in prod)
    # An account no entry names: wrapped with no account (the click follows the channel's), so that a
    # value made of the alarm's own data is never read as carrying one; no OPSBOT_ACCOUNTS at all: the
    # buttons are as they were.
    unknown = values("999999999999", settings())
    assert unknown and all(unwrap_value(v)[:3] == (True, "", "") for v in unknown)
    assert not any(
        unwrap_value(v)[0] for v in values(PROD_ACCOUNT, Settings.from_env({"AWS_REGION": "us-east-1"}))
    )


def test_messages_a_run_posts_itself_carry_the_account_on_their_buttons() -> None:
    """A run that posts with its call's client (a DNS preview with Apply, a tail's Stop, an announcement)
    gets the account and region on its buttons, as the framework's replies do: a click on such a button
    goes to the account the message was about, not the channel's."""
    from bot.core.common.accounts import Account
    from bot.listeners.framework.accounts import unwrap_value
    from bot.listeners.framework.runtime import Place

    sent: list[tuple[str, dict[str, Any]]] = []

    class Recorder:
        def __getattr__(self, name: str) -> Any:
            return lambda **kwargs: sent.append((name, kwargs)) or {"ok": True, "ts": "1.0"}

    apply = {"type": "button", "action_id": "dns:apply", "value": '{"domain":"corp.example.com"}'}
    link = {"type": "button", "action_id": "link:docs", "url": "https://example.com"}
    blocks = [{"type": "actions", "elements": [apply, link]}]
    prod = Place(
        Account("prod", role_arn=f"arn:aws:iam::{PROD_ACCOUNT}:role/r"), "eu-west-1", configured=True
    )
    client = prod.dress_client(Recorder())
    client.chat_postMessage(channel="C1", text="preview", blocks=blocks)
    client.chat_update(channel="C1", ts="1.0", text="again", blocks=sent[0][1]["blocks"])
    client.conversations_info(channel="C1")
    for _, kwargs in sent[:2]:
        apply_sent, link_sent = kwargs["blocks"][0]["elements"]
        assert unwrap_value(apply_sent["value"]) == (True, "prod", "eu-west-1", apply["value"])
        assert link_sent == link  # link buttons carry no value
    assert sent[2] == ("conversations_info", {"channel": "C1"})
    assert blocks[0]["elements"][0] is apply and apply["value"].startswith("{")  # the run's blocks untouched
    # Without OPSBOT_ACCOUNTS the run gets its client as it is.
    plain = Recorder()
    assert Place(Account(""), "us-east-1").dress_client(plain) is plain
