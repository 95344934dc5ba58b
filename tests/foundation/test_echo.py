"""What a person typed, repeated in an answer: at most 80 characters, and never read as markup.

Every command of the real app (with the demo's data, so lookups can miss rather than stop at missing
configuration) gets a 3,000-character argument that would ping the channel and turn bold, in each place an
argument can go: as the subcommand, in each positional, as each option's value, as an unknown option, as an
extra argument. Whatever the answer (a usage error in the ack, a lookup that found nothing), it is short and
shows the argument cut and escaped.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from bot.errors import echo
from bot.listeners.framework import Subcommand, runtime_of
from tests.conftest import FAKE_AWS_ENV, ONCALL_POLICY
from tests.support.slack import SlackHarness, harness_settings, local_slack

HOSTILE = "<!channel>*bold*" + "x" * 2984
assert len(HOSTILE) == 3000
COMMANDS = ("/ops", "/apilogs", "/mail", "/device", "/dns", "/fanout")


@pytest.fixture(scope="module")
def seeded() -> Iterator[tuple[SlackHarness, dict[str, str]]]:
    """The app with every capability's demo data in moto (seeded once: it takes seconds)."""
    from moto import mock_aws

    from bot.aws import clients
    from bot.aws.functions import forget_local_functions
    from bot.aws.state import StateTable, create_state_table
    from bot.config import Settings
    from bot.local.seeds import SeedContext, seed_all

    saved = dict(os.environ)
    slack = local_slack().start()
    mock = mock_aws()
    try:
        os.environ.update(FAKE_AWS_ENV)
        mock.start()
        clients.clear_caches()
        os.environ.update({"SLACK_API_URL": slack.api_url, "SLACK_BOT_TOKEN": slack.bot_token})
        settings = Settings.from_env()
        create_state_table(settings.state_table)
        seed_all(SeedContext(settings, StateTable(settings.state_table), datetime.now(UTC), slack=slack))
        env = {k: v for k, v in os.environ.items() if k.startswith("OPSBOT_")}
        env["OPSBOT_POLICY"] = json.dumps(ONCALL_POLICY)
        yield SlackHarness(slack, harness_settings(slack, **env)), env
    finally:
        mock.stop()
        slack.stop()
        forget_local_functions()
        os.environ.clear()
        os.environ.update(saved)


@pytest.fixture
def app(
    seeded: tuple[SlackHarness, dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> Iterator[SlackHarness]:
    harness, env = seeded
    for key, value in env.items():  # what the seeds configured, for code that reads it at run time
        monkeypatch.setenv(key, value)
    yield harness
    assert harness.slack.violations == [], f"Slack would have rejected: {harness.slack.violations}"


def hostile_texts(sub: Subcommand, *, default: bool) -> list[str]:
    """Each place in ``sub``'s arguments that a person can type into, holding the hostile argument."""
    name = [] if default else [sub.name]
    fill = ["x"] * len(sub.spec.positionals)
    texts = []
    for index, positional in enumerate(sub.spec.positionals):
        if positional.secret:
            continue  # never repeated at all (tests/foundation/test_framework.py)
        words = list(fill)
        words[index] = HOSTILE
        texts.append(" ".join(name + words))
    for flag in sub.spec.flags:
        if flag.kind != "bool" and not flag.secret:
            texts.append(" ".join(name + fill + [f"--{flag.name}", HOSTILE]))
    texts.append(" ".join(name + fill + ["--" + HOSTILE]))
    texts.append(" ".join(name + fill + ["x"] * 5 + [HOSTILE]))  # one argument too many
    return texts


def problems(text: str) -> list[str]:
    found = []
    if len(text) >= 1200:
        found.append(f"{len(text)} characters")
    if "x" * 81 in text:
        found.append("more than 80 characters of the argument")
    if "<!channel>" in text:
        found.append("an unescaped mention")
    # Only inside a code span (what was typed, shown as typed), where Slack does not format it.
    if any("*bold*" in part for part in text.split("`")[::2]):
        found.append("formatting outside a code span")
    return found


def shown(message: Any) -> list[str]:
    """The mrkdwn a message shows: its text and every text of its blocks."""
    texts = [message.text]

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") == "mrkdwn":
                texts.append(str(node.get("text", "")))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(message.blocks)
    return texts


@pytest.mark.parametrize("slash", COMMANDS)
def test_every_answer_repeats_a_hostile_argument_short_and_escaped(app: SlackHarness, slash: str) -> None:
    command = runtime_of(app.app).commands[slash[1:]]
    texts = [HOSTILE, f"help {HOSTILE}"]
    if slash == "/apilogs":  # a request id, then words that are not a header name: "Unexpected ..."
        texts += [
            f"9439989f-7543-11e6-8dda-150c09a55dc2 {HOSTILE}",
            f"9439989f-7543-11e6-8dda-150c09a55dc2 a b {HOSTILE}",
        ]
    for sub in command.subcommands:
        texts += hostile_texts(sub, default=False)
        if sub.name == command.default:
            texts += hostile_texts(sub, default=True)
    echoed = 0
    wrong: list[str] = []
    for text in texts:
        seen_before = len(app.seen_by())
        ack = app.command(slash, text)
        assert ack.status == 200
        answers = app.seen_by()[seen_before:]
        assert answers, f"{slash} {text[:40]}: no answer"
        for message in answers:
            for part in shown(message):
                if problems(part):
                    wrong.append(
                        f"{slash} {text.replace(HOSTILE, 'HOSTILE')}: {problems(part)}: {part[:160]}"
                    )
                echoed += "&lt;!channel&gt;*bold*" in part
    assert wrong == []
    assert echoed, "no answer repeated the argument at all: the test no longer reaches an echo"


def test_echo_cuts_at_80_characters_and_keeps_formatting_inert() -> None:
    assert echo("x" * 500) == "`" + "x" * 79 + "…`"
    assert echo("x" * 80) == "`" + "x" * 80 + "`"
    assert echo("a`b") == "`a'b`"  # a backtick would end the span
    assert echo("a\nb\u202ec") == "`a?b?c`"  # a newline would end it; U+202E would reverse what follows
    assert echo("") == "(nothing)"
