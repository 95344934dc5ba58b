from __future__ import annotations

import json

from bot.core.dns.commands import ApplyResult, BatchOutcome, Prepared, Timings, ZoneStatus
from bot.core.dns.config import MasterAddress, ZoneConfig
from bot.core.dns.plan import Limits, make_plan
from bot.core.dns.records import hosted_zone, master_zone_from_text
from bot.core.dns.transfer import TransferStats
from bot.render.blocks import problems
from bot.render.dns import (
    ACTION_APPLY,
    ACTION_CANCEL,
    ACTION_FORCE,
    plan_blocks,
    plan_json,
    plan_text,
    progress_blocks,
    result_blocks,
    result_text,
    status_blocks,
    status_text,
)
from bot.render.text import render
from tests.dns.support import SOA_VALUE

ZONE = ZoneConfig("example.com.", MasterAddress("10.0.0.53"), "Z0123456789ABC")
SOA = {"Name": "example.com.", "Type": "SOA", "TTL": 900, "ResourceRecords": [{"Value": SOA_VALUE}]}


def prepared(
    records: list[str], existing: list[dict[str, object]] | None = None, **plan_args: object
) -> Prepared:
    text = "$ORIGIN example.com.\n@ 60 IN SOA ns.example.net. h 5 1 1 1 1\n@ 60 IN NS ns.example.net.\n"
    master = master_zone_from_text(text + "\n".join(records) + "\n", "example.com.")
    hosted = hosted_zone("example.com.", [SOA, *(existing or [])])
    return Prepared(
        ZONE, make_plan(master, hosted, **plan_args), hosted, None, TransferStats(1, 3), Timings()
    )  # type: ignore[arg-type]


def buttons(blocks: list[dict[str, object]]) -> list[dict[str, object]]:
    return [e for b in blocks if b["type"] == "actions" for e in b["elements"]]  # type: ignore[attr-defined]


def test_a_huge_preview_stays_within_slack_limits() -> None:
    records = [f'h{n} 300 IN TXT "{"<&>" * 80}{n}"' for n in range(3000)]
    item = prepared(records)
    blocks = plan_blocks(item, buttons=True)
    assert problems(blocks, text="x") == []
    ids = [b["action_id"] for b in buttons(blocks)]
    assert ids == [ACTION_APPLY, ACTION_CANCEL]
    value = json.loads(buttons(blocks)[0]["value"])  # type: ignore[arg-type]
    assert value == {
        "domain": "example.com",
        "zone_id": "Z0123456789ABC",
        "serial": 5,
        "plan": item.plan.fingerprint(),
    }
    shown = render("", blocks)
    assert any("3000 to create" in line for line in shown.lines)
    assert any("more changes" in line for line in shown.lines)


def test_a_guarded_plan_offers_only_force() -> None:
    existing = [
        {"Name": f"h{n}.example.com.", "Type": "A", "TTL": 60, "ResourceRecords": [{"Value": "10.0.0.1"}]}
        for n in range(5)
    ]
    blocks = plan_blocks(prepared(["a 60 IN A 10.0.0.2"], existing), buttons=True)
    assert [b["action_id"] for b in buttons(blocks)] == [ACTION_FORCE, ACTION_CANCEL]
    text = "\n".join(render("", blocks).lines)
    assert "Refused unless forced" in text and "deletes 5 of the 5" in text


def test_plan_without_buttons_and_empty_plans() -> None:
    assert buttons(plan_blocks(prepared(["a 60 IN A 10.0.0.2"]), buttons=False)) == []
    same = prepared(
        ["a 60 IN A 10.0.0.2"],
        [{"Name": "a.example.com.", "Type": "A", "TTL": 60, "ResourceRecords": [{"Value": "10.0.0.2"}]}],
    )
    blocks = plan_blocks(same, buttons=True)
    assert buttons(blocks) == []
    assert "already matches" in "\n".join(render("", blocks).lines)


