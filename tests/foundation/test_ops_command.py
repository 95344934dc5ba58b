from __future__ import annotations

from tests.support.slack import Ack, SlackHarness


def test_ops_help_is_answered_in_the_ack(harness: SlackHarness) -> None:
    ack = harness.command("/ops", "help")
    assert ack.status == 200
    assert ack.json["response_type"] == "ephemeral"
    assert "/ops" in ack.text


def _all_text(ack: Ack) -> str:
    import json

    return json.dumps(ack.json)


def test_ops_help_marks_the_subcommands_that_need_a_grant(harness: SlackHarness) -> None:
    text = _all_text(harness.command("/ops", "help"))
    assert "reenable :lock:" in text and "suppress :lock:" in text and "deactivate :lock:" in text
    assert "status :lock:" not in text and "list :lock:" not in text
    assert ":lock: = needs a policy grant." in text  # the legend, since lines show the lock


def test_a_command_without_a_guarded_subcommand_has_no_lock_legend(harness: SlackHarness) -> None:
    dns = _all_text(harness.command("/dns", "help"))
    assert ":lock:" not in dns
    mail = _all_text(harness.command("/mail", "help"))
    assert "` :lock:" in mail and ":lock: = needs a policy grant." in mail


def test_ops_help_of_a_command_works_like_its_own_help(harness: SlackHarness) -> None:
    for name in ("apilogs", "mail", "device", "dns", "fanout"):
        assert harness.command("/ops", f"help {name}").json == harness.command(f"/{name}", "help").json
    assert (
        harness.command("/ops", "help /mail reenable").json == harness.command("/mail", "help reenable").json
    )
    assert harness.command("/ops", "help whoami").json == harness.command("/ops", "whoami help").json
    assert "There is no command `frob`" in harness.command("/ops", "help frob").text
    assert "has no subcommand `frob`" in harness.command("/ops", "help mail frob").text
