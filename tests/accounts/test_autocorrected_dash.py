"""``—account prod``: the dash autocorrect makes of a typed ``--`` (phones, macOS smart punctuation) is
refused with the fix, in the acknowledgement, rather than taken as an argument (the command would then run
in the default account)."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from bot.errors import UsageError
from tests.accounts import test_slack
from tests.accounts.conftest import ACCOUNTS
from tests.support.slack import ALICE, SlackHarness

tables = test_slack.tables
FANOUT_FOR_ALICE = {"rules": [{"allow": ["fanout.*"], "users": [ALICE[0]]}]}


@pytest.mark.parametrize(
    ("typed", "fix"),
    [
        ("list \u2014account prod", "`--account prod`"),  # an em dash, as iOS and macOS make of "--"
        ("list \u2013region=ap-southeast-1", "`--region ap-southeast-1`"),  # an en dash
        ("list \u2014account", "`--account prod`"),
        ("list \u2014account `x`", "`--account prod`"),  # what is not a plain name is not repeated
    ],
)
def test_an_autocorrected_dash_is_refused_with_the_fix(
    make_harness: Callable[..., SlackHarness], tables: None, typed: str, fix: str
) -> None:
    """Not taken as an argument: ``/fanout list —account prod`` would otherwise list the default account
    (or, for a change, make it there)."""
    harness = make_harness(OPSBOT_ACCOUNTS=json.dumps(ACCOUNTS), OPSBOT_POLICY=json.dumps(FANOUT_FOR_ALICE))
    ack = harness.command("/fanout", typed)
    assert fix in ack.text and "autocorrect" in ack.text, ack.text
    assert harness.slack.calls_to("chat.postMessage") == []


def test_an_autocorrected_dash_before_a_subcommands_own_option_is_refused() -> None:
    from bot.listeners.args import ArgSpec, Flag, Positional, parse, tokenize

    spec = ArgSpec(positionals=(Positional("text", optional=True, words=True),), flags=(Flag("since"),))
    with pytest.raises(UsageError, match="`--since`"):
        parse(tokenize("hello \u2014since 1h"), spec)
    # A dash in front of a word that is no option stays text.
    assert parse(tokenize("\u2014sincerely yours"), spec).values["text"] == "\u2014sincerely yours"
