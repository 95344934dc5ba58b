"""Slack wiring: the token works, its scopes cover the manifest's, the bot can post where it must.

Slack is read through a ``SlackReader`` the caller passes (the core never imports the Slack SDK):
``bot.slack_web.SlackWebReader`` in Lambda and the CLI, a fake in unit tests.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from typing import Protocol

from bot.config import Settings
from bot.core.ops.doctor import Finding, Probe
from bot.errors import OpsbotError

AREA = "slack"
REINSTALL = "Add the missing scopes under OAuth & Permissions in https://api.slack.com/apps (or re-create the app from `opsbot manifest`), then reinstall the app to the workspace."


@dataclass(frozen=True)
class SlackAuth:
    team: str
    team_id: str
    user_id: str
    scopes: tuple[str, ...] | None  # None: Slack's answer had no x-oauth-scopes header


@dataclass(frozen=True)
class SlackChannel:
    channel_id: str
    name: str
    is_member: bool
    is_archived: bool


class SlackUnreachable(OpsbotError):
    """No answer from Slack (network, timeout): says nothing about the token."""

    def __init__(self, message: str) -> None:
        super().__init__(
            message, hint="Check the route to slack.com from here (a function in a VPC needs a NAT gateway)."
        )


class SlackSecretUnreadable(OpsbotError):
    """The Slack secret could not be read here, so Slack could not be asked."""

    def __init__(self, message: str) -> None:
        super().__init__(
            message,
            hint="Check OPSBOT_SLACK_SECRET_ID, the region it is read in (AWS_REGION) and "
            "secretsmanager:GetSecretValue for these credentials.",
        )


class SlackReader(Protocol):
    def auth(self) -> SlackAuth: ...  # raises OpsbotError with Slack's error code in the message

    def channel(self, channel_id: str) -> SlackChannel: ...


def manifest_scopes() -> tuple[str, ...]:
    """The bot scopes opsbot's manifest asks for (shipped with the package: bot/manifest.json)."""
    manifest = json.loads(resources.files("bot").joinpath("manifest.json").read_text())
    return tuple(manifest["oauth_config"]["scopes"]["bot"])


def scope_finding(auth: SlackAuth, wanted: tuple[str, ...]) -> Finding:
    target = f"team {auth.team_id}"
    if auth.scopes is None:
        return Finding(AREA, "scopes", target, "skip", "Slack's answer did not list the token's scopes.")
    missing = [s for s in wanted if s not in auth.scopes]
    if missing:
        return Finding(
            AREA,
            "scopes",
            target,
            "fail",
            f"the token lacks {', '.join(missing)} (it has {', '.join(auth.scopes) or 'none'})",
            REINSTALL,
        )
    return Finding(AREA, "scopes", target, "ok", f"every scope of the manifest is granted ({len(wanted)})")


def channel_finding(channel: SlackChannel, purpose: str) -> Finding:
    target = f"#{channel.name} ({channel.channel_id})" if channel.name else channel.channel_id
    check = f"can post in the {purpose}"
    if channel.is_archived:
        return Finding(
            AREA, check, target, "fail", "the channel is archived", "Unarchive it, or name another channel."
        )
    if not channel.is_member:
        return Finding(
            AREA,
            check,
            target,
            "fail",
            "opsbot is not a member, so it cannot post there",
            f"In Slack, type `/invite @opsbot` in {target}.",
        )
    return Finding(AREA, check, target, "ok", "opsbot is a member")


def signing_finding(signing_secret_set: bool | None) -> Finding:
    """``None``: not known here (a terminal without the app's secrets; the deployed function has its own)."""
    target = "Slack requests"
    if signing_secret_set:
        return Finding(AREA, "signing secret", target, "ok", "set: every request's signature is checked")
    if signing_secret_set is None:
        return Finding(
            AREA,
            "signing secret",
            target,
            "skip",
            "not configured here, so not checked (the deployed function reads its own)",
            "Set OPSBOT_SLACK_SECRET_ID to the stack's secret to check it from a terminal.",
        )
    return Finding(
        AREA,
        "signing secret",
        target,
        "fail",
        "no signing secret: every Slack request would be refused",
        "Put the app's Signing Secret in the secret named by OPSBOT_SLACK_SECRET_ID "
        "(template parameter SlackSecretName), or in SLACK_SIGNING_SECRET.",
    )


def probes(settings: Settings, reader: SlackReader | None, *, signing_secret_set: bool | None) -> list[Probe]:
    found = [Probe(AREA, "signing secret", "Slack requests", lambda: [signing_finding(signing_secret_set)])]
    if reader is None:
        found.append(
            Probe(
                AREA,
                "token",
                "Slack Web API",
                lambda: [
                    Finding(
                        AREA,
                        "token",
                        "Slack Web API",
                        "skip",
                        "no bot token configured here",
                        "Set SLACK_BOT_TOKEN (or OPSBOT_SLACK_SECRET_ID) to check Slack from the terminal.",
                    )
                ],
            )
        )
        return found

    def token_and_scopes() -> list[Finding]:
        try:
            auth = reader.auth()
        except (SlackUnreachable, SlackSecretUnreadable) as error:
            # Slack was not asked: nothing is known of the token, so no advice about it.
            return [
                Finding(
                    AREA, "token", "Slack Web API", "warn", f"not checked: {error.message}", error.hint or ""
                )
            ]
        except OpsbotError as error:
            return [
                Finding(
                    AREA,
                    "token",
                    "Slack Web API",
                    "fail",
                    f"the bot token does not work: {error.message}",
                    "Copy the Bot User OAuth Token (xoxb-…) from OAuth & Permissions into the Slack secret, "
                    "and check that the app is installed to the workspace.",
                )
            ]
        token = Finding(AREA, "token", "Slack Web API", "ok", f"works for {auth.team} ({auth.team_id})")
        return [token, scope_finding(auth, manifest_scopes())]

    found.append(Probe(AREA, "token", "Slack Web API", token_and_scopes))
    channels = [(settings.alert_channel, "mail alert channel")] if settings.alert_channel else []
    for channel_id, purpose in channels:

        def post_check(channel_id: str = channel_id, purpose: str = purpose) -> list[Finding]:
            try:
                channel = reader.channel(channel_id)
            except (SlackUnreachable, SlackSecretUnreadable) as error:
                return [
                    Finding(
                        AREA,
                        f"can post in the {purpose}",
                        channel_id,
                        "skip",
                        f"not checked: {error.message}",
                    )
                ]
            except OpsbotError as error:
                return [
                    Finding(
                        AREA,
                        f"can post in the {purpose}",
                        channel_id,
                        "fail",
                        f"Slack cannot read the channel: {error.message}",
                        "Check the channel id (OPSBOT_ALERT_CHANNEL), and invite opsbot to it with "
                        "`/invite @opsbot`.",
                    )
                ]
            return [channel_finding(channel, purpose)]

        found.append(Probe(AREA, f"can post in the {purpose}", channel_id, post_check))
    return found
