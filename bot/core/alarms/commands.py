"""The entries of ``alarms``: explain an alarm (CLI, shortcut), and the buttons' work (errors since,
acknowledge, mute). Plain arguments and ``Settings`` in, data out; the callers render."""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from bot.aws import alarms as aws_alarms
from bot.config import Settings
from bot.core.alarms.correlate import Correlation, FindErrors, correlate
from bot.core.alarms.delivery import EpisodeView
from bot.core.alarms.model import Alarm
from bot.core.alarms.parse import _float, _int, alarm_metrics
from bot.errors import NotFoundError, UsageError

if TYPE_CHECKING:
    from bot.core.apilogs.scope import ReadLimit

MUTE_SECONDS = 3600


@dataclass
class Explained:
    alarm: Alarm
    correlation: Correlation

    def to_json(self) -> dict[str, Any]:
        data = self.correlation.to_json()
        return {
            "alarm": self.alarm.name,
            "state": self.alarm.state,
            "namespace": self.alarm.namespace,
            "window": data["window"],
            "correlated": data["correlated"],
            "groups": data["groups"],
            "kind": data["kind"],
            "complete": data["complete"],
            "note": data["note"],
            "insightsUrl": data["insightsUrl"],
            **({"stream": data["stream"]} if "stream" in data else {}),
        }


def _ms(value: Any) -> int:
    if isinstance(value, datetime):
        return int(value.timestamp() * 1000)
    return int(time.time() * 1000)


def alarm_from_describe(raw: dict[str, Any]) -> Alarm:
    """A ``MetricAlarms``/``CompositeAlarms`` entry of DescribeAlarms as an ``Alarm``."""
    arn = str(raw.get("AlarmArn") or "")
    metrics = alarm_metrics(raw)
    parts = arn.split(":")
    return Alarm(
        name=str(raw.get("AlarmName") or ""),
        state=str(raw.get("StateValue") or ""),
        changed_ms=_ms(raw.get("StateUpdatedTimestamp")),
        arn=arn,
        account=parts[4] if len(parts) > 4 else "",
        region=parts[3] if len(parts) > 4 else "",
        reason=str(raw.get("StateReason") or ""),
        description=str(raw.get("AlarmDescription") or ""),
        metrics=metrics,
        period=_int(raw.get("Period")) or next((m.period for m in metrics if m.period), 0),
        evaluation_periods=_int(raw.get("EvaluationPeriods")),
        datapoints_to_alarm=_int(raw.get("DatapointsToAlarm")),
        comparison=str(raw.get("ComparisonOperator") or ""),
        threshold=_float(raw.get("Threshold")),
        statistic=str(raw.get("Statistic") or ""),
        alarm_rule=str(raw.get("AlarmRule") or ""),
        source="describe",
    )


def explain(
    settings: Settings,
    name: str,
    *,
    at: str = "",
    find_errors: FindErrors | None = None,
    deadline: float | None = None,
    limit: ReadLimit | None = None,
) -> Explained:
    """The alarm (DescribeAlarms) and the correlation of its window: the evaluation periods before its
    last state change, or before ``at``. ``limit``: the read scope of the channel asked in (Slack)."""
    if not name.strip():
        raise UsageError("Name the alarm: `opsbot alarms explain ALARM_NAME`.")
    raw = aws_alarms.describe_alarm(name.strip())
    if raw is None:
        raise NotFoundError(f"No alarm named {name!r} in this account and region (DescribeAlarms).")
    alarm = alarm_from_describe(raw)
    at_ms = None
    if at:
        from bot.core.common.timeparse import parse_time

        at_ms = int(parse_time(at).timestamp() * 1000)
    return Explained(
        alarm,
        correlate(
            alarm, settings=settings, find_errors=find_errors, at_ms=at_ms, deadline=deadline, limit=limit
        ),
    )


# Chatbot's posts name the alarm: `CloudWatch Alarm | shop-api-5xx | us-east-1 | Account: 123…` or the SNS
# subject `ALARM: "shop-api-5xx" in US East (N. Virginia)`.
_CHATBOT = re.compile(r"CloudWatch Alarm \| (?P<name>[^|\n]+?) \|")
_SUBJECT = re.compile(r"(?:ALARM|OK|INSUFFICIENT_DATA): \"(?P<name>[^\"\n]+)\" in ")


_CHATBOT_REGION = re.compile(r"CloudWatch Alarm \| [^|\n]+? \| (?P<region>[a-z]{2}(?:-[a-z]+)+-\d) \|")
_ARN_REGION = re.compile(r"arn:aws[a-z-]*:cloudwatch:(?P<region>[a-z]{2}(?:-[a-z]+)+-\d):\d{12}:alarm:")


def alarm_name_in_text(text: str) -> str:
    """The alarm an AWS Chatbot (or e-mail) post names, or ""."""
    found = _CHATBOT.search(text) or _SUBJECT.search(text)
    return found["name"].strip() if found else ""


def alarm_region_in_text(text: str) -> str:
    """The region such a post names (Chatbot's title, an alarm ARN in an e-mail), or "" (the default)."""
    found = _CHATBOT_REGION.search(text) or _ARN_REGION.search(text)
    return found["region"] if found else ""


# -- the buttons -------------------------------------------------------------------------------------


def episode(settings: Settings, key: str) -> dict[str, Any]:
    item = aws_alarms.episode_get(settings.state_table, key)
    if item is None:
        raise NotFoundError("This alarm's episode is no longer kept (30 days); use `opsbot alarms explain`.")
    return item


def errors_since(settings: Settings, key: str, *, find_errors: FindErrors | None = None) -> Explained:
    """The grouping again, from the window before the episode began until now."""
    item = episode(settings, key)
    view = EpisodeView.of(item)
    alarm = view.alarm
    now = int(time.time() * 1000)
    period = alarm.period or 300
    periods = max(1, alarm.evaluation_periods) + (now - view.start_ms) // (period * 1000) + 1
    widened = replace(alarm, evaluation_periods=int(periods))
    return Explained(alarm, correlate(widened, settings=settings, find_errors=find_errors, at_ms=now))


def acknowledge(settings: Settings, key: str, user: str) -> EpisodeView:
    episode(settings, key)
    item = aws_alarms.episode_set(settings.state_table, key, {"ackedBy": user, "ackedAt": time.time()})
    return EpisodeView.of(item)


def mute(settings: Settings, key: str, user: str, *, seconds: int = MUTE_SECONDS) -> EpisodeView:
    episode(settings, key)
    item = aws_alarms.episode_set(
        settings.state_table, key, {"mutedUntil": time.time() + seconds, "mutedBy": user}
    )
    return EpisodeView.of(item)


def correlation_json(result: Correlation) -> str:
    return json.dumps(result.to_json(), separators=(",", ":"))
