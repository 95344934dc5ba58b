"""Block Kit for /fanout: long listings page within Slack's limits; buttons carry only the item's key."""

from __future__ import annotations

import contextlib
import json
import re
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.aws.state import StateTable, create_state_table
from bot.core.fanout.commands import (
    ListFilters,
    Listing,
    SourceGroup,
    Target,
    check,
    list_mappings,
    parse_source,
)
from bot.render import fanout as render
from bot.render.blocks import MAX_BLOCKS_MESSAGE, problems
from tests.fanout.conftest import DDB_STREAM_ARN, KINESIS_ARN, Fanout


def many_targets(fanout: Fanout, count: int) -> None:
    for n in range(count):
        fanout.register(
            source_arn=KINESIS_ARN if n % 2 else DDB_STREAM_ARN,
            target_id=f"target-{n:03d}-" + "x" * 40,
            target_type="sqs",
            destination=f"https://sqs.us-east-1.amazonaws.com/123456789012/queue-{n:03d}",
            active=n % 3 == 0,
            role="arn:aws:iam::210987654321:role/partner" if n % 5 == 0 else None,
            external_id="shared-id" if n % 10 == 0 else None,
            parallel=False if n % 4 == 0 else None,
        )


def button_values(blocks: list[dict]) -> list[tuple[str, str]]:
    found = []
    for block in blocks:
        elements = [block["accessory"]] if "accessory" in block else block.get("elements", [])
        found += [(e["action_id"], e.get("value", "")) for e in elements if e.get("type") == "button"]
    return found


def test_a_long_listing_pages_within_block_kit_limits(fanout: Fanout) -> None:
    many_targets(fanout, 150)
    listing = list_mappings(fanout.settings)
    chunks = render.listing_chunks(listing)
    assert len(chunks) > 2

    seen: list[str] = []
    page, pages = 0, 0
    while True:
        blocks = render.listing_blocks(listing, page=page)
        assert problems(blocks) == [], page
        pages += 1
        assert f"page {page + 1} of {len(chunks)}" in json.dumps(blocks)
        buttons = button_values(blocks)
        seen += [render.parse_toggle_value(v).target_id for a, v in buttons if "page" not in a]
        nxt = [v for a, v in buttons if a == "fanout:page:next"]
        if not nxt:
            break
        page, filters = render.parse_page_value(nxt[0])
        assert filters == listing.filters
    assert pages == len(chunks)
    assert sorted(seen) == sorted(t.id for g in listing.groups for t in g.targets)


def test_toggle_buttons_match_the_state_and_carry_only_the_key(fanout: Fanout) -> None:
    fanout.register(target_id="on", target_type="kinesis", destination="out", active=True)
    fanout.register(target_id="off", target_type="kinesis", destination="out2")
    blocks = render.listing_blocks(list_mappings(fanout.settings))
    assert problems(blocks) == []
    buttons = {render.parse_toggle_value(v).target_id: a for a, v in button_values(blocks)}
    assert buttons == {"on": "fanout:deactivate", "off": "fanout:activate"}
    for _, value in button_values(blocks):
        ref = render.parse_toggle_value(value)
        assert (ref.table, ref.source_arn, ref.filters) == ("fanoutTargets", KINESIS_ARN, ListFilters())
        assert set(json.loads(value)) == {"t", "s", "i", "f", "n"}
    deactivate = next(
        b["accessory"] for b in blocks if b.get("accessory", {}).get("action_id") == "fanout:deactivate"
    )
    assert "confirm" in deactivate
    # Each button names its target (readable wherever the client shows accessories, e.g. the demo).
    assert deactivate["text"]["text"] == "Deactivate on"


def _group(source_arn: str, count: int) -> SourceGroup:
    targets = tuple(
        Target.from_item(
            {
                "sourceArn": source_arn,
                "id": f"t{n:03d}",
                "type": "kinesis",
                "destination": "out",
                "active": n % 2 == 0,
                "collapse": "none",
            },
            table="fanoutTargets",
        )
        for n in range(count)
    )
    return SourceGroup("fanoutTargets", "fanout", parse_source(source_arn), targets, (), True)


