"""The alarm as opsbot sees it, whichever message format (SNS JSON or EventBridge) carried it.

Pure: no I/O. ``Alarm`` is what the parser returns and what the episode, the renderer and the correlation
work from; ``to_json``/``from_json`` keep it in the state table (the episode item and the outbox).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

STATES = ("ALARM", "OK", "INSUFFICIENT_DATA")

# The comparison operators in words, for the post ("greater than or equal to 1").
COMPARISONS = {
    "GreaterThanOrEqualToThreshold": "≥",
    "GreaterThanThreshold": ">",
    "LessThanThreshold": "<",
    "LessThanOrEqualToThreshold": "≤",
    "LessThanLowerOrGreaterThanUpperThreshold": "outside the band",
    "LessThanLowerThreshold": "below the band",
    "GreaterThanUpperThreshold": "above the band",
}


@dataclass(frozen=True)
class MetricRef:
    """One metric of the alarm: the metric itself, or one ``MetricStat`` of a metric-math alarm."""

    namespace: str
    name: str
    dimensions: dict[str, str] = field(default_factory=dict)
    stat: str = ""
    period: int = 0
    id: str = ""
    expression: str = ""  # metric math: the expression (then namespace and name are empty)
    label: str = ""
    return_data: bool = True

    def to_json(self) -> dict[str, Any]:
        data = {k: v for k, v in asdict(self).items() if v not in ("", 0, {}, None)}
        return data | {"namespace": self.namespace, "name": self.name, "return_data": self.return_data}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> MetricRef:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass(frozen=True)
class Alarm:
    name: str
    state: str
    changed_ms: int  # StateChangeTime (SNS) or detail.state.timestamp (EventBridge)
    arn: str = ""
    account: str = ""
    region: str = ""  # a code (us-east-1), taken from the ARN: the SNS ``Region`` is a display name
    previous: str = ""
    reason: str = ""
    description: str = ""
    metrics: tuple[MetricRef, ...] = ()
    period: int = 0
    evaluation_periods: int = 0
    datapoints_to_alarm: int = 0
    comparison: str = ""
    threshold: float | None = None
    statistic: str = ""
    alarm_rule: str = ""  # composite alarms
    source: str = "sns"  # sns | eventbridge | describe

    @property
    def key(self) -> str:
        """Stable per alarm across formats: the ARN (both formats carry it), else account/region/name."""
        return self.arn or f"arn:aws:cloudwatch:{self.region}:{self.account}:alarm:{self.name}"

    @property
    def composite(self) -> bool:
        return bool(self.alarm_rule)

    @property
    def metric_math(self) -> bool:
        return any(m.expression for m in self.metrics) or len(self.metrics) > 1

    @property
    def primary(self) -> MetricRef | None:
        """The metric that says what failed: the alarm's metric, or the first metric a math alarm reads."""
        plain = [m for m in self.metrics if not m.expression and m.namespace]
        return plain[0] if plain else None

    @property
    def namespace(self) -> str:
        primary = self.primary
        return primary.namespace if primary else ""

    def threshold_text(self) -> str:
        if self.threshold is None:
            return ""
        op = COMPARISONS.get(self.comparison, self.comparison)
        value = f"{self.threshold:g}"
        return f"{op} {value}".strip()

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["metrics"] = [m.to_json() for m in self.metrics]
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Alarm:
        known = {f.name for f in fields(cls)}
        kept = {k: v for k, v in data.items() if k in known}
        kept["metrics"] = tuple(MetricRef.from_json(m) for m in kept.get("metrics") or [])
        if not isinstance(kept.get("name"), str) or not isinstance(kept.get("state"), str):
            raise ValueError("an alarm needs a name and a state")
        return cls(**kept)


def window(alarm: Alarm, *, at_ms: int | None = None) -> tuple[int, int]:
    """The alarm's evaluation window: ``EvaluationPeriods`` × ``Period`` before the state change.

    The end is the state change (or ``at_ms``); a datapoint is stamped with its period's start, so the
    window reaches back one period further than the periods evaluated would suggest only when the alarm
    fired late: we keep to what AWS documents (periods × period). Unknown periods (a composite alarm, a
    message without them) fall back to 5 minutes, the console's default.
    """
    end = alarm.changed_ms if at_ms is None else at_ms
    period = alarm.period or (alarm.primary.period if alarm.primary else 0) or 300
    periods = max(1, alarm.evaluation_periods or 1)
    return end - period * periods * 1000, end