def test_left_alone_and_warnings_are_shown() -> None:
    alias = {
        "Name": "app.example.com.",
        "Type": "A",
        "AliasTarget": {"HostedZoneId": "Z1", "DNSName": "lb.example.net."},
    }
    item = prepared(['box 60 IN HINFO "PC" "Linux"'], [alias])
    text = "\n".join(render("", plan_blocks(item, buttons=False)).lines)
    assert "HINFO" in text and "alias to lb.example.net." in text
    assert "left alone (2)" in plan_text(item)


def test_progress_and_result() -> None:
    item = prepared([f"h{n} 60 IN A 10.0.0.{n}" for n in range(1, 6)], limits=Limits(max_elements=2))
    assert [len(b.changes) for b in item.plan.batches] == [2, 2, 1]
    outcomes = (
        BatchOutcome(1, 2, "applied", "/change/C1", 2),
        BatchOutcome(2, 2, "failed", error="Throttled <again>", attempts=6),
        BatchOutcome(3, 1, "not attempted"),
    )
    assert problems(progress_blocks(item, outcomes[:1], actor="U0ALICE")) == []
    result = ApplyResult(ZONE, item.plan, batches=outcomes)
    blocks = result_blocks(result, actor="U0ALICE")
    assert problems(blocks) == []
    text = "\n".join(render("", blocks).lines)
    assert "&lt;again&gt;" not in text  # escaped for Slack, shown as written
    sentence = blocks[1]["text"]["text"]  # type: ignore[index]
    assert sentence.startswith(":x: Batch 2 failed by <@U0ALICE>: Throttled &lt;again&gt; Each batch")
    assert "atomic: batch 1 of 3 was applied (2 changes); the rest were not attempted." in sentence
    assert result_text(result).splitlines() == [
        "Batch 2 failed: Throttled <again> Each batch is atomic: batch 1 of 3 was applied (2 changes); "
        "the rest were not attempted. Run the resync again to finish.",
        "  ✓ batch 1/3 applied (2 changes, 1 retry)",
        "  ✗ batch 2/3 failed (2 changes, 5 retries): Throttled <again>",
        "  · batch 3/3 not attempted (1 change)",
    ]


def test_json_lists_every_change_with_its_batch() -> None:
    item = prepared([f"h{n} 60 IN A 10.0.0.{n}" for n in range(1, 4)])
    document = plan_json(item)
    assert (document["changes"], document["batches"], document["applied"]) == (3, 1, False)
    assert [c["batch"] for c in document["change_list"]] == [1, 1, 1]
    assert document["tsig"] is None


def test_status() -> None:
    check = {
        "checked_at": "2024-06-02T00:00:00+00:00",
        "master_serial": 5,
        "pending": 3,
        "outcome": "planned",
    }
    statuses = [
        ZoneStatus(
            ZONE,
            {"serial": 5, "synced_at": "2024-06-01T00:00:00+00:00", "status": "ok", "counts": {"CREATE": 2}},
            5,
            5,
            last_check=check,
        ),
        ZoneStatus(
            ZONE.with_changes(domain="corp.example.net."),
            None,
            None,
            1,
            master_error="The master did not answer.",
        ),
    ]
    blocks = status_blocks(statuses)
    assert problems(blocks) == []
    text = "\n".join(render("", blocks).lines)
    assert "master unreachable" in text and "did not answer" in text
    # Serials agree, but the last plan found changes: not green, and the text says which is which.
    assert (
        "serial drift: none; last full check 2024-06-02T00:00:00+00:00 at master serial 5: 3 changes pending"
        in " ".join(text.split())
    )
    assert (
        "Last full check: 2024-06-02 00:00:00 UTC (serial 5): 3 changes pending" in text
    )  # the date token's fallback
    assert ":large_green_circle:" not in json.dumps(blocks)
    assert "Last full check: none recorded" in text
    terminal = status_text(statuses)
    assert "never" in terminal and "serial drift: none; last full check" in terminal
    in_sync = [ZoneStatus(ZONE, statuses[0].last_sync, 5, 5, last_check={**check, "pending": 0})]
    assert ":large_green_circle:" in json.dumps(status_blocks(in_sync))
    assert "No zones are configured" in status_text([])
