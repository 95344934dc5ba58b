"""Alarm notifications out of whichever envelope delivered them. Pure: no I/O.

Envelopes: SQS records whose body is the SNS envelope (the deployed path), the bare message (SNS raw
message delivery) or an EventBridge event (a rule targeting the queue); SNS records (a direct
subscription); EventBridge events given to the function directly. Formats, unchanged from AWS: the
CloudWatch alarm's SNS JSON (metric, metric-math ``Trigger.Metrics``, composite ``AlarmRule``) and the
EventBridge ``CloudWatch Alarm State Change`` event.

Anything else is *malformed*: returned with the reason, never raised, so one bad record cannot fail the
batch (the intake logs and skips it; it is never posted).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from bot.core.alarms.model import STATES, Alarm, MetricRef

EVENT_DETAIL_TYPE = "CloudWatch Alarm State Change"


class MalformedAlarm(ValueError):
    """The record carries no alarm notification opsbot can read."""


@dataclass(frozen=True)
class RawRecord:
    index: int
    sqs_message_id: str = ""
    sns_message_id: str = ""
    message: Any = None  # what was read, for the log line of a malformed record

    def label(self) -> str:
        parts = [f"record {self.index}"]
        if self.sqs_message_id:
            parts.append(f"sqs {self.sqs_message_id}")
        if self.sns_message_id:
            parts.append(f"sns {self.sns_message_id}")
        return ", ".join(parts)


@dataclass
class ParsedBatch:
    alarms: list[tuple[RawRecord, Alarm]] = field(default_factory=list)
    malformed: list[tuple[RawRecord, str]] = field(default_factory=list)
    flush: bool = False  # the schedule asked to post what waits in the outbox


def parse_time_ms(value: Any) -> int:
    """``2026-12-07T00:20:41.123+0000`` (SNS), ``2026-12-07T00:20:41Z`` (EventBridge) -> epoch ms."""
    if not isinstance(value, str) or not value.strip():
        raise MalformedAlarm(f"no time: {value!r}")
    from dateutil.parser import isoparse

    try:
        moment = isoparse(value.strip())
    except (ValueError, OverflowError):
        raise MalformedAlarm(f"unreadable time {value!r}") from None
    if moment.tzinfo is None:
        raise MalformedAlarm(f"time without a zone: {value!r}")
    return int(moment.timestamp() * 1000)


def _region_of(arn: str) -> str:
    parts = arn.split(":")
    return parts[3] if len(parts) > 4 and parts[0] == "arn" else ""


def _account_of(arn: str) -> str:
    parts = arn.split(":")
    return parts[4] if len(parts) > 4 and parts[0] == "arn" else ""


def _int(value: Any) -> int:
    try:
        return int(value) if value not in (None, "") else 0
    except (TypeError, ValueError):
        return 0


def _float(value: Any) -> float | None:
    try:
        return float(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def _dimensions(raw: Any) -> dict[str, str]:
    """SNS: ``[{"name", "value"}]`` (lower case); DescribeAlarms: ``[{"Name", "Value"}]``; EventBridge: an
    object. All become ``{name: value}``."""
    if isinstance(raw, dict):
        return {str(k): str(v) for k, v in raw.items()}
    found: dict[str, str] = {}
    for item in raw or []:
        if isinstance(item, dict):
            name = item.get("name", item.get("Name"))
            value = item.get("value", item.get("Value"))
            if name is not None and value is not None:
                found[str(name)] = str(value)
    return found


def metric_query(raw: dict[str, Any], *, camel: bool = False) -> MetricRef:
    """One entry of an alarm's ``Metrics`` (metric math): PascalCase in SNS and DescribeAlarms, camelCase
    (and ``name`` for ``MetricName``) in EventBridge's alarm state change."""

    def key(pascal: str) -> str:
        return pascal[0].lower() + pascal[1:] if camel else pascal

    stat = raw.get(key("MetricStat")) or {}
    metric = stat.get(key("Metric")) or {}
    return MetricRef(
        namespace=str(metric.get(key("Namespace")) or ""),
        name=str(metric.get("name" if camel else "MetricName") or ""),
        dimensions=_dimensions(metric.get(key("Dimensions"))),
        stat=str(stat.get(key("Stat")) or ""),
        period=_int(stat.get(key("Period"))),
        id=str(raw.get(key("Id")) or ""),
        expression=str(raw.get(key("Expression")) or ""),
        label=str(raw.get(key("Label")) or ""),
        return_data=bool(raw.get(key("ReturnData"), True)),
    )


