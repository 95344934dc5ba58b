"""With several accounts every answer a command makes names the account and region it was about: the
replies, the refusals and errors, the messages a run posts itself (a tail's channel message), in Slack;
in the terminal a line on stderr when --account named another account than the default. Signed requests
into the real Bolt app, and the CLI's ``main``."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from bot.aws.clients import client
from bot.cli import main
from bot.listeners.framework.runtime import Place
from bot.local.apilogs_traffic import write_events
from bot.local.seeds import apilogs as seed_module
from tests.accounts.conftest import PROD_ACCOUNT, accounts_json
from tests.accounts.test_cli import two_tables
from tests.apilogs.test_listener import start_command, tail_message, thread_of
from tests.support.slack import ALICE, SlackHarness

PROD_LINE = f":cloud: Account `prod` ({PROD_ACCOUNT}) · region `us-east-1`"
READ_ALL = json.dumps({"rules": [], "default_read": "allow"})

prod_and_own_tables = two_tables  # the CLI's fixture: a fan-out table in each account


def flat(message: Any) -> str:
    return message.text + json.dumps(message.blocks, ensure_ascii=False)


def test_a_tails_channel_message_names_the_account_and_its_thread_replies_do_not_repeat_it(
    make_harness: Callable[..., SlackHarness], in_prod: Callable[[], Any]
) -> None:
    """The tail posts its own channel message and thread (not a reply through the response URL): the
    message names prod, when it starts and once more when it is redrawn at the end; the replies in its
    thread hang under it and do not repeat the line."""
    with in_prod():
        api_id, account = seed_module.create_api("us-east-1")
        demo = seed_module.generate(api_id, account, datetime.now(UTC), count=10)
        write_events(client("logs"), (e for r in demo.requests for e in r.events))
    harness = make_harness(OPSBOT_ACCOUNTS=accounts_json(), OPSBOT_POLICY=READ_ALL, OPSBOT_DEFAULT_API=api_id)
    start_command(harness, "tail --for 2s --mode poll --since 1h --raw --account prod")
    parent = tail_message(harness.slack)
    assert PROD_LINE in flat(parent)
    harness.wait()
    ended = harness.slack.find(parent.ts)
    assert ended is not None and "Tail of" in flat(ended)
    assert flat(ended).count(PROD_LINE) == 1, flat(ended)
    thread = thread_of(harness.slack, ended)
    assert thread and not [m for m in thread if PROD_LINE in flat(m)]
    # The reply to the command itself names it too (the framework's reply).
    assert harness.last(ALICE).text.endswith(PROD_LINE)


class _Recorder:
    """A Slack WebClient that records what it is asked to send, answering with a new ts each time."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, Any]]] = []

    def __getattr__(self, name: str) -> Callable[..., dict[str, str]]:
        def call(**kwargs: Any) -> dict[str, str]:
            self.sent.append((name, kwargs))
            return {"ts": f"{len(self.sent)}.0"}

        return call


def test_the_dressing_client_names_the_account_on_channel_messages_once() -> None:
    from bot.core.common.accounts import Account
    from bot.render.blocks import context, section

    recorder = _Recorder()
    place = Place(Account("prod", role_arn=f"arn:aws:iam::{PROD_ACCOUNT}:role/r"), "us-east-1", True, True)
    dressed = place.dress_client(recorder)
    dressed.chat_postMessage(channel="C1", text="top", blocks=[section("top")])
    reply = dressed.chat_postMessage(channel="C1", thread_ts="1.0", text="in thread", blocks=[section("x")])
    dressed.chat_update(channel="C1", ts=reply["ts"], text="in thread, redrawn", blocks=[section("y")])
    dressed.chat_update(
        channel="C1", ts="1.0", text="top, redrawn", blocks=[section("z"), context(PROD_LINE)]
    )
    dressed.chat_postEphemeral(channel="C1", user="U1", text="only text")
    dressed.conversations_info(channel="C1")
    lines = [json.dumps(kwargs, ensure_ascii=False).count(PROD_LINE) for _, kwargs in recorder.sent]
    assert lines == [1, 0, 0, 1, 1, 0]
    assert recorder.sent[4][1]["text"] == f"only text\n{PROD_LINE}"
    # One account configured: nothing to choose between, nothing added.
    alone = Place(Account("prod"), "us-east-1", False, True).dress_client(recorder)
    alone.chat_postMessage(channel="C1", text="top")
    assert recorder.sent[-1][1] == {"channel": "C1", "text": "top"}


def test_a_denial_in_the_lazy_half_names_the_account(
    make_harness: Callable[..., SlackHarness], state_table: str
) -> None:
    """A user group in the policy: the ack cannot decide (a Slack call), the lazy half refuses, naming
    the account the command was aimed at."""
    policy = {"rules": [{"allow": ["fanout.*"], "usergroups": ["S0NOBODY"], "accounts": ["prod"]}]}
    harness = make_harness(OPSBOT_ACCOUNTS=accounts_json(), OPSBOT_POLICY=json.dumps(policy))
    harness.command("/fanout", "pause arn:aws:kinesis:us-east-1:222222222222:stream/s --account prod")
    refusal = harness.last(ALICE).text
    assert "You may not run `fanout.pause`" in refusal and refusal.endswith(PROD_LINE), refusal


def test_the_cli_names_an_account_other_than_the_default_on_stderr(
    prod_and_own_tables: None, capsys: pytest.CaptureFixture[str]
) -> None:
    """stdout stays the command's output (its --json document unchanged); the account is on stderr, once,
    when --account named another than the default account (own, where commands go without it)."""
    assert main(["--account", "prod", "fanout", "list"]) == 0
    out, err = capsys.readouterr()
    assert err == f"opsbot: account prod ({PROD_ACCOUNT}), region us-east-1\n"
    assert "prod-t" in out and "opsbot:" not in out
    assert main(["fanout", "list", "--json", "--account", "prod"]) == 0
    out, err = capsys.readouterr()
    assert err == f"opsbot: account prod ({PROD_ACCOUNT}), region us-east-1\n"
    assert [t["id"] for s in json.loads(out)["sources"] for t in s["targets"]] == ["prod-t"]
    # An error there: the line says where, the sentence what (prod has no table in Singapore).
    assert main(["fanout", "list", "--account", "prod", "--region", "ap-southeast-1"]) == 1
    note, error = capsys.readouterr().err.splitlines()
    assert note == f"opsbot: account prod ({PROD_ACCOUNT}), region ap-southeast-1"
    assert "It was looked for in account `prod`, region `ap-southeast-1`" in error, error
    for default in (["fanout", "list"], ["--account", "own", "fanout", "list"]):
        assert main(default) == 0
        out, err = capsys.readouterr()
        assert err == "" and "own-t" in out
