"""fanout health's metric reads: one GetMetricData query batch against a request per metric.

Many Kinesis sources hooked to one fan-out function, with an hour of synthetic one-minute data points
(PutMetricData), in moto over real HTTP. opsbot's health reads the 6 function metrics once and 3 per
stream in one query batch (a request per 500 queries); the baseline is what a per-source script or a
console tab per graph does: GetMetricStatistics for each metric of each source (the function's 6 again for
every source, plus the stream's 3). Both are measured in the same run; the verdicts must agree with the
data (every falling-behind source found).

    .venv/bin/python bench/fanout_health_bench.py [--sources N]

40 sources by default (about 70 s, most of it moto storing and scanning data points: moto scans every
stored point per query, so the time grows with the square of the sources; 100 take many minutes).
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import math
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.aws.clients import client
from bot.aws.fanout import FANOUT_TABLE_DEFINITION, register_like_cli
from bot.aws.metrics import put_metric_points
from bot.aws.state import create_table
from bot.config import Settings
from bot.core.fanout.health import BEHIND, health
from bot.local.aws import start_embedded_aws
from bot.local.seeds.fanout import _fanout_function

ACCOUNT = "123456789012"
FUNCTION_METRICS = (
    ("IteratorAge", "Maximum"),
    ("Errors", "Sum"),
    ("Invocations", "Sum"),
    ("Throttles", "Sum"),
    ("Duration", "Maximum"),
    ("ConcurrentExecutions", "Maximum"),
)
STREAM_METRICS = (
    ("GetRecords.IteratorAgeMilliseconds", "Maximum"),
    ("ReadProvisionedThroughputExceeded", "Sum"),
    ("WriteProvisionedThroughputExceeded", "Sum"),
)


class Requests:
    def __init__(self) -> None:
        self.count: dict[str, int] = {}
        client("cloudwatch").meta.events.register("before-call.cloudwatch.*", self._seen)

    def _seen(self, model: Any, **_: Any) -> None:
        self.count[model.name] = self.count.get(model.name, 0) + 1


def seed(sources: int, now: dt.datetime) -> list[str]:
    create_table("fanoutTargets", FANOUT_TABLE_DEFINITION)
    _fanout_function("fanout")
    kinesis, lam = client("kinesis"), client("lambda")
    end = now.replace(second=0, microsecond=0)
    minutes = [end - dt.timedelta(minutes=60 - i) for i in range(60)]
    behind: list[str] = []
    for n in range(sources):
        name = f"stream{n:03d}"
        kinesis.create_stream(StreamName=name, ShardCount=1)
        arn = f"arn:aws:kinesis:us-east-1:{ACCOUNT}:stream/{name}"
        register_like_cli(
            "fanoutTargets",
            source_arn=arn,
            target_id="t",
            target_type="kinesis",
            destination="o",
            active=True,
        )
        lam.create_event_source_mapping(EventSourceArn=arn, FunctionName="fanout", StartingPosition="LATEST")
        lagging = n % 5 == 0  # every fifth stream falls behind
        ages = [60_000.0 * (i + 1) if lagging else 300.0 for i in range(60)]
        if lagging:
            behind.append(name)
        put_metric_points(
            "AWS/Kinesis",
            "GetRecords.IteratorAgeMilliseconds",
            {"StreamName": name},
            list(zip(minutes, ages, strict=True)),
        )
    values = {"IteratorAge": 60_000.0, "Errors": 0.0, "Invocations": 200.0, "Throttles": 0.0}
    for metric, _ in FUNCTION_METRICS:
        value = values.get(metric, 500.0)  # Duration 500 ms (of 3 s), concurrency 500
        put_metric_points("AWS/Lambda", metric, {"FunctionName": "fanout"}, [(m, value) for m in minutes])
    return behind


def baseline(sources: int, start: dt.datetime, end: dt.datetime) -> None:
    cloudwatch = client("cloudwatch")
    for n in range(sources):
        for metric, stat in FUNCTION_METRICS:
            cloudwatch.get_metric_statistics(
                Namespace="AWS/Lambda", MetricName=metric, Dimensions=[{"Name": "FunctionName", "Value": "fanout"}],
                StartTime=start, EndTime=end, Period=60, Statistics=[stat],
            )  # fmt: skip
        for metric, stat in STREAM_METRICS:
            cloudwatch.get_metric_statistics(
                Namespace="AWS/Kinesis", MetricName=metric, Dimensions=[{"Name": "StreamName", "Value": f"stream{n:03d}"}],
                StartTime=start, EndTime=end, Period=60, Statistics=[stat],
            )  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--sources", type=int, default=40, help="hooked Kinesis sources (default 40)")
    parser.add_argument("--quick", action="store_true", help="the default (kept for older commands)")
    args = parser.parse_args()
    if args.sources < 5:
        parser.error("--sources must be at least 5 (every fifth source falls behind)")
    sources, runs = args.sources, 3

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = start_embedded_aws()
    misses: list[str] = []
    try:
        now = dt.datetime.now(dt.UTC)
        behind = seed(sources, now)
        settings = Settings.from_env({"AWS_REGION": "us-east-1"})
        counter = Requests()
        ours: list[float] = []
        theirs: list[float] = []
        found: list[str] = []
        ours_requests = theirs_requests = 0
        for _ in range(runs):
            before = counter.count.get("GetMetricData", 0)
            started = time.perf_counter()
            report = health(settings, now=now)
            ours.append(time.perf_counter() - started)
            ours_requests = counter.count.get("GetMetricData", 0) - before
            found = sorted(s.source.name for s in report.sources if s.verdict.state == BEHIND)

            before = counter.count.get("GetMetricStatistics", 0)
            started = time.perf_counter()
            baseline(sources, now - dt.timedelta(hours=1), now)
            theirs.append(time.perf_counter() - started)
            theirs_requests = counter.count.get("GetMetricStatistics", 0) - before
        queries = 6 + 3 * sources
        print(
            f"fan-out health metric reads (moto over HTTP, {sources} Kinesis sources, 1 function, median of {runs})"
        )
        print(
            f"  opsbot fanout health (whole report)   {ours_requests:>4} GetMetricData requests for {queries} queries   {statistics.median(ours):.2f} s"
        )
        print(
            f"  baseline, one request per metric      {theirs_requests:>4} GetMetricStatistics requests            {statistics.median(theirs):.2f} s (metrics only)"
        )
        print(f"  falling behind found: {len(found)} of {len(behind)}")
    finally:
        server.stop()
    if ours_requests != math.ceil(queries / 500):
        misses.append(
            f"{ours_requests} GetMetricData requests for {queries} queries (target: {math.ceil(queries / 500)})"
        )
    if statistics.median(ours) >= statistics.median(theirs):
        misses.append("the whole health report was not faster than the baseline's metric reads alone")
    if found != behind:
        misses.append(f"falling behind found {found}, expected {behind}")
    for miss in misses:
        print(f"TARGET MISSED: {miss}")
    return 1 if misses else 0


if __name__ == "__main__":
    sys.exit(main())