# What a click redraws the list with; longer than the note is allowed to be, so it is cut to its limit.
CLICK_NOTE = ":white_check_mark: <@U0ALICE> deactivated *t000* on Kinesis stream inputStream. " + "x" * 900


@pytest.mark.parametrize(
    ("first", "second", "divider_on_page_one"),
    [
        (45, 3, False),  # the first source fills a page exactly (no divider is left after it)
        (43, 3, True),  # a divider and the second source's heading fill the last two places
    ],
)
def test_a_full_page_with_the_click_note_is_within_the_block_limit(
    first: int, second: int, divider_on_page_one: bool
) -> None:
    listing = Listing((_group(DDB_STREAM_ARN, first), _group(KINESIS_ARN, second)), ListFilters(), {})
    blocks = render.listing_blocks(listing, page=0, note=CLICK_NOTE)

    assert len(blocks) == MAX_BLOCKS_MESSAGE and problems(blocks) == []
    assert blocks[1]["text"]["text"].startswith(":white_check_mark: <@U0ALICE> deactivated")
    assert blocks[-1]["block_id"] == "fanout_pages"
    assert ({"type": "divider"} in blocks) == divider_on_page_one
    assert blocks[-2] != {"type": "divider"}  # a page never ends with a divider


def test_every_page_with_or_without_the_note_is_within_the_block_limit() -> None:
    for first in range(1, 95):  # every place a source can end on a page, over two pages
        groups = (_group(DDB_STREAM_ARN, first), _group(KINESIS_ARN, 1), _group(KINESIS_ARN + "2", 50))
        listing = Listing(groups, ListFilters(), {})
        shown: list[str] = []
        for page in range(len(render.listing_chunks(listing))):
            for note in ("", CLICK_NOTE):
                blocks = render.listing_blocks(listing, page=page, note=note)
                assert problems(blocks) == [], (first, page, note[:10])
            shown += [b["block_id"] for b in blocks if b.get("block_id", "").startswith("fanout_t_")]
        assert len(shown) == len(set(shown)) == first + 1 + 50, first


def test_page_of_finds_the_page_showing_a_target(fanout: Fanout) -> None:
    many_targets(fanout, 120)
    listing = list_mappings(fanout.settings)
    chunks = render.listing_chunks(listing)
    for target in (listing.groups[0].targets[0], listing.groups[-1].targets[-1]):
        page = render.page_of(listing, target.table, target.source_arn, target.id)
        assert target.id in json.dumps(chunks[page])
    assert render.page_of(listing, "fanoutTargets", KINESIS_ARN, "nope") == 0


def test_an_empty_listing_and_filters_are_shown(fanout: Fanout) -> None:
    listing = Listing((), ListFilters(type="sqs", inactive=True), {"fanout": "opsbot is missing lambda:X."})
    blocks = render.listing_blocks(listing)
    text = json.dumps(blocks)
    assert problems(blocks) == [] and "No targets match" in text and "inactive only" in text
    assert "hooks of fanout unknown" in text
    assert render.listing_text(listing) == "No targets match."


def test_listing_text_shows_hook_and_options(fanout: Fanout) -> None:
    from bot.aws.clients import client
    from tests.fanout.conftest import create_function, create_stream

    create_stream()
    create_function()
    client("lambda").create_event_source_mapping(
        EventSourceArn=KINESIS_ARN, FunctionName="fanout", BatchSize=50, StartingPosition="TRIM_HORIZON"
    )
    fanout.register(
        target_id="t1",
        target_type="sns",
        destination="arn:aws:sns:us-east-1:1:t",
        role="arn:aws:iam::1:role/r",
    )
    text = render.listing_text(list_mappings(fanout.settings))
    assert "hooked to fanout: Enabled, batch 50, TRIM_HORIZON" in text
    assert re.search(r"t1\s+sns\s+no\s+arn:aws:sns", text)
    assert "collapse none, role arn:aws:iam::1:role/r" in text


