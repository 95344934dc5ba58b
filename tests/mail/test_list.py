"""``/mail list`` and ``opsbot mail list``: addresses by state from a filtered Scan of the mailing table."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import pytest

from bot.aws import clients, mailing
from bot.aws.dynamo import to_item
from bot.cli import main
from bot.config import Settings
from bot.core.mail import commands as mail
from bot.errors import UsageError
from bot.intake.ses_feedback import SesFeedbackApp
from bot.local import mail_samples
from bot.render import mail as render
from bot.render.blocks import problems
from tests.conftest import ONCALL_POLICY
from tests.mail.conftest import ALERTS
from tests.support.slack import BOB, SlackHarness

T0 = 1_714_550_400_000
HOUR = 3_600_000


def feed(settings: Settings, *messages: dict[str, Any]) -> None:
    SesFeedbackApp(settings).handle(mail_samples.sns_event(messages))


@pytest.fixture
def mailing_data(mail_settings: Settings) -> Settings:
    """Six disabled (a bounce, a complaint, 3 more bounces, an original-handler row), one flagged (enabled),
    two enabled: nine entries."""
    feed(
        mail_settings,
        mail_samples.bounce(["bounced@example.com"], T0),
        mail_samples.complaint(["complained@example.com"], T0),
        mail_samples.bounce(["unsure@example.com"], T0, bounce_type="Undetermined", subtype="Undetermined"),
        mail_samples.delivery(["fine@example.com", "also.fine@example.com"], T0),
        mail_samples.bounce([f"more{n}@example.com" for n in range(3)], T0 + HOUR),
    )
    clients.client("dynamodb").put_item(
        TableName=mail_settings.mailing_table,
        Item=to_item({"UserId": "Old.Row@Example.com", "notificationType": "Bounce", "from": "x@example.org",
                      "timestamp": "2023-01-01T00:00:00.000Z", "state": "disable"}),
    )  # fmt: skip
    return mail_settings


def addresses(page: mail.AddressList) -> list[str]:
    return sorted(entry.address for entry in page.addresses)


def test_lists_addresses_by_state(mailing_data: Settings) -> None:
    disabled = mail.list_addresses(mailing_data)
    assert addresses(disabled) == [
        "Old.Row@Example.com", "bounced@example.com", "complained@example.com", "more0@example.com",
        "more1@example.com", "more2@example.com",
    ]  # fmt: skip
    assert disabled.next_cursor is None and disabled.scanned == 9
    by_address = {e.address: e for e in disabled.addresses}
    complained = by_address["complained@example.com"]
    assert (complained.reason, complained.sticky, complained.original) == ("complaint", True, False)
    old = by_address["Old.Row@Example.com"]
    assert (old.original, old.reason, old.since) == (
        True,
        "original handler: Bounce",
        "2023-01-01T00:00:00.000Z",
    )
    assert addresses(mail.list_addresses(mailing_data, state="review")) == ["unsure@example.com"]
    assert addresses(mail.list_addresses(mailing_data, state="enable")) == [
        "also.fine@example.com", "fine@example.com", "unsure@example.com",
    ]  # fmt: skip
    document = json.loads(json.dumps(disabled.to_json()))
    assert document["state"] == "disable" and document["nextCursor"] is None
    assert {
        "address",
        "state",
        "reason",
        "since",
        "sticky",
        "review",
        "updatedAt",
        "originalHandlerRow",
    } == set(document["addresses"][0])


def test_since_keeps_entries_changed_at_or_after_it(mailing_data: Settings) -> None:
    time.sleep(0.01)
    cutoff = datetime.now(UTC)
    time.sleep(0.01)
    feed(mailing_data, mail_samples.bounce(["later@example.com"], T0 + 2 * HOUR))
    feed(mailing_data, mail_samples.delivery(["bounced@example.com"], T0 + 3 * HOUR))  # re-enabled
    since = cutoff.isoformat()
    assert addresses(mail.list_addresses(mailing_data, since=since)) == ["later@example.com"]
    assert addresses(mail.list_addresses(mailing_data, state="enable", since=since)) == [
        "bounced@example.com"
    ]
    assert mail.list_addresses(mailing_data, since="1h").since.endswith("Z")
    with pytest.raises(UsageError, match="Cannot read the time"):
        mail.list_addresses(mailing_data, since="whenever")


def test_pages_cover_every_address_once(mail_settings: Settings) -> None:
    wanted = [f"page{n:02d}@example.com" for n in range(25)]
    feed(mail_settings, mail_samples.bounce(wanted, T0), mail_samples.delivery(["ok@example.com"], T0))
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        page = mail.list_addresses(mail_settings, limit=10, cursor=cursor)
        seen += [entry.address for entry in page.addresses]
        pages += 1
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert sorted(seen) == wanted and pages == 3


def test_a_page_stops_after_a_bounded_scan_and_says_where_to_go_on(mail_settings: Settings) -> None:
    """Few matches in a big table: one call must not read the whole table."""
    feed(mail_settings, mail_samples.delivery([f"ok{n:02d}@example.com" for n in range(30)], T0))
    feed(mail_settings, mail_samples.bounce(["needle@example.com"], T0))
    found: list[str] = []
    start = None
    calls = 0
    while True:
        page = mailing.scan_addresses(
            mail_settings.mailing_table,
            state="disable",
            limit=5,
            start_after=start,
            page_size=4,
            max_requests=2,
        )
        calls += 1
        assert page.requests <= 2 and page.scanned <= 8
        found += [str(item["UserId"]) for item in page.items]
        if page.next_key is None:
            break
        start = page.next_key
    assert found == ["needle@example.com"] and calls == 4  # 31 entries, 8 per call


def test_bad_input_is_a_sentence(mail_settings: Settings) -> None:
    with pytest.raises(UsageError, match="--state takes one of disable, review, enable"):
        mail.list_addresses(mail_settings, state="disabled")
    with pytest.raises(UsageError, match="--limit must be between 1 and 1000"):
        mail.list_addresses(mail_settings, limit=0)
    with pytest.raises(UsageError, match="That page cursor is not valid"):
        mail.list_addresses(mail_settings, cursor="%%%")


def test_list_blocks_fit_and_continue_after_the_last_address_shown() -> None:
    long = [f"{'x' * 230}{n:03d}@example.com" for n in range(40)]  # 40 rows of these overflow one message
    entries = [mail.ListedAddress(a, "disable", "complaint", "2024-05-01T08:00:00.000Z", True, False, "", False)
               for a in long]  # fmt: skip
    page = mail.AddressList("mailing", "disable", "", 40, entries, "cursor-of-the-scan", 123)
    blocks = render.list_blocks(page)
    assert problems(blocks) == []
    (button,) = [e for b in blocks if b["type"] == "actions" for e in b["elements"]]
    cursor, state, since, limit = render.parse_list_more_value(button["value"])
    shown = sum(1 for b in blocks if b["type"] == "section" and "`x" in b["text"]["text"])
    assert 0 < shown < 40 and (state, since, limit) == ("disable", "", 40)
    # The next page starts after the last row that fit, not where the scan stopped.
    assert mail.decode_list_cursor(cursor) == long[shown - 1]
    with pytest.raises(ValueError):
        render.parse_list_more_value('{"c": 1}')


@pytest.fixture
def list_harness(mailing_data: Settings, make_harness: Callable[..., SlackHarness]) -> SlackHarness:
    return make_harness(OPSBOT_POLICY=json.dumps(ONCALL_POLICY), OPSBOT_ALERT_CHANNEL=ALERTS)


def test_slash_command_pages_with_the_more_button(list_harness: SlackHarness) -> None:
    list_harness.command("/mail", "list --limit 4", user=BOB)  # reading needs no grant
    first = list_harness.last(BOB)
    assert first.kind == "ephemeral"
    assert first.text == "4 disabled addresses from mailing (more available)"
    body = json.dumps(first.blocks)
    assert "Disabled addresses" in body and "entries scanned" in body and "charges for" in body
    list_harness.click(first, render.ACTION_MORE, user=BOB)
    second = list_harness.last(BOB)
    assert "(continued)" in json.dumps(second.blocks) and "end of list" in json.dumps(second.blocks)
    shown = [b["text"]["text"].split("`")[1] for m in (first, second) for b in m.blocks
             if b["type"] == "section" and "`" in b["text"]["text"] and "/mail" not in b["text"]["text"]]  # fmt: skip
    assert sorted(shown) == sorted(e.address for e in mail.list_addresses(list_harness.settings).addresses)
    assert len(shown) == 6


def test_slash_command_input_is_checked_in_the_ack(list_harness: SlackHarness) -> None:
    assert "Cannot read the time" in list_harness.command("/mail", "list --since whenever").text
    assert (
        "--state takes one of disable, review, enable" in list_harness.command("/mail", "list --state x").text
    )
    assert "--limit" in list_harness.command("/mail", "list --limit 500").text
    help_text = list_harness.command("/mail", "help").text
    assert "/mail list" in help_text and "scans the mailing table" in help_text
    list_harness.command("/mail", "list --state review --since 2024-01-01")
    assert list_harness.last().text == "1 flagged for review address from mailing"


def test_a_tampered_more_button_is_refused(list_harness: SlackHarness) -> None:
    list_harness.command("/mail", "list --limit 1")
    first = list_harness.last()
    list_harness.click(first, render.ACTION_MORE, value='{"c": 5}')
    assert "That button is no longer valid; run `/mail list` again." in list_harness.last().text


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["mail", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_list_json_and_text(mailing_data: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "list", "--state", "review", "--json")
    document = json.loads(out)
    assert code == 0 and [a["address"] for a in document["addresses"]] == ["unsure@example.com"]
    assert document["addresses"][0]["review"] is True and document["scanned"] == 9
    code, out, _ = run(capsys, "list", "--limit", "2")
    assert code == 0 and out.startswith("Disabled addresses in mailing (disabled)")
    cursor = out.strip().splitlines()[-1].removeprefix("more: --cursor ")
    code, out, _ = run(capsys, "list", "--limit", "10", "--cursor", cursor, "--json")
    assert code == 0 and len(json.loads(out)["addresses"]) == 4 and json.loads(out)["nextCursor"] is None
    code, out, err = run(capsys, "list", "--cursor", "nonsense!", "--json")
    assert code == 2 and "That page cursor is not valid" in err
    assert json.loads(out) == {
        "ok": False,
        "reason": "usage",
        "message": "That page cursor is not valid; start the list again.",
    }


@contextmanager
def recorded_calls() -> Iterator[list[tuple[str, str]]]:
    calls: list[tuple[str, str]] = []
    ddb = clients.client("dynamodb")

    def record(params: dict[str, Any], model: Any, **_: Any) -> None:
        calls.append((model.name, str(params.get("TableName"))))

    ddb.meta.events.register("before-parameter-build.dynamodb", record)
    try:
        yield calls
    finally:
        ddb.meta.events.unregister("before-parameter-build.dynamodb", record)


def test_list_calls_scan_on_the_mailing_table_only(mailing_data: Settings) -> None:
    with recorded_calls() as calls:
        mail.list_addresses(mailing_data, limit=2)
    assert set(calls) == {("Scan", mailing_data.mailing_table)}


def test_an_unquoted_time_is_one_value(list_harness: SlackHarness) -> None:
    """`--since 30 days ago` typed without quotes is one time, as in /apilogs (flags of kind time)."""
    ack = list_harness.command("/mail", "list --since 30 days ago --limit 4", user=BOB)
    assert "Unexpected" not in ack.text and "Cannot read the time" not in ack.text
    assert list_harness.last(BOB).text == "4 disabled addresses from mailing (more available)"
    assert "Unexpected `soon`" in list_harness.command("/mail", "list --since 30 days ago soon").text