def alarm_metrics(raw: dict[str, Any]) -> tuple[MetricRef, ...]:
    """The metrics of an alarm as SNS's ``Trigger`` or a DescribeAlarms entry spells them: metric-math
    queries, or the one metric of a plain alarm."""
    if raw.get("Metrics"):
        return tuple(metric_query(item) for item in raw["Metrics"] if isinstance(item, dict))
    if raw.get("MetricName") or raw.get("Namespace"):
        # SNS spells the statistic in capitals (SUM), DescribeAlarms as GetMetricData wants it (Sum); an
        # extended statistic (p99) is case-sensitive and kept as written.
        statistic = str(raw.get("Statistic") or "").title()
        return (
            MetricRef(
                namespace=str(raw.get("Namespace") or ""),
                name=str(raw.get("MetricName") or ""),
                dimensions=_dimensions(raw.get("Dimensions")),
                stat=statistic or str(raw.get("ExtendedStatistic") or ""),
                period=_int(raw.get("Period")),
            ),
        )
    return ()


def parse_sns_alarm(message: dict[str, Any]) -> Alarm:
    """The JSON CloudWatch publishes to SNS for a metric, metric-math or composite alarm."""
    name = message.get("AlarmName")
    state = message.get("NewStateValue")
    if not isinstance(name, str) or not name:
        raise MalformedAlarm("no AlarmName")
    if state not in STATES:
        raise MalformedAlarm(f"unknown NewStateValue {state!r}")
    arn = str(message.get("AlarmArn") or "")
    trigger = message.get("Trigger") if isinstance(message.get("Trigger"), dict) else {}
    assert isinstance(trigger, dict)
    return Alarm(
        name=name,
        state=str(state),
        changed_ms=parse_time_ms(message.get("StateChangeTime")),
        arn=arn,
        account=str(message.get("AWSAccountId") or _account_of(arn)),
        region=_region_of(arn),
        previous=str(message.get("OldStateValue") or ""),
        reason=str(message.get("NewStateReason") or ""),
        description=str(message.get("AlarmDescription") or ""),
        metrics=alarm_metrics(trigger),
        period=_int(trigger.get("Period")),
        evaluation_periods=_int(trigger.get("EvaluationPeriods")),
        datapoints_to_alarm=_int(trigger.get("DatapointsToAlarm")),
        comparison=str(trigger.get("ComparisonOperator") or ""),
        threshold=_float(trigger.get("Threshold")),
        statistic=str(trigger.get("Statistic") or "").title(),
        alarm_rule=str(message.get("AlarmRule") or ""),
        source="sns",
    )


