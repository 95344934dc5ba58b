"""The DNS results as JSON and back, for the trip from the DNS mirror function to the Slack function.

The mirror function does the work (``worker``) and answers with data; the Slack function rebuilds the
same frozen dataclasses from it and renders them (``bot.render.dns``), exactly as it would have rendered
them had the work run in its own process. ``X_from_json(X_to_json(x)) == x`` for each kind, through
``json.dumps``/``json.loads``: nothing is lost, so both paths show the same thing.

A plan travels whole (every change, so that its fingerprint and counts are the plan's own): about 100
bytes a change, 1 MB for 10,000 (Route 53's default quota per hosted zone), within the 6 MB a synchronous
Invoke may answer. A progress report
carries only counts and the batches done: it is written to a state-table item (400 KB at most).

Anything unreadable raises ``WireError``: an answer from a mirror function of another build, say.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from bot.core.dns.commands import (
    ApplyProgress,
    ApplyResult,
    BatchOutcome,
    Preview,
    Timings,
    ZoneStatus,
)
from bot.core.dns.config import ZoneConfig, zone_from_mapping
from bot.core.dns.plan import Action, Batch, Change, Guard, Plan
from bot.core.dns.records import LeftAlone, RecordSet
from bot.errors import OpsbotError

T = TypeVar("T")


class WireError(OpsbotError):
    """An answer of the DNS mirror function that this build cannot read."""


def read(decode: Callable[[Any], T], data: Any, what: str) -> T:
    """``decode(data)``, with any malformation as a WireError that names ``what``."""
    try:
        return decode(data)
    except (KeyError, TypeError, ValueError, IndexError, AttributeError, OpsbotError) as error:
        detail = error.message if isinstance(error, OpsbotError) else f"{type(error).__name__}: {error}"
        raise WireError(
            f"The DNS mirror function's {what} could not be read ({detail}).",
            hint="Deploy the Slack function and the DNS mirror function from the same build.",
        ) from None


# -- zones -----------------------------------------------------------------------------------------


def zone_to_json(zone: ZoneConfig) -> dict[str, Any]:
    return {
        "domain": zone.domain,
        "master": str(zone.master),
        "zone_id": zone.zone_id,
        "tsig": zone.tsig or None,  # a location, never a key
        "ignore_ttl": zone.ignore_ttl,
        "timeout": zone.timeout,
        "max_update_percent": zone.max_update_percent,
        "max_delete_percent": zone.max_delete_percent,
        "guard_min_records": zone.guard_min_records,
        "full_check_hours": zone.full_check_hours,
    }


def zone_from_json(data: Mapping[str, Any]) -> ZoneConfig:
    return zone_from_mapping(data)


# -- plans -----------------------------------------------------------------------------------------


def _record_to_json(record: RecordSet) -> list[Any]:
    return [record.name, record.rtype, record.ttl, list(record.values)]


def _record_from_json(data: Sequence[Any]) -> RecordSet:
    name, rtype, ttl, values = data
    return RecordSet(str(name), str(rtype), int(ttl), tuple(str(v) for v in values))


def _change_to_json(change: Change) -> dict[str, Any]:
    document: dict[str, Any] = {"action": change.action.value, "record": _record_to_json(change.record)}
    # What is sent is nearly always the record itself: only the differences travel.
    if change.wire_name != change.record.name:
        document["wire_name"] = change.wire_name
    if change.values != change.record.values:
        document["values"] = list(change.values)
    if change.previous is not None:
        document["previous"] = _record_to_json(change.previous)
    return document


def _change_from_json(data: Mapping[str, Any]) -> Change:
    record = _record_from_json(data["record"])
    previous = data.get("previous")
    return Change(
        Action(data["action"]),
        record,
        str(data.get("wire_name", record.name)),
        tuple(str(v) for v in data["values"]) if "values" in data else record.values,
        _record_from_json(previous) if previous is not None else None,
    )


def plan_to_json(plan: Plan) -> dict[str, Any]:
    index = {id(change): position for position, change in enumerate(plan.changes)}
    return {
        "origin": plan.origin,
        "changes": [_change_to_json(change) for change in plan.changes],
        # A batch is the plan's own changes, in the order it sends them (not always the plan's order).
        "batches": [[index[id(change)] for change in batch.changes] for batch in plan.batches],
        "left_alone": [[item.side, item.name, item.rtype, item.reason] for item in plan.left_alone],
        "guards": [{"code": guard.code, "message": guard.message} for guard in plan.guards],
        "warnings": list(plan.warnings),
        "master_serial": plan.master_serial,
        "route53_serial": plan.route53_serial,
        "master_records": plan.master_records,
        "route53_records": plan.route53_records,
        "ttl_only_ignored": plan.ttl_only_ignored,
    }


def _optional_int(value: Any) -> int | None:
    return None if value is None else int(value)


def plan_from_json(data: Mapping[str, Any]) -> Plan:
    changes = tuple(_change_from_json(item) for item in data["changes"])
    return Plan(
        origin=str(data["origin"]),
        changes=changes,
        batches=tuple(
            Batch(number, tuple(changes[int(i)] for i in indexes))
            for number, indexes in enumerate(data["batches"], start=1)
        ),
        left_alone=tuple(LeftAlone(*(str(part) for part in item)) for item in data["left_alone"]),
        guards=tuple(Guard(str(item["code"]), str(item["message"])) for item in data["guards"]),
        warnings=tuple(str(item) for item in data["warnings"]),
        master_serial=_optional_int(data["master_serial"]),
        route53_serial=_optional_int(data["route53_serial"]),
        master_records=int(data["master_records"]),
        route53_records=int(data["route53_records"]),
        ttl_only_ignored=int(data.get("ttl_only_ignored", 0)),
    )


# -- previews, applies, progress -------------------------------------------------------------------


def _timings_to_json(timings: Timings) -> dict[str, float]:
    return dict(timings.__dict__)


def _timings_from_json(data: Mapping[str, Any]) -> Timings:
    return Timings(**{key: float(value) for key, value in data.items()})


def preview_to_json(preview: Preview) -> dict[str, Any]:
    return {
        "zone": zone_to_json(preview.zone),
        "plan": plan_to_json(preview.plan),
        "timings": _timings_to_json(preview.timings),
        "transfer_records": preview.transfer_records,
    }


def preview_from_json(data: Mapping[str, Any]) -> Preview:
    return Preview(
        zone_from_json(data["zone"]),
        plan_from_json(data["plan"]),
        _timings_from_json(data["timings"]),
        int(data.get("transfer_records", 0)),
    )


def outcome_to_json(outcome: BatchOutcome) -> dict[str, Any]:
    return outcome.to_json()


def outcome_from_json(data: Mapping[str, Any]) -> BatchOutcome:
    return BatchOutcome(
        number=int(data["number"]),
        changes=int(data["changes"]),
        status=str(data["status"]),
        change_id=str(data.get("change_id", "")),
        attempts=int(data.get("attempts", 0)),
        error=str(data.get("error", "")),
        code=str(data.get("code", "")),
    )


def result_to_json(result: ApplyResult) -> dict[str, Any]:
    return {
        "zone": zone_to_json(result.zone),
        "plan": plan_to_json(result.plan),
        "batches": [outcome_to_json(outcome) for outcome in result.batches],
        "refused": list(result.refused),
        "stale": result.stale,
        "forced": result.forced,
        "soa_serial_set": result.soa_serial_set,
        "notes": list(result.notes),
        "seconds": result.seconds,
    }


def result_from_json(data: Mapping[str, Any]) -> ApplyResult:
    return ApplyResult(
        zone=zone_from_json(data["zone"]),
        plan=plan_from_json(data["plan"]),
        batches=tuple(outcome_from_json(item) for item in data["batches"]),
        refused=tuple(str(item) for item in data["refused"]),
        stale=bool(data.get("stale", False)),  # absent from a mirror function deployed before it
        forced=bool(data["forced"]),
        soa_serial_set=bool(data["soa_serial_set"]),
        notes=tuple(str(item) for item in data["notes"]),
        seconds=float(data["seconds"]),
    )


def progress_to_json(progress: ApplyProgress) -> dict[str, Any]:
    return {
        "domain": progress.domain,
        "counts": dict(progress.counts),
        "batches": progress.batches,
        "outcomes": [outcome_to_json(outcome) for outcome in progress.outcomes],
    }


def progress_from_json(data: Mapping[str, Any]) -> ApplyProgress:
    return ApplyProgress(
        domain=str(data["domain"]),
        counts={str(key): int(value) for key, value in data["counts"].items()},
        batches=int(data["batches"]),
        outcomes=tuple(outcome_from_json(item) for item in data["outcomes"]),
    )


# -- status ----------------------------------------------------------------------------------------


def status_to_json(status: ZoneStatus) -> dict[str, Any]:
    return {
        "zone": zone_to_json(status.zone),
        "last_sync": status.last_sync,
        "master_serial": status.master_serial,
        "route53_serial": status.route53_serial,
        "master_error": status.master_error,
        "route53_error": status.route53_error,
        "last_check": status.last_check,
    }


def _optional_dict(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise TypeError(f"expected an object, got {type(value).__name__}")
    return value


def status_from_json(data: Mapping[str, Any]) -> ZoneStatus:
    return ZoneStatus(
        zone=zone_from_json(data["zone"]),
        last_sync=_optional_dict(data["last_sync"]),
        master_serial=_optional_int(data["master_serial"]),
        route53_serial=_optional_int(data["route53_serial"]),
        master_error=str(data.get("master_error") or ""),
        route53_error=str(data.get("route53_error") or ""),
        last_check=_optional_dict(data.get("last_check")),
    )


def statuses_from_json(data: Any) -> list[ZoneStatus]:
    return [status_from_json(item) for item in data]
