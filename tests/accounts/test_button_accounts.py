"""What a button (or a menu option) carries, and what a click may do with it (docs/accounts.md, "What
protects a button's account"): the own account's mark ``-`` is opsbot's own account exactly as a command
reaches it, a wrapped value is followed only with OPSBOT_ACCOUNTS, an option keeps its account within
Slack's 150 characters, an autocorrected ``—account`` is refused with the fix, and an AssumeRole refusal
never repeats the external id. Signed requests into the real Bolt app, moto for AWS."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from bot.aws.dynamo import from_item
from bot.errors import UsageError
from bot.listeners import fanout as fanout_listener
from bot.listeners.framework.accounts import (
    BUTTON_MARKER,
    OWN_MARK,
    unwrap_action,
    unwrap_value,
    wrap_buttons,
)
from tests.accounts import test_slack
from tests.accounts.conftest import ACCOUNTS, PROD_ROLE
from tests.support.slack import ALICE, SlackHarness, find_button

tables = test_slack.tables  # opsbot's own "replica" (inactive), prod's "prod-replica" (active)

# prod and staging only: no entry is opsbot's own account and none is the default, so commands that
# name no account go to opsbot's own account, which has no name (its buttons carry OWN_MARK).
UNNAMED_OWN = {"prod": ACCOUNTS["prod"], "staging": ACCOUNTS["staging"]}
FANOUT_FOR_ALICE = {"rules": [{"allow": ["fanout.*"], "users": [ALICE[0]]}]}


def own_items() -> list[dict[str, Any]]:
    from bot.aws.clients import client, use_target

    with use_target(None):
        return [from_item(i) for i in client("dynamodb").scan(TableName="fanoutTargets")["Items"]]


def test_a_button_made_in_the_unnamed_own_account_acts_there_and_later_as_its_entry(
    make_harness: Callable[..., SlackHarness], tables: None
) -> None:
    """``-`` is valid where commands reach the unnamed own account; once an entry names opsbot's own
    account, the same button goes to that entry, authorized for it (a deny limited to it applies)."""
    harness = make_harness(
        OPSBOT_ACCOUNTS=json.dumps(UNNAMED_OWN), OPSBOT_POLICY=json.dumps(FANOUT_FOR_ALICE)
    )
    harness.command("/fanout", "list")
    listing = harness.last(ALICE)
    toggle, _ = find_button(listing.blocks, fanout_listener.ACTION_ACTIVATE)
    assert unwrap_value(toggle["value"])[:3] == (True, OWN_MARK, "us-east-1")

    named = {**UNNAMED_OWN, "own": {"regions": ["us-east-1"]}}
    deny_own = {
        "rules": [
            *FANOUT_FOR_ALICE["rules"],
            {"deny": ["fanout.activate"], "users": [ALICE[0]], "accounts": ["own"]},
        ]
    }
    later = make_harness(OPSBOT_ACCOUNTS=json.dumps(named), OPSBOT_POLICY=json.dumps(deny_own))
    later.click(listing, fanout_listener.ACTION_ACTIVATE)
    assert "You may not run `fanout.activate`" in later.last(ALICE).text, later.last(ALICE).text
    assert [i["active"] for i in own_items()] == [False]

    harness.click(listing, fanout_listener.ACTION_ACTIVATE)  # the configuration it was made under
    assert [i["active"] for i in own_items()] == [True], harness.last(ALICE).text


def test_the_own_mark_cannot_be_typed(make_harness: Callable[..., SlackHarness], tables: None) -> None:
    harness = make_harness(
        OPSBOT_ACCOUNTS=json.dumps(UNNAMED_OWN), OPSBOT_POLICY=json.dumps(FANOUT_FOR_ALICE)
    )
    ack = harness.command("/fanout", "list --account -")
    assert "There is no account `-`" in ack.text, ack.text


def test_a_wrapped_value_is_not_followed_without_accounts(
    make_harness: Callable[..., SlackHarness], tables: None
) -> None:
    """Without OPSBOT_ACCOUNTS the framework wraps nothing: a value that looks wrapped (a button made
    before the configuration was removed, or data that happens to start with the marker) is refused rather
    than sent to the account or region it names."""
    harness = make_harness(OPSBOT_POLICY=json.dumps(FANOUT_FOR_ALICE))
    harness.command("/fanout", "list")
    listing = harness.last(ALICE)
    toggle, _ = find_button(listing.blocks, fanout_listener.ACTION_ACTIVATE)
    assert not unwrap_value(toggle["value"])[0]
    harness.click(
        listing, fanout_listener.ACTION_ACTIVATE, value=f"{BUTTON_MARKER}-|eu-west-1|{toggle['value']}"
    )
    assert "run the command again" in harness.last(ALICE).text, harness.last(ALICE).text
    assert [i["active"] for i in own_items()] == [False]
    harness.click(listing, fanout_listener.ACTION_ACTIVATE)
    assert [i["active"] for i in own_items()] == [True], harness.last(ALICE).text


def test_every_option_keeps_its_account_within_slacks_limit() -> None:
    """The /apilogs errors overflow, with the longest account name and region the configuration allows:
    nothing is left out, and Slack accepts every value."""
    from bot.render.apilogs_errors import errors_blocks
    from bot.render.blocks import problems
    from tests.apilogs.test_errors_limits import report

    for stage in ("prod", "s" * 128):
        _, blocks = errors_blocks(report(stage, "/orders"))
        wrapped = wrap_buttons(blocks, "a" * 40, "ap-" + "s" * 20 + "-1")
        assert wrapped is not None
        overflow, _ = find_button(wrapped, "apilogs:errors-lookup-more")
        assert overflow["type"] == "overflow" and all(
            unwrap_value(o["value"])[1] == "a" * 40 for o in overflow["options"]
        )
        assert problems(wrapped) == []


def test_a_multiple_selection_carries_one_account() -> None:
    options = [{"text": {"type": "plain_text", "text": t}, "value": t} for t in ("a", "b")]
    (block,) = wrap_buttons(
        [{"type": "actions", "elements": [{"type": "checkboxes", "action_id": "x:y", "options": options}]}],
        "prod",
        "us-east-1",
    ) or [{}]
    chosen = block["elements"][0]["options"]
    action, made_for = unwrap_action({"type": "checkboxes", "selected_options": chosen})
    assert [o["value"] for o in action["selected_options"]] == ["a", "b"]
    assert made_for is not None and (made_for.account, made_for.region) == ("prod", "us-east-1")
    mixed = [chosen[0], {**chosen[1], "value": f"{BUTTON_MARKER}staging|us-east-1|b"}]
    with pytest.raises(UsageError, match="different accounts"):
        unwrap_action({"type": "checkboxes", "selected_options": mixed})


def test_the_console_offers_each_option_of_a_menu_as_a_button() -> None:
    from bot.render.text import render

    option = {"text": {"type": "plain_text", "text": "Look up b"}, "value": "v"}
    overflow = {"type": "overflow", "action_id": "a:more", "options": [option, {**option, "value": "w"}]}
    rendered = render("t", [{"type": "actions", "elements": [overflow]}])
    assert [(b.text, b.action_id, b.option) for b in rendered.buttons] == [
        ("Look up b", "a:more", option),
        ("Look up b", "a:more", {**option, "value": "w"}),
    ]


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("InvalidParameterValue", "The external id 'opsbot-prod-1' is not valid for this role"),
        ("ValidationError", "Value 'opsbot-prod-1' at 'externalId' failed to satisfy constraint"),
    ],
)
def test_an_assume_role_refusal_never_repeats_the_external_id(code: str, message: str) -> None:
    from botocore.exceptions import ClientError

    from bot.aws.errors import translate_assume_role

    error = ClientError({"Error": {"Code": code, "Message": message}}, "AssumeRole")
    found = translate_assume_role(error, role_arn=PROD_ROLE, account="prod", external_id="opsbot-prod-1")
    assert "opsbot-prod-1" not in found.message + (found.hint or ""), found.message
    # A short id is taken out as a whole value only, never out of the words around it.
    short = translate_assume_role(error, role_arn=PROD_ROLE, account="prod", external_id="ext")
    assert "(the external id)" not in short.message, short.message