def parse_event(event: dict[str, Any]) -> Alarm:
    """EventBridge's ``CloudWatch Alarm State Change`` (from this account or forwarded from another)."""
    if event.get("detail-type") != EVENT_DETAIL_TYPE:
        raise MalformedAlarm(
            f"EventBridge event of type {event.get('detail-type')!r}, not an alarm state change"
        )
    detail = event.get("detail")
    if not isinstance(detail, dict):
        raise MalformedAlarm("no detail")
    state = detail.get("state") if isinstance(detail.get("state"), dict) else {}
    previous = detail.get("previousState") if isinstance(detail.get("previousState"), dict) else {}
    assert isinstance(state, dict) and isinstance(previous, dict)
    name = detail.get("alarmName")
    if not isinstance(name, str) or not name:
        raise MalformedAlarm("no detail.alarmName")
    if state.get("value") not in STATES:
        raise MalformedAlarm(f"unknown detail.state.value {state.get('value')!r}")
    resources = event.get("resources") or []
    arn = str(resources[0]) if resources and isinstance(resources[0], str) else ""
    config = detail.get("configuration") if isinstance(detail.get("configuration"), dict) else {}
    assert isinstance(config, dict)
    metrics = [metric_query(raw, camel=True) for raw in config.get("metrics") or [] if isinstance(raw, dict)]
    periods = [m.period for m in metrics if m.period]
    changed = state.get("timestamp") or event.get("time")
    return Alarm(
        name=name,
        state=str(state["value"]),
        changed_ms=parse_time_ms(changed),
        arn=arn,
        account=str(event.get("account") or _account_of(arn)),
        region=str(event.get("region") or _region_of(arn)),
        previous=str(previous.get("value") or ""),
        reason=str(state.get("reason") or ""),
        description=str(config.get("description") or ""),
        metrics=tuple(metrics),
        period=periods[0] if periods else 0,
        # The event does not carry the evaluation periods: one period is the window (see docs/alarms.md).
        evaluation_periods=_int(config.get("evaluationPeriods")) or 1,
        comparison=str(config.get("comparisonOperator") or ""),
        threshold=_float(config.get("threshold")),
        statistic=str(metrics[0].stat) if len(metrics) == 1 else "",
        alarm_rule=str(config.get("alarmRule") or ""),
        source="eventbridge",
    )


def parse_message(message: Any) -> Alarm:
    """One message (already out of its envelope): the SNS alarm JSON or an EventBridge event."""
    if isinstance(message, str):
        try:
            message = json.loads(message)
        except ValueError:
            raise MalformedAlarm("not JSON") from None
    if not isinstance(message, dict):
        raise MalformedAlarm("not a JSON object")
    if "detail-type" in message:
        return parse_event(message)
    if "AlarmName" in message or "NewStateValue" in message:
        return parse_sns_alarm(message)
    raise MalformedAlarm("neither a CloudWatch alarm notification nor an alarm state change event")


def _is_flush(event: Any) -> bool:
    return isinstance(event, dict) and (
        event.get("opsbot_alarms") == "flush" or event.get("detail-type") == "Scheduled Event"
    )


def parse_batch(event: Any) -> ParsedBatch:
    """Every alarm of a Lambda event, and every record that held none (with the reason)."""
    batch = ParsedBatch()
    if _is_flush(event):
        batch.flush = True
        return batch
    records = event.get("Records") if isinstance(event, dict) else None
    if not isinstance(records, list):
        _one(batch, RawRecord(0, message=event), event)
        return batch
    for index, record in enumerate(records):
        if not isinstance(record, dict):
            batch.malformed.append((RawRecord(index, message=record), "not a record"))
            continue
        if record.get("eventSource") == "aws:sqs":
            raw = RawRecord(
                index, sqs_message_id=str(record.get("messageId") or ""), message=record.get("body")
            )
            try:
                body = json.loads(str(record.get("body")))
            except ValueError:
                batch.malformed.append((raw, "SQS body is not JSON"))
                continue
            if isinstance(body, dict) and body.get("Type") == "Notification" and "Message" in body:
                raw = RawRecord(
                    index, raw.sqs_message_id, str(body.get("MessageId") or ""), message=body.get("Message")
                )
                _one(batch, raw, body.get("Message"))
            else:
                _one(batch, raw, body)  # raw message delivery, or an EventBridge rule targeting the queue
        elif record.get("EventSource") == "aws:sns" and isinstance(record.get("Sns"), dict):
            sns = record["Sns"]
            raw = RawRecord(index, sns_message_id=str(sns.get("MessageId") or ""), message=sns.get("Message"))
            _one(batch, raw, sns.get("Message"))
        else:
            batch.malformed.append((RawRecord(index, message=record), "neither an SQS nor an SNS record"))
    return batch


def _one(batch: ParsedBatch, raw: RawRecord, message: Any) -> None:
    try:
        batch.alarms.append((raw, parse_message(message)))
    except MalformedAlarm as error:
        batch.malformed.append((raw, str(error)))
