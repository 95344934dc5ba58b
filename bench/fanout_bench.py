"""Reading a large fan-out table: opsbot's every-page read against the fan-out function's first page.

One source with many targets (items shaped as the CLI writes them) in moto over real HTTP. Prints, for
the original function's configuration query (first page only) and for opsbot's list (every page) and
check: targets seen, DynamoDB requests and time, measured in the same run.

    .venv/bin/python bench/fanout_bench.py [--quick]
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.aws.clients import client
from bot.aws.dynamo import to_item
from bot.aws.fanout import FANOUT_TABLE_DEFINITION, first_page_as_the_function_reads_it
from bot.aws.state import create_table
from bot.config import Settings
from bot.core.fanout.commands import check, list_mappings
from bot.local.aws import start_embedded_aws

SOURCE = "arn:aws:kinesis:us-east-1:123456789012:stream/orders"


def fill(table: str, count: int) -> None:
    """``count`` active targets, as ``./fanout register sqs ... --active true`` writes them.

    Long but plausible names (about 700 bytes an item) fill DynamoDB's 1 MB pages with fewer items, which
    keeps moto's per-item cost, not the page logic, from dominating the run.
    """
    ddb = client("dynamodb")
    team = "retail-platform-order-events-downstream-consumer"
    items = [
        {
            "sourceArn": SOURCE,
            "id": f"{team}-partner-{n:05d}-" + "eu-central-analytics-feed-" * 4,
            "type": "sqs",
            "destination": f"https://sqs.us-east-1.amazonaws.com/123456789012/{team}-{n:05d}-orders",
            "role": f"arn:aws:iam::{210987654321 + n % 1000:012d}:role/{team}-delivery-role",
            "externalId": f"{team}-partner-{n:05d}-external-id-" + "0123456789abcdef" * 6,
            "region": "us-east-1",
            "active": True,
            "collapse": "JSON",
            "parallel": False,
        }
        for n in range(count)
    ]
    for start in range(0, len(items), 25):
        batch = [{"PutRequest": {"Item": to_item(item)}} for item in items[start : start + 25]]
        ddb.batch_write_item(RequestItems={table: batch})


class Requests:
    def __init__(self) -> None:
        self.count = 0
        client("dynamodb").meta.events.register("before-call.dynamodb.*", self._seen)

    def _seen(self, **_: Any) -> None:
        self.count += 1


def measure(counter: Requests, runs: int, action: Callable[[], int]) -> tuple[int, int, float]:
    """(targets seen, requests per run, median milliseconds)."""
    times: list[float] = []
    seen = requests = 0
    for _ in range(runs):
        before = counter.count
        started = time.perf_counter()
        seen = action()
        times.append((time.perf_counter() - started) * 1000)
        requests = counter.count - before
    return seen, requests, statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--quick", action="store_true", help="2,000 targets and 3 runs")
    args = parser.parse_args()
    count, runs = (2000, 3) if args.quick else (4000, 5)

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
    server = start_embedded_aws()
    try:
        create_table("fanoutTargets", FANOUT_TABLE_DEFINITION)
        fill("fanoutTargets", count)
        settings = Settings.from_env({"AWS_REGION": "us-east-1"})
        counter = Requests()

        def original() -> int:
            loaded, _ = first_page_as_the_function_reads_it("fanoutTargets", SOURCE)
            return len(loaded)

        def opsbot_list() -> int:
            return list_mappings(settings).target_count

        def opsbot_check() -> int:
            report = check(settings)
            missing = [f for f in report.findings if f.rule == "beyond-first-page"]
            return int(missing[0].reason.split()[0]) if missing else 0

        print(
            f"fan-out table read bench (moto over HTTP, one source, {count} active targets, median of {runs})"
        )
        print("\n                                        targets seen   DynamoDB requests   time")
        seen: dict[str, int] = {}
        for name, action in (
            ("fan-out function (first page only)", original),
            ("opsbot fanout list (every page)", opsbot_list),
        ):
            seen[name], requests, ms = measure(counter, runs, action)
            print(f"  {name:<38} {seen[name]:>10}   {requests:>12}        {ms:>8.1f} ms")
        missing, requests, ms = measure(counter, runs, opsbot_check)
        print(
            f"  {'opsbot fanout check':<38} {missing:>10} never loaded by the function ({requests} requests, {ms:.1f} ms)"
        )
    finally:
        server.stop()
    misses: list[str] = []
    if seen["opsbot fanout list (every page)"] != count:
        misses.append(f"list saw {seen['opsbot fanout list (every page)']} of {count} targets (target: all)")
    if missing != count - seen["fan-out function (first page only)"]:
        misses.append(
            f"check reported {missing} targets beyond the first page, the function missed "
            f"{count - seen['fan-out function (first page only)']}"
        )
    for miss in misses:
        print(f"TARGET MISSED: {miss}")
    return 1 if misses else 0


if __name__ == "__main__":
    raise SystemExit(main())
