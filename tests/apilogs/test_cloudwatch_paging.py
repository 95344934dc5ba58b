"""The CloudWatch paging double itself: pages of at most 10,000 events and 1 MB, interleaved across
streams, scanned slices and seeded runs of empty pages, tokens tied to their search; and
``filter_events`` reading through it."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from bot.aws import logs as cw
from bot.aws.clients import client
from bot.local.apilogs_traffic import RawEvent, write_events
from bot.local.cloudwatch_paging import MAX_PAGE_BYTES, cloudwatch_paging

GROUP = "/aws/lambda/busy"


def write_busy(count: int, *, size: int = 40, needle_every: int = 0) -> int:
    """``count`` events over three streams, a millisecond apart; returns the first timestamp."""
    start = int(time.time() * 1000) - count - 60_000
    events = [
        RawEvent(
            GROUP,
            f"stream-{n % 3}",
            start + n,
            f"line {n:06d} {'NEEDLE ' if needle_every and n % needle_every == 0 else ''}{'x' * size}",
        )
        for n in range(count)
    ]
    write_events(client("logs"), events)
    return start


def all_pages(**params: Any) -> list[dict[str, Any]]:
    logs = client("logs")
    pages = []
    while True:
        page = logs.filter_log_events(logGroupName=GROUP, **params)
        pages.append(page)
        if not page.get("nextToken"):
            return pages
        params["nextToken"] = page["nextToken"]


def test_pages_hold_at_most_10000_events_and_1_mb_interleaved_across_streams(aws: None) -> None:
    write_busy(12_000, size=100)
    with cloudwatch_paging(scan_events=50_000, empty_rate=0.0):
        pages = all_pages()
    sizes = [len(p["events"]) for p in pages]
    assert all(n <= 10_000 for n in sizes) and sum(sizes) == 12_000
    assert all(len(json.dumps(p["events"]).encode()) <= MAX_PAGE_BYTES for p in pages)
    assert len(pages) >= 2 and max(sizes) < 10_000  # 12,000 events of ~190 bytes: the 1 MB cut first
    # One time order across the three streams (moto alone answers stream after stream).
    stamps = [e["timestamp"] for p in pages for e in p["events"]]
    assert stamps == sorted(stamps)
    streams = [e["logStreamName"] for e in pages[0]["events"][:3]]
    assert len(set(streams)) == 3


def test_a_rare_term_comes_after_empty_pages_and_nothing_is_lost(aws: None) -> None:
    write_busy(3_000, needle_every=1_000)
    moto = client("logs").filter_log_events(logGroupName=GROUP, filterPattern='"NEEDLE"')["events"]
    with cloudwatch_paging(scan_events=250, empty_rate=0.3, seed=7) as double:
        pages = all_pages(filterPattern='"NEEDLE"')
        again = all_pages(filterPattern='"NEEDLE"')
    found = [e["eventId"] for p in pages for e in p["events"]]
    assert sorted(found) == sorted(e["eventId"] for e in moto) and len(found) == 3
    # Twelve slices of 250 events, three of which hold a match: most pages are empty, with a token.
    assert len(pages) >= 12 and sum(1 for p in pages if not p["events"] and p.get("nextToken")) >= 9
    assert not pages[0]["events"] or not pages[1]["events"]
    # Seeded: the same search is paged the same way.
    assert [len(p["events"]) for p in again] == [len(p["events"]) for p in pages]
    assert double.stats.searches == 2 and double.stats.continued == 2 * (len(pages) - 1)


def test_a_token_is_valid_only_for_its_own_search(aws: None) -> None:
    write_busy(300)
    with cloudwatch_paging(scan_events=100, empty_rate=0.0):
        logs = client("logs")
        first = logs.filter_log_events(logGroupName=GROUP, limit=100)
        with pytest.raises(logs.exceptions.InvalidParameterException):
            logs.filter_log_events(logGroupName=GROUP, limit=50, nextToken=first["nextToken"])
        with pytest.raises(logs.exceptions.ResourceNotFoundException):
            logs.filter_log_events(logGroupName="/aws/lambda/none")


def test_one_page_read_goes_through_empty_pages_to_the_first_events(aws: None) -> None:
    start = write_busy(400)
    # The double's pages depend on the search's window, which starts from the clock: how many empty pages
    # come first is random (no empty page at all: 1% of runs), so the read is checked against what was served.
    with cloudwatch_paging(scan_events=100, empty_rate=0.99, max_empty_run=3) as paging:
        before = paging.stats.snapshot()
        read = cw.filter_events(GROUP, start_ms=start, end_ms=start + 1_000, max_pages=1)
        served = paging.stats.since(before)
    # Empty pages do not count as the one page: the read goes through every one of them, returns the first
    # slice, and is marked truncated.
    assert [e.message[:11] for e in read.events] == [f"line {n:06d}" for n in range(100)]
    assert read.truncated and read.pages == served.requests == served.empty + 1


def test_a_frozen_copy_pages_as_the_live_group_does(aws: None) -> None:
    """The bench's mode (each group read once, windows cut from the copy) answers exactly as the double
    reading moto for every search."""
    start = write_busy(600, needle_every=70)
    searches: list[dict[str, Any]] = [
        {"startTime": start + 100, "endTime": start + 450},
        {"startTime": start, "endTime": start + 599, "filterPattern": '"NEEDLE"'},
        {"startTime": start + 10, "endTime": start + 500, "logStreamNames": ["stream-1"]},
    ]
    answers = []
    for frozen in (False, True):
        with cloudwatch_paging(scan_events=64, empty_rate=0.3, frozen=frozen):
            answers.append([[[e["eventId"] for e in p["events"]] for p in all_pages(**s)] for s in searches])
    assert answers[0] == answers[1]
    assert all(len(pages) > 1 for pages in answers[0])
