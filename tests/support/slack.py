"""Drive the real Bolt app with signed requests, and see what it sent to the local Slack server.

``SlackHarness`` is what tests use: ``command("/ops", "whoami")``, ``click(message, "mail:reenable")``,
``submit(view, values)``; each call waits until the lazy work has finished, so assertions can follow.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import pytest

from bot.config import Settings
from bot.local.requests import (
    block_actions_body,
    event_body,
    message_action_body,
    signed_headers,
    slash_command_body,
    view_submission_body,
)
from bot.local.server import TrackingLazyRunner
from bot.local.slack_api import LocalSlack, Message

SIGNING_SECRET = "test-signing-secret-0123456789abcdef"
ALICE = ("U0ALICE", "alice")  # on call: member of S0ONCALL
BOB = ("U0BOB", "bob")  # no grants
CAROL = ("U0CAROL", "carol")  # named directly in some test policies
OPS_CHANNEL = ("C0OPS", "ops")
ONCALL_GROUP = "S0ONCALL"


@dataclass
class Ack:
    status: int
    body: str

    @property
    def json(self) -> dict[str, Any]:
        return json.loads(self.body) if self.body else {}

    @property
    def text(self) -> str:
        return str(self.json.get("text", "")) if self.body.startswith("{") else self.body


class SlackHarness:
    def __init__(self, slack: LocalSlack, settings: Settings) -> None:
        from bot.app import build_app

        self.slack = slack
        self.settings = settings
        self.runner = TrackingLazyRunner(logging.getLogger("tests.lazy"))
        self.app = build_app(settings, lazy_runner=self.runner)

    # -- requests --------------------------------------------------------------------------------
    def dispatch(self, body: str, *, headers: Mapping[str, str] | None = None, wait: bool = True) -> Ack:
        from slack_bolt.request import BoltRequest

        signed = dict(headers or signed_headers(SIGNING_SECRET, body))
        response = self.app.dispatch(BoltRequest(body=body, headers=signed))
        if wait:
            self.wait()
        return Ack(response.status, response.body or "")

    def wait(self) -> None:
        assert self.runner.wait_idle(30), "lazy work did not finish within 30 s"

    def command(
        self,
        command: str,
        text: str = "",
        *,
        user: tuple[str, str] = ALICE,
        channel: tuple[str, str] = OPS_CHANNEL,
    ) -> Ack:
        body = slash_command_body(
            command,
            text,
            user_id=user[0],
            user_name=user[1],
            channel_id=channel[0],
            channel_name=channel[1],
            team_id=self.slack.team_id,
            response_url=self.slack.new_response_url(channel[0], user[0]),
        )
        self.runner.hold()  # as in Slack, the ack's message appears before anything the lazy work sends
        try:
            ack = self.dispatch(body, wait=False)
            if ack.status == 200:
                self.slack.record_ack(channel[0], user[0], ack.body)
        finally:
            self.runner.release()
        self.wait()
        return ack

    def click(
        self,
        message: Message,
        action_id: str,
        *,
        user: tuple[str, str] = ALICE,
        value: str | None = None,
        option: int = 0,
    ) -> Ack:
        """Click the button ``action_id`` on ``message`` (as stored by the local Slack server), or choose
        option ``option`` of the overflow menu (select, radio buttons) ``action_id``, as Slack sends it:
        the chosen option as ``selected_option``. ``value`` replaces the button's value or the chosen
        option's (a forged or stale click)."""
        element, block_id = find_button(message.blocks, action_id)
        chosen: dict[str, Any] | None = None
        if element.get("type", "button") == "button":
            if value is not None:
                element = {**element, "value": value}
        else:
            options = [o for g in element.get("option_groups", []) for o in g["options"]] or element[
                "options"
            ]
            chosen = dict(options[option])
            if value is not None:
                chosen["value"] = value
        ephemeral = message.kind == "ephemeral"
        body = block_actions_body(
            action=element,
            block_id=block_id,
            message=None
            if ephemeral
            else {"type": "message", "ts": message.ts, "text": message.text, "blocks": message.blocks},
            user_id=user[0],
            user_name=user[1],
            channel_id=message.channel,
            channel_name=message.channel,
            team_id=self.slack.team_id,
            # The response_url refers to the message as Slack stores it, even when the click comes
            # from a stale copy (a second client that has not redrawn yet).
            response_url=self.slack.new_response_url(
                message.channel, user[0], self.slack.find(message.ts, message.channel) or message
            ),
            message_ts=message.ts,
            ephemeral=ephemeral,
            selected_option=chosen,
        )
        return self.dispatch(body)

    def submit(
        self, view: Mapping[str, Any], values: Mapping[str, str], *, user: tuple[str, str] = ALICE
    ) -> Ack:
        body = view_submission_body(
            view=view, values=values, user_id=user[0], user_name=user[1], team_id=self.slack.team_id
        )
        return self.dispatch(body)

    def shortcut(
        self,
        callback_id: str,
        message: Mapping[str, Any],
        *,
        user: tuple[str, str] = ALICE,
        channel: tuple[str, str] = OPS_CHANNEL,
        user_team_id: str = "",
    ) -> Ack:
        """Use the message shortcut ``callback_id`` on ``message`` (a dict with ``ts``, ``text``, ...)."""
        body = message_action_body(
            callback_id=callback_id, message=message, user_id=user[0], user_name=user[1],
            channel_id=channel[0], channel_name=channel[1], team_id=self.slack.team_id,
            response_url=self.slack.new_response_url(channel[0], user[0]), user_team_id=user_team_id,
        )  # fmt: skip
        return self.dispatch(body)

    def event(self, event: Mapping[str, Any], *, event_id: str = "", retry: int = 0) -> Ack:
        """Deliver an Events API event (JSON), as Slack's ``retry``-th delivery when > 0."""
        body = event_body(
            event, team_id=self.slack.team_id, event_id=event_id, bot_user_id=self.slack.bot_user_id
        )
        headers = signed_headers(SIGNING_SECRET, body, form=False)
        if retry:
            headers |= {"x-slack-retry-num": str(retry), "x-slack-retry-reason": "http_timeout"}
        return self.dispatch(body, headers=headers)

    # -- what the user saw -----------------------------------------------------------------------
    def seen_by(self, user: tuple[str, str] = ALICE, channel: str | None = None) -> list[Message]:
        """Messages the user can see: in-channel ones and ephemerals addressed to them, oldest first."""
        return [
            m
            for m in self.slack.visible(channel)
            if m.kind != "view" and (m.kind == "message" or m.ephemeral_to == user[0])
        ]

    def last(self, user: tuple[str, str] = ALICE) -> Message:
        seen = self.seen_by(user)
        assert seen, "the user saw no message"
        return seen[-1]

    def texts(self, user: tuple[str, str] = ALICE) -> list[str]:
        return [m.text for m in self.seen_by(user)]


