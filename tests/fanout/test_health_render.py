"""Health, pause and deep-check rendering within Slack's limits."""

from __future__ import annotations

import datetime as dt

from bot.aws.fanout import StreamInfo
from bot.core.fanout.commands import Hook, SourceGroup, Target, parse_source
from bot.core.fanout.health import ErrorGroup, HealthReport, SourceHealth, SourceMetrics, verdict
from bot.render.blocks import MAX_BLOCKS_MESSAGE, problems
from bot.render.fanout import health_blocks, health_text, parse_hook_value


def source(n: int, state: str = "Enabled", age: float = 10 * 60_000) -> SourceHealth:
    arn = f"arn:aws:kinesis:us-east-1:123456789012:stream/s{n:03d}-" + "x" * 100
    targets = tuple(
        Target.from_item(
            {"sourceArn": arn, "id": f"t{i}", "type": "sqs", "active": True}, table="fanoutTargets"
        )
        for i in range(3)
    )
    hook = Hook("u", state, 100, "LATEST", "OK", "", "", "arn:aws:lambda:us-east-1:1:function:fanout")
    group = SourceGroup("fanoutTargets", "fanout", parse_source(arn), targets, (hook,), True)
    metrics = SourceMetrics(stream_iterator_age_max_ms=age, stream_iterator_age_trend="rising")
    stream = StreamInfo("ACTIVE", 2, 2, 24)
    errors = tuple(ErrorGroup(f"t{i}", 5, ("ERROR " + "y" * 600,) * 3) for i in range(3))
    return SourceHealth(group, hook, metrics, stream, verdict(hook, metrics, stream), errors, 3)


def report(sources: list[SourceHealth]) -> HealthReport:
    now = dt.datetime(2026, 12, 7, 12, tzinfo=dt.UTC)
    return HealthReport(tuple(sources), now - dt.timedelta(hours=1), now, 60, 12, 1, since="1h")


def test_many_sources_with_long_error_lines_fit_in_one_message() -> None:
    blocks = health_blocks(report([source(n) for n in range(80)]), nonce="ab")
    assert problems(blocks) == [] and len(blocks) <= MAX_BLOCKS_MESSAGE
    assert "more sources" in str(blocks[-1]) or len(blocks) < 50


def test_buttons_follow_the_verdict_and_the_grant() -> None:
    behind, paused, healthy = source(1), source(2, state="Disabled"), source(3, age=100)
    blocks = health_blocks(report([behind, paused, healthy]), nonce="n")
    accessories = [b.get("accessory", {}).get("action_id") for b in blocks if b["type"] == "section"]
    assert accessories == ["fanout:pause", "fanout:resume", None]
    assert parse_hook_value(blocks[2]["accessory"]["value"]) == ("fanoutTargets", behind.source.arn)
    assert not any("accessory" in b for b in health_blocks(report([behind]), buttons=False))
    text = health_text(report([behind, paused]))
    assert "[FALLING BEHIND]" in text and "[PAUSED]" in text and "errors, target t0: 5" in text
