from __future__ import annotations

from tests.support.slack import SlackHarness


def test_ops_help_is_answered_in_the_ack(harness: SlackHarness) -> None:
    ack = harness.command("/ops", "help")
    assert ack.status == 200
    assert ack.json["response_type"] == "ephemeral"
    assert "/ops" in ack.text
