from __future__ import annotations

import json
import re

import pytest

from bot.core.dns.commands import ApplyProgress, ApplyResult, BatchOutcome, Prepared, Timings, ZoneStatus
from bot.core.dns.config import MasterAddress, ZoneConfig
from bot.core.dns.plan import Limits, make_plan
from bot.core.dns.records import hosted_zone, master_zone_from_text
from bot.core.dns.transfer import TransferStats
from bot.render.blocks import problems, times_in, utc_text
from bot.render.dns import (
    ACTION_APPLY,
    ACTION_CANCEL,
    ACTION_FORCE,
    plan_blocks,
    plan_json,
    plan_text,
    progress_blocks,
    progress_text,
    result_blocks,
    result_text,
    status_blocks,
    status_summary,
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
        for n in range(10)
    ]
    blocks = plan_blocks(prepared(["a 60 IN A 10.0.0.2"], existing), buttons=True)
    assert [b["action_id"] for b in buttons(blocks)] == [ACTION_FORCE, ACTION_CANCEL]
    text = "\n".join(render("", blocks).lines)
    assert "Refused unless forced" in text and "deletes 10 of the 10" in text


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
    progress = ApplyProgress("example.com", item.plan.counts(), 3, outcomes[:1])
    blocks = progress_blocks(progress, actor="U0ALICE")
    assert problems(blocks) == [] and progress_text(progress) == "Applying batch 1 of 3…"
    text = "\n".join(render("", blocks).lines)
    assert "Applying by @U0ALICE: batch 1 of 3 (5 to create, 0 to update, 0 to delete in 3 batches)" in text
    assert "✓ batch 1/3 applied (2 changes, 1 retry)" in text
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


SYNCED = {"serial": 5, "synced_at": "2024-06-01T00:00:00+00:00", "status": "ok", "counts": {"CREATE": 2}}
CHECK = {"checked_at": "2024-06-02T00:00:00+00:00", "master_serial": 5, "pending": 0, "outcome": "applied"}
CONTRADICTIONS = ("no changes pending", "edited since?", "serial drift")


def utc_times(text: str) -> str:
    return re.sub(
        r"\d{4}-\d{2}-\d{2}T[\d:.]+(?:Z|[+-]\d{2}:\d{2})", lambda found: utc_text(found.group()), text
    )


@pytest.mark.parametrize(
    ("status", "verdict", "reason"),
    [
        (
            ZoneStatus(ZONE, SYNCED, 5, 5, last_check=CHECK),
            "in sync",
            "Route 53 and the master are at serial 5; the last full check (2024-06-02T00:00:00+00:00) "
            "found nothing to change.",
        ),
        (
            ZoneStatus(ZONE, SYNCED, 5, 5),
            "in sync",
            "Route 53 and the master are at serial 5; no full comparison is recorded.",
        ),
        (
            ZoneStatus(ZONE, SYNCED, 5, 5, last_check={**CHECK, "pending": 3, "outcome": "planned"}),
            "changes pending",
            "the last full check (2024-06-02T00:00:00+00:00) found 3 changes to make at the master's serial 5 "
            "(Route 53 was edited apart from the mirror).",
        ),
        (
            ZoneStatus(ZONE, SYNCED, 6, 5, last_check=CHECK),
            "changes pending",
            "the master is at serial 6, the last sync at 5.",
        ),
        (
            ZoneStatus(ZONE, SYNCED, 5, 4, last_check=CHECK),
            "changes pending",
            "Route 53's SOA serial is 4, the master's 5.",
        ),
        (
            ZoneStatus(
                ZONE,
                {
                    **SYNCED,
                    "status": "refused",
                    "failed_at": "2024-06-03T00:00:00+00:00",
                    "error": "Too many.",
                },
                6,
                5,
                last_check={**CHECK, "pending": 4, "outcome": "refused"},
            ),
            "failed",
            "the last sync was refused at 2024-06-03T00:00:00+00:00: Too many.",
        ),
        (
            ZoneStatus(ZONE, SYNCED, None, 5, master_error="The master did not answer."),
            "failed",
            "the master 10.0.0.53 did not answer: The master did not answer.",
        ),
        (
            ZoneStatus(ZONE, SYNCED, 5, None, route53_error="AccessDenied."),
            "failed",
            "Route 53 could not be read: AccessDenied.",
        ),
        (
            ZoneStatus(ZONE, SYNCED, 4, 5, last_check=CHECK),
            "failed",
            "the master's serial 4 is older than 5, the serial of the last sync: the mirror refuses it unless "
            "forced.",
        ),
        (ZoneStatus(ZONE, None, 5, 1), "never synced", "no sync of example.com is recorded."),
        (
            ZoneStatus(ZONE, None, 5, 1, last_check={**CHECK, "pending": 9, "outcome": "planned"}),
            "never synced",
            "no sync of example.com is recorded; the last plan (2024-06-02T00:00:00+00:00) found 9 changes to "
            "make.",
        ),
    ],
)
def test_each_zone_gets_one_verdict_and_its_reason(status: ZoneStatus, verdict: str, reason: str) -> None:
    assert (status.verdict, status.reason) == (verdict, reason)
    assert status.in_sync is (verdict == "in sync")
    document = status.to_json()
    assert (document["verdict"], document["reason"]) == (verdict, reason)
    blocks = status_blocks([status])
    assert problems(blocks) == []
    slack = " ".join("\n".join(render("", blocks).lines).split())
    terminal = status_text([status])
    # The reason's times in each surface's one format: a date token in Slack (its UTC fallback on the
    # terminal renderer of Slack blocks), ISO 8601 with Z in the CLI.
    assert f"*{verdict}*" in json.dumps(blocks) and " ".join(utc_times(reason).split()) in slack
    assert (
        terminal.splitlines()[0]
        == f"example.com -> Z0123456789ABC: {verdict}: {times_in(reason, slack=False)}"
    )
    # One verdict per zone: no other verdict, and none of the old mixed phrases, appears beside it.
    for other in ("in sync", "changes pending", "never synced"):
        if other != verdict:
            assert other not in slack.lower() and other not in terminal.lower(), other
    for phrase in CONTRADICTIONS:
        assert phrase not in slack.lower() and phrase not in terminal.lower(), phrase


def test_status_of_several_zones() -> None:
    statuses = [
        ZoneStatus(ZONE, SYNCED, 5, 5, last_check=CHECK),
        ZoneStatus(ZONE.with_changes(domain="corp.example.net."), None, None, 1, master_error="No answer."),
    ]
    blocks = status_blocks(statuses)
    assert problems(blocks) == []
    assert ":large_green_circle:" in json.dumps(blocks) and ":red_circle:" in json.dumps(blocks)
    text = "\n".join(render("", blocks).lines)
    # the date token's fallback
    assert "Last full check: 2024-06-02 00:00:00 UTC (serial 5): nothing to change" in text
    assert "Last full check: none recorded" in text
    assert status_summary(statuses) == "DNS mirror status: example.com: in sync; corp.example.net: failed"
    assert "No zones are configured" in status_text([])