def test_options_are_shown_as_stored(fanout: Fanout) -> None:
    fanout.register(target_id="t1", target_type="sqs", destination="x", convert_ddb=True, parallel=False)
    text = render.listing_text(list_mappings(fanout.settings))
    assert "parallel false, convertDDB true" in text


def test_check_blocks_stay_within_limits_with_many_findings(fanout: Fanout) -> None:
    for n in range(120):
        fanout.register(target_id=f"bad-{n:03d}", target_type="sqs", destination="not-a-url " + "y" * 80)
    report = check(fanout.settings)
    chunks = render.check_chunks(report)
    assert len(chunks) > 1
    shown: list[str] = []
    for page in range(len(chunks)):
        blocks = render.check_blocks(report, page=page)
        assert problems(blocks) == []
        assert f"page {page + 1} of {len(chunks)}" in json.dumps(blocks)
        shown += [b["text"]["text"] for b in blocks if b["type"] == "section"]
        buttons = {e["action_id"] for b in blocks if b["type"] == "actions" for e in b["elements"]}
        assert ("fanout:check:prev" in buttons) == (page > 0)
        assert ("fanout:check:next" in buttons) == (page + 1 < len(chunks))
    # Every finding on exactly one page, in the report's order.
    assert len(shown) == len(report.findings) == 120
    assert [line.split("/ ")[1].split("`")[0] for line in shown] == [f.target_id for f in report.findings]
    assert render.check_blocks(report, page=99) == render.check_blocks(report, page=len(chunks) - 1)
    assert len(render.check_text(report).splitlines()) == 1 + 2 * report.errors + 2 * report.warnings


def test_check_page_values_round_trip() -> None:
    assert render.parse_check_page_value(render.check_page_value(3)) == 3
    for bad in ("[]", '{"p": -1}', '{"p": true}', '{"p": "2"}'):
        with pytest.raises(ValueError):
            render.parse_check_page_value(bad)


def test_toggle_blocks(fanout: Fanout) -> None:
    from bot.core.fanout.commands import set_active

    fanout.register(target_id="t1", target_type="kinesis", destination="out")
    blocks = render.toggle_blocks(set_active(fanout.settings, "inputStream", "t1", True), actor="U123")
    assert problems(blocks) == [] and "<@U123>" in json.dumps(blocks)


@given(st.text(max_size=100))
def test_button_value_parsers_raise_only_value_errors(value: str) -> None:
    for parse in (render.parse_toggle_value, render.parse_page_value, render.parse_check_page_value):
        with contextlib.suppress(ValueError):
            parse(value)


def test_seed_builds_the_demo(fanout: Fanout) -> None:
    from bot.local.seeds import SeedContext
    from bot.local.seeds.fanout import seed

    create_state_table("opsbot-state")
    ctx = SeedContext(settings=fanout.settings, state=StateTable("opsbot-state"), now=datetime.now(UTC))
    banner = seed(ctx)
    assert any("/fanout check" in line for line in banner)

    assert any("/fanout health" in line for line in banner)

    listing = list_mappings(fanout.settings)
    hooked = {g.source.name: g.hook is not None for g in listing.groups}
    assert hooked == {"orders": True, "clicks": True, "customers": False}
    targets = [t for g in listing.groups for t in g.targets]
    assert len({t.type for t in targets}) >= 5
    assert any(not t.active for t in targets)
    assert any("role" in t.attributes and "externalId" in t.attributes for t in targets)
    report = check(fanout.settings, deep=True)
    assert report.errors >= 1
    assert "destination" in {f.rule for f in report.findings}
    assert report.deep is not None and [(r.target_id, r.ok) for r in report.deep] == [("partner", True)]

    from bot.core.fanout.health import health

    verdicts = {s.source.name: s.verdict.state for s in health(fanout.settings).sources}
    assert verdicts == {"orders": "healthy", "clicks": "falling behind"}
    assert problems(render.listing_blocks(listing)) == [] and problems(render.check_blocks(report)) == []