def find_button(blocks: list[dict[str, Any]], action_id: str) -> tuple[dict[str, Any], str]:
    for block in blocks:
        elements: Iterator[dict[str, Any]]
        if block.get("type") == "actions":
            elements = iter(block.get("elements", []))
        elif isinstance(block.get("accessory"), dict):
            elements = iter([block["accessory"]])
        else:
            continue
        for element in elements:
            if element.get("action_id") == action_id:
                return element, str(block.get("block_id", ""))
    raise AssertionError(f"no button {action_id!r} in the message")


def harness_settings(slack: LocalSlack, **env: str) -> Settings:
    """Settings for the app under test: the local Slack server, the test signing secret, ``env`` on top."""
    base = {
        "SLACK_API_URL": slack.api_url,
        "SLACK_BOT_TOKEN": slack.bot_token,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_BOT_USER_ID": slack.bot_user_id,
        "SLACK_TEAM_ID": slack.team_id,
        "AWS_REGION": "us-east-1",
    }
    return Settings.from_env({**base, **env})


def local_slack() -> LocalSlack:
    return LocalSlack(
        usergroups={ONCALL_GROUP: [ALICE[0]], "S0EMPTY": []},
        users={u: n for u, n in (ALICE, BOB, CAROL)},
        channels={OPS_CHANNEL[0]: OPS_CHANNEL[1], "C0ALERTS": "ops-alerts", "C0GENERAL": "general"},
    )


@pytest.fixture(autouse=True)
def quick_slack_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """slack_sdk retries a refused connection once, 0.5 to 1.5 s later (its default retry handler). The
    tests' Slack outages are a closed port, refused at once; the retry still happens, 10 ms later (12 s of
    sleeping in the mail outbox tests alone). Autouse where a conftest imports it (mail, alarms)."""
    from slack_sdk.http_retry import builtin_interval_calculators

    monkeypatch.setattr(
        builtin_interval_calculators.BackoffRetryIntervalCalculator,
        "calculate_sleep_duration",
        lambda self, current_attempt: 0.01,
    )
