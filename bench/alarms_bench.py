"""Alarm intake: time from the notification to its post, and AWS calls per alarm.

Setup: moto in-process with the demo's apilogs data set (the shop-api traffic, its Lambda log groups), a
recording poster (no HTTP: the Slack call itself is not what is measured), alarms on the orders-api
function's Errors arriving as SQS batches of 10 (distinct alarms, so every one opens an episode and is
correlated against the function's log group).

Baseline, in the same run: the same alarms handled correlate-first (the search, then the post), as a
handler that does not split the post from the correlation would.

Targets: the median time to post <= 1/2 of the baseline's, every post within 1 s of its batch's start, and
at most 12 AWS calls per alarm
(episode read and write, storm counter, correlation search, correlation write, the batch's outbox read).
Exit 1 on a miss (``TARGET MISSED: …``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

ENV = {
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
}


class RecordingPoster:
    def __init__(self) -> None:
        self.posted_at: dict[str, float] = {}
        self.count = 0

    def post_episode(self, channel: str, view: Any) -> str:
        self.posted_at.setdefault(view.alarm.name, time.perf_counter())
        self.count += 1
        return f"{self.count}.0001"

    def update_episode(self, channel: str, ts: str, view: Any) -> None:
        pass

    def reply(self, channel: str, ts: str, text: str) -> None:
        pass

    def upload_graph(self, channel: str, ts: str, png: bytes, title: str) -> None:
        pass

    def post_digest(self, channel: str, digest: Any) -> str:
        return "0.1"

    def update_digest(self, channel: str, ts: str, digest: Any) -> None:
        pass


def messages(count: int, prefix: str, changed: datetime) -> list[dict[str, Any]]:
    base = json.loads(
        json.loads((Path(__file__).resolve().parents[1] / "tests/events/sns_alarm_lambda.json").read_text())[
            "Records"
        ][0]["Sns"]["Message"]
    )
    stamp = changed.strftime("%Y-%m-%dT%H:%M:%S.000+0000")
    out = []
    for n in range(count):
        name = f"{prefix}-{n}"
        out.append({**base, "AlarmName": name, "AlarmArn": base["AlarmArn"].replace("orders-api-errors", name),
                    "StateChangeTime": stamp,
                    "Trigger": {**base["Trigger"], "Period": 300, "EvaluationPeriods": 12}})  # fmt: skip
    return out


def batches(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for start in range(0, len(items), 10):
        records = [
            {"messageId": f"m{start + i}", "eventSource": "aws:sqs",
             "body": json.dumps({"Type": "Notification", "MessageId": f"s{start + i}", "Message": json.dumps(m)})}
            for i, m in enumerate(items[start : start + 10])
        ]  # fmt: skip
        out.append({"Records": records})
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alarms", type=int, default=40)
    parser.add_argument("--quick", action="store_true", help="20 alarms")
    args = parser.parse_args(argv)
    count = 20 if args.quick else args.alarms
    import os

    os.environ.update(ENV)
    for key in [k for k in os.environ if k.startswith(("OPSBOT_", "AWS_ENDPOINT_URL", "AWS_PROFILE"))]:
        os.environ.pop(key)
    from botocore.client import BaseClient
    from moto import mock_aws

    from bot.aws import clients
    from bot.aws.state import create_state_table
    from bot.config import Settings
    from bot.core.alarms import correlate as correlate_module
    from bot.core.alarms.parse import parse_batch
    from bot.intake.alarms import AlarmsApp
    from bot.local.apilogs_traffic import write_events
    from bot.local.seeds.apilogs import create_api, generate

    with mock_aws():
        clients.clear_caches()
        create_state_table("opsbot-state")
        now = datetime.now(UTC)
        api_id, account = create_api("us-east-1")
        demo = generate(api_id, account, now, count=400)
        write_events(clients.client("logs"), (e for r in demo.requests for e in r.events))
        settings = Settings.from_env(
            {**ENV, "OPSBOT_ALERT_CHANNEL": "C0BENCH", "OPSBOT_ALARM_STORM_THRESHOLD": "1000"}
        )

        calls = {"n": 0}
        original = BaseClient._make_api_call

        def counting(client: Any, operation: str, params: dict[str, Any]) -> Any:
            calls["n"] += 1
            return original(client, operation, params)

        BaseClient._make_api_call = counting  # type: ignore[method-assign]
        try:
            # opsbot: post first, correlate after.
            poster = RecordingPoster()
            app = AlarmsApp(settings, poster=poster, graph=None)
            waits: list[float] = []
            groups = 0
            for event in batches(messages(count, "bench", now)):
                started = time.perf_counter()
                report = app.handle(event)
                groups += report.correlated
                names = [json.loads(json.loads(r["body"])["Message"])["AlarmName"] for r in event["Records"]]
                waits += [poster.posted_at[n] - started for n in names]
            ours_calls = calls["n"] / count
            # Baseline: correlate first, then post (same searches, same poster).
            calls["n"] = 0
            base_waits: list[float] = []
            for event in batches(messages(count, "base", now)):
                started = time.perf_counter()
                for _, alarm in parse_batch(event).alarms:
                    correlate_module.correlate(alarm)
                    base_waits.append(time.perf_counter() - started)
            base_calls = calls["n"] / count
        finally:
            BaseClient._make_api_call = original  # type: ignore[method-assign]

    ours, base = statistics.median(waits), statistics.median(base_waits)
    print(f"alarms: {count} (orders-api Errors, 1 h window, {len(demo.requests)} requests in the data set)")
    print(f"time to post, median: {ours * 1000:.1f} ms (p90 {sorted(waits)[int(0.9 * len(waits))] * 1000:.1f} ms)"
          f"  baseline correlate-first: {base * 1000:.1f} ms")  # fmt: skip
    print(
        f"AWS calls per alarm: {ours_calls:.2f} (of which the correlation alone: {base_calls:.2f}); correlated {groups}"
    )
    missed = []
    if ours > base / 3:
        missed.append(
            f"median time to post {ours * 1000:.1f} ms > 1/3 of the baseline's {base * 1000:.1f} ms"
        )
    if ours_calls > 12:
        missed.append(f"{ours_calls:.2f} AWS calls per alarm > 12")
    for miss in missed:
        print(f"TARGET MISSED: {miss}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
