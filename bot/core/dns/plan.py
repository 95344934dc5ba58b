"""The diff between the master and Route 53, as immutable changes grouped into atomic batches.

Route 53 applies a ChangeResourceRecordSets request entirely or not at all, and limits one request to
1,000 ResourceRecord elements and 32,000 characters of values, where an UPSERT counts twice for both.
The planner groups all changes of one owner name into the same batch whenever they fit, ordered DELETE,
UPSERT, CREATE, so that replacing an A record by a CNAME (which may not coexist) happens in one atomic
step. The original mirror sent one request per change and stopped at the first error, leaving a zone
half-synchronised.

Guards (refuse unless forced): the master gave no records while the plan deletes some, its serial went
backwards (RFC 1982), or the plan updates or deletes more than a share (30% each by default) of the record
sets opsbot manages in Route 53. As in octoDNS, the two shares count only from a minimum zone size (10
record sets by default): in a zone of 3, deleting 2 stale records is 67% and no sign of a broken master.

``validate`` replays the batches against the Route 53 side as read, with Route 53's rules (CREATE only
of what is absent, DELETE of exactly what is there, no CNAME beside other data, limits, syntax). moto
accepts many requests AWS rejects, and applies half of a failing batch; validating before sending means
no batch is sent that AWS would refuse, whichever backend answers.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from bot.core.dns import names, serial
from bot.core.dns.records import (
    MAX_TTL,
    MAX_VALUE_CHARS,
    ROUTE53_TYPES,
    HostedRecord,
    HostedZone,
    LeftAlone,
    MasterZone,
    RecordSet,
    parse_route53_value,
)
from bot.errors import UsageError


class Action(StrEnum):
    DELETE = "DELETE"
    UPSERT = "UPSERT"
    CREATE = "CREATE"


_ACTION_ORDER = {Action.DELETE: 0, Action.UPSERT: 1, Action.CREATE: 2}


@dataclass(frozen=True)
class Limits:
    """Route 53's limits for one ChangeResourceRecordSets request."""

    max_elements: int = 1000
    max_chars: int = 32000


ROUTE53_LIMITS = Limits()


@dataclass(frozen=True, slots=True)
class Change:
    """One change as it will be sent: ``wire_name``, ``ttl`` and ``values`` go to Route 53 unchanged.

    ``record`` is the canonical record set the change concerns (the master's for CREATE and UPSERT,
    Route 53's for DELETE); ``previous`` is what an UPSERT replaces.
    """

    action: Action
    record: RecordSet
    wire_name: str
    values: tuple[str, ...]
    previous: RecordSet | None = None

    @property
    def name(self) -> str:
        return self.record.name

    @property
    def rtype(self) -> str:
        return self.record.rtype

    @property
    def ttl(self) -> int:
        return self.record.ttl

    @property
    def weight(self) -> int:
        return 2 if self.action is Action.UPSERT else 1

    @property
    def elements(self) -> int:
        return len(self.values) * self.weight

    @property
    def chars(self) -> int:
        return sum(len(value) for value in self.values) * self.weight

    def to_route53(self) -> dict[str, object]:
        """The Change element of a ChangeResourceRecordSets request."""
        return {
            "Action": self.action.value,
            "ResourceRecordSet": {
                "Name": self.wire_name,
                "Type": self.rtype,
                "TTL": self.ttl,
                "ResourceRecords": [{"Value": value} for value in self.values],
            },
        }

    def summary(self) -> str:
        """One line for previews: ``UPSERT www.example.com. 300 A 10.0.0.1, 10.0.0.2``."""
        values = ", ".join(self.record.values)
        line = f"{self.action.value} {self.name} {self.ttl} {self.rtype} {values}"
        if self.previous is not None and self.action is Action.UPSERT:
            before = ", ".join(self.previous.values)
            if self.previous.values == self.record.values:
                line += f" (TTL was {self.previous.ttl})"
            else:
                line += f" (was {self.previous.ttl} {before})"
        return line


@dataclass(frozen=True)
class Batch:
    number: int  # 1-based, the order of application
    changes: tuple[Change, ...]

    @property
    def elements(self) -> int:
        return sum(change.elements for change in self.changes)

    @property
    def chars(self) -> int:
        return sum(change.chars for change in self.changes)

    def to_route53(self, comment: str) -> dict[str, object]:
        return {"Comment": comment[:256], "Changes": [change.to_route53() for change in self.changes]}


@dataclass(frozen=True)
class Guard:
    """A reason to refuse the apply unless someone forces it."""

    code: str  # "empty", "serial-backwards", "too-many-updates", "too-many-deletes"
    message: str


@dataclass(frozen=True)
class Plan:
    origin: str
    changes: tuple[Change, ...]
    batches: tuple[Batch, ...]
    left_alone: tuple[LeftAlone, ...]
    guards: tuple[Guard, ...]
    warnings: tuple[str, ...]
    master_serial: int | None
    route53_serial: int | None
    master_records: int  # record sets on the master that we mirror
    route53_records: int  # record sets in Route 53 that we manage
    ttl_only_ignored: int = 0  # record sets that differ only in TTL, ignored because of IgnoreTTL

    @property
    def blocked(self) -> bool:
        return bool(self.guards)

    @property
    def empty(self) -> bool:
        return not self.changes

    def counts(self) -> dict[str, int]:
        counts = {action.value: 0 for action in Action}
        for change in self.changes:
            counts[change.action.value] += 1
        return counts

    def effects(self) -> dict[str, int]:
        """Record sets created, updated and deleted: a DELETE + CREATE of one name and type (an exact plan,
        or an UPSERT too large to send) is one update, as in the guards."""
        created = {change.record.key for change in self.changes if change.action is Action.CREATE}
        deleted = {change.record.key for change in self.changes if change.action is Action.DELETE}
        upserts = sum(1 for change in self.changes if change.action is Action.UPSERT)
        return {
            "created": len(created - deleted),
            "updated": upserts + len(created & deleted),
            "deleted": len(deleted - created),
        }

    def fingerprint(self) -> str:
        """A short digest of the changes: a preview's Apply button applies only the plan it showed."""
        digest = hashlib.sha256()
        for change in self.changes:
            digest.update(
                "\x1f".join(
                    [change.action.value, change.wire_name, change.rtype, str(change.ttl), *change.values]
                ).encode("utf-8", "surrogatepass")
            )
            digest.update(b"\x1e")
        return digest.hexdigest()[:16]


# -- planning --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Diff:
    changes: list[Change]
    left_alone: list[LeftAlone]  # master record sets not mirrored: conflicts, too large for Route 53
    warnings: list[str]
    ttl_only: int  # record sets that differ only in a TTL that is ignored


def _fits(changes: Sequence[Change], limits: Limits) -> bool:
    elements = sum(change.elements for change in changes)
    chars = sum(change.chars for change in changes)
    return elements <= limits.max_elements and chars <= limits.max_chars


def diff(
    master: MasterZone,
    hosted: HostedZone,
    *,
    ignore_ttl: bool = False,
    limits: Limits = ROUTE53_LIMITS,
    exact: bool = False,
) -> Diff:
    """The changes that make Route 53's managed records equal to the master's.

    A master record set Route 53 cannot take (a value over 4,000 characters, or too large for one
    request) is left alone with a warning, and Route 53 keeps what it holds at that name and type.

    ``exact``: every record set that changes is replaced by DELETE (as ``hosted`` says it is) + CREATE,
    never UPSERT. Route 53 checks a DELETE against what it holds, exactly, and refuses the whole request
    otherwise; an UPSERT overwrites whatever is there. So a plan made from a remembered ``hosted``
    (``bot.core.dns.snapshot``) proves, batch by batch, that nobody changed what it touches since.
    """
    hosted_by_key: dict[tuple[str, str], HostedRecord] = {item.record.key: item for item in hosted.records}
    occupied_names: dict[str, set[str]] = defaultdict(set)
    for name, rtype in hosted.occupied:
        occupied_names[name].add(rtype)
    changes: list[Change] = []
    left: list[LeftAlone] = []
    warnings: list[str] = []
    ttl_only = 0
    master_keys: set[tuple[str, str]] = set()
    for record in master.records:
        key = record.key
        master_keys.add(key)
        there = occupied_names.get(record.name, set())
        if there and (record.rtype in there or record.rtype == "CNAME" or "CNAME" in there):
            what = ", ".join(sorted(there))
            reason = f"Route 53 holds {what} records here that opsbot does not manage"
            left.append(LeftAlone("master", record.name, record.rtype, reason))
            continue
        current = hosted_by_key.get(key)
        wire_name = names.encode_route53(record.name)
        if current is not None and current.record.values == record.values:
            if current.record.ttl == record.ttl:
                continue
            if ignore_ttl:
                ttl_only += 1
                continue
        longest = max(len(value) for value in record.values)
        if longest > MAX_VALUE_CHARS:
            reason = f"a value of {longest:,} characters; Route 53 takes at most {MAX_VALUE_CHARS:,}"
        else:
            proposed = [
                Change(Action.CREATE, record, wire_name, record.values)
                if current is None
                else Change(Action.UPSERT, record, wire_name, record.values, previous=current.record)
            ]
            if current is not None and (exact or not _fits(proposed, limits)):
                # An UPSERT counts twice; deleting the old record set and creating the new one in the
                # same (atomic) request counts each value once.
                proposed = [
                    Change(Action.DELETE, current.record, current.wire_name, current.wire_values),
                    Change(Action.CREATE, record, wire_name, record.values),
                ]
            if _fits(proposed, limits):
                changes.extend(proposed)
                continue
            reason = "too large for one Route 53 request"
        left.append(LeftAlone("master", record.name, record.rtype, reason))
        kept = "keeps its own version" if current is not None else "has none"
        warnings.append(f"{record.name} {record.rtype} is not mirrored ({reason}); Route 53 {kept}.")
    # A master record set that is not mirrored (a value that cannot be read, say) is no reason to delete
    # what Route 53 holds at that name and type.
    not_mirrored = {(item.name, item.rtype): item.reason for item in master.left_alone}
    for item in hosted.records:
        key = item.record.key
        if key in master_keys:
            continue
        if key in not_mirrored:
            warnings.append(
                f"{key[0]} {key[1]} is not mirrored ({not_mirrored[key]}); Route 53 keeps its own version."
            )
            continue
        changes.append(Change(Action.DELETE, item.record, item.wire_name, item.wire_values))
    return Diff(changes, left, warnings, ttl_only)


def order(changes: Iterable[Change]) -> list[list[Change]]:
    """Changes grouped by owner name (zone order), each group DELETE, UPSERT, CREATE."""
    groups: dict[str, list[Change]] = defaultdict(list)
    for change in changes:
        groups[change.name].append(change)
    ordered: list[list[Change]] = []
    for name in sorted(groups, key=names.sort_key):
        ordered.append(sorted(groups[name], key=lambda c: (_ACTION_ORDER[c.action], c.rtype)))
    return ordered


def batch(groups: Sequence[Sequence[Change]], limits: Limits = ROUTE53_LIMITS) -> list[Batch]:
    """Pack the groups into as few requests as the limits allow.

    A name's group stays whole when it fits in one request; otherwise it is split, but never the changes
    of one name and type (a DELETE and CREATE that replace a record set must be one atomic step).
    """
    batches: list[list[Change]] = []
    current: list[Change] = []
    elements = chars = 0
    for group in groups:
        parts = [list(group)] if _fits(group, limits) else _by_key(group)
        for part in parts:
            part_elements = sum(change.elements for change in part)
            part_chars = sum(change.chars for change in part)
            if current and (
                elements + part_elements > limits.max_elements or chars + part_chars > limits.max_chars
            ):
                batches.append(current)
                current, elements, chars = [], 0, 0
            current.extend(part)
            elements += part_elements
            chars += part_chars
    if current:
        batches.append(current)
    return [Batch(number, tuple(changes)) for number, changes in enumerate(batches, start=1)]


def _by_key(group: Sequence[Change]) -> list[list[Change]]:
    """The changes of one name split by type, in the order the types first appear."""
    parts: dict[tuple[str, str], list[Change]] = {}
    for change in group:
        parts.setdefault(change.record.key, []).append(change)
    return list(parts.values())


@dataclass(frozen=True)
class Thresholds:
    """When a plan is too large to apply unforced: more than ``max_update_percent`` of the managed record
    sets updated, or more than ``max_delete_percent`` deleted, in a zone of at least ``min_records``
    managed record sets (octoDNS: 30%, 30%, 10)."""

    max_update_percent: float = 30.0
    max_delete_percent: float = 30.0
    min_records: int = 10


DEFAULT_THRESHOLDS = Thresholds()


def guards(
    master: MasterZone,
    hosted: HostedZone,
    changes: Sequence[Change],
    *,
    last_serial: int | None,
    thresholds: Thresholds = DEFAULT_THRESHOLDS,
) -> list[Guard]:
    found: list[Guard] = []
    origin = names.display(master.origin)
    # A record set deleted and created again in the same request (see diff) is replaced: an update, not a
    # removal (octoDNS counts it so too).
    created = {change.record.key for change in changes if change.action is Action.CREATE}
    deleted = {change.record.key for change in changes if change.action is Action.DELETE}
    deletes = len(deleted - created)
    updates = sum(1 for change in changes if change.action is Action.UPSERT) + len(deleted & created)
    # An empty master is only dangerous when the plan would delete what Route 53 holds: a zone with
    # nothing to mirror on either side is in sync, and refusing it would fail every scheduled run.
    if not master.records and deletes:
        found.append(
            Guard(
                "empty",
                f"The master returned no records for {origin} that opsbot can mirror (besides its SOA "
                f"and NS); applying would delete the {deletes} record set{'s' if deletes != 1 else ''} "
                "opsbot manages in the Route 53 zone.",
            )
        )
    if last_serial is not None and master.serial is not None:
        order_ = serial.compare(master.serial, last_serial)
        if order_ is serial.Order.BEFORE:
            found.append(
                Guard(
                    "serial-backwards",
                    f"The master's serial {master.serial} is older than {last_serial}, "
                    "the serial of the last sync.",
                )
            )
        elif order_ is serial.Order.UNDEFINED:
            found.append(
                Guard(
                    "serial-backwards",
                    f"The master's serial {master.serial} cannot be compared with {last_serial} "
                    "(RFC 1982: they are exactly 2^31 apart).",
                )
            )
    managed = len(hosted.records)
    if managed and managed >= thresholds.min_records:
        for code, verb, count, limit in (
            ("too-many-updates", "updates", updates, thresholds.max_update_percent),
            ("too-many-deletes", "deletes", deletes, thresholds.max_delete_percent),
        ):
            if count and count * 100 > limit * managed:
                found.append(
                    Guard(
                        code,
                        f"The plan {verb} {count} of the {managed} record sets in Route 53 "
                        f"({count * 100 / managed:.0f}%, above the {limit:g}% allowed unforced in a zone of "
                        f"{thresholds.min_records} record sets or more).",
                    )
                )
    return found


def make_plan(
    master: MasterZone,
    hosted: HostedZone,
    *,
    ignore_ttl: bool = False,
    last_serial: int | None = None,
    thresholds: Thresholds = DEFAULT_THRESHOLDS,
    limits: Limits = ROUTE53_LIMITS,
    exact: bool = False,
) -> Plan:
    """The plan from ``master`` to ``hosted``; ``exact`` as in ``diff``."""
    if master.origin != hosted.origin:
        raise UsageError(
            f"The master zone {names.display(master.origin)} and the hosted zone "
            f"{names.display(hosted.origin)} differ."
        )
    found_diff = diff(master, hosted, ignore_ttl=ignore_ttl, limits=limits, exact=exact)
    groups = order(found_diff.changes)
    batches = batch(groups, limits)
    ordered = tuple(change for group in groups for change in group)
    found = guards(master, hosted, ordered, last_serial=last_serial, thresholds=thresholds)
    return Plan(
        origin=master.origin,
        changes=ordered,
        batches=tuple(batches),
        left_alone=(*master.left_alone, *found_diff.left_alone, *hosted.left_alone),
        guards=tuple(found),
        warnings=(*hosted.warnings, *found_diff.warnings),
        master_serial=master.serial,
        route53_serial=hosted.serial,
        master_records=len(master.records),
        route53_records=len(hosted.records),
        ttl_only_ignored=found_diff.ttl_only,
    )


# -- client-side validation ------------------------------------------------------------------------


def validate(hosted: HostedZone, batches: Sequence[Batch], limits: Limits = ROUTE53_LIMITS) -> list[str]:
    """What AWS would reject in these batches, applied in order to ``hosted``; empty when all is well."""
    problems: list[str] = []
    # key -> (ttl, canonical values) of what Route 53 holds, as the batches go.
    state: dict[tuple[str, str], tuple[int, tuple[str, ...]]] = {
        item.record.key: (item.record.ttl, item.record.values) for item in hosted.records
    }
    occupied = set(hosted.occupied)
    types_at: dict[str, set[str]] = defaultdict(set)
    for name, rtype in (*state, *occupied):
        types_at[name].add(rtype)
    for number, current in enumerate(batches, start=1):
        where = f"batch {number}"
        if current.elements > limits.max_elements:
            problems.append(
                f"{where} holds {current.elements} record elements, more than {limits.max_elements}."
            )
        if current.chars > limits.max_chars:
            problems.append(
                f"{where} holds {current.chars} characters of values, more than {limits.max_chars}."
            )
        touched: dict[tuple[str, str], Action] = {}
        for change in current.changes:
            problems.extend(_check_change(change, state, occupied, touched, hosted.origin, where))
            if change.record.key in state or change.record.key in occupied:
                types_at[change.name].add(change.rtype)
            else:
                types_at[change.name].discard(change.rtype)
        # Route 53 checks the outcome of the whole request, so a DELETE A + CREATE CNAME pair is fine.
        for name in {change.name for change in current.changes}:
            here = types_at[name]
            if "CNAME" in here and len(here) > 1:
                problems.append(
                    f"{where}: {name} would hold a CNAME beside other records ({', '.join(sorted(here))})."
                )
    return problems


def _check_change(
    change: Change,
    state: dict[tuple[str, str], tuple[int, tuple[str, ...]]],
    occupied: set[tuple[str, str]],
    touched: dict[tuple[str, str], Action],
    origin: str,
    where: str,
) -> list[str]:
    problems: list[str] = []
    what = f"{where}: {change.action.value} {change.name} {change.rtype}"
    key = change.record.key
    try:
        wire_name = names.route53_to_canonical(change.wire_name)
    except UsageError as error:
        return [f"{what}: the name is not valid ({error.message})."]
    if wire_name != change.name:
        problems.append(f"{what}: the name sent ({change.wire_name}) is not the record's name.")
    if not names.is_within(change.name, origin):
        problems.append(f"{what}: the name is outside the zone {origin}.")
    if change.rtype not in ROUTE53_TYPES or change.rtype == "SOA":
        problems.append(f"{what}: opsbot does not change {change.rtype} records.")
    if change.name == origin and change.rtype == "NS":
        problems.append(f"{what}: the apex NS records belong to Route 53.")
    if not 0 <= change.ttl <= MAX_TTL:
        problems.append(f"{what}: TTL {change.ttl} is out of range.")
    if not change.values:
        problems.append(f"{what}: no values.")
    canonical: list[str] = []
    for value in change.values:
        if len(value) > MAX_VALUE_CHARS:
            problems.append(f"{what}: a value is longer than {MAX_VALUE_CHARS} characters.")
        try:
            canonical.append(parse_route53_value(change.rtype, value))
        except UsageError as error:
            problems.append(f"{what}: {error.message}")
    if change.action is not Action.DELETE and len(set(canonical)) != len(canonical):
        problems.append(f"{what}: duplicate values.")
    values = tuple(sorted(set(canonical)))
    previous_action = touched.get(key)
    if previous_action is not None and not (
        previous_action is Action.DELETE and change.action is Action.CREATE
    ):
        problems.append(f"{what}: the batch already changes this record set ({previous_action.value}).")
    touched[key] = change.action
    if key in occupied:
        problems.append(f"{what}: Route 53 holds a record set here that opsbot does not manage.")
        return problems
    present = state.get(key)
    if change.action is Action.CREATE:
        if present is not None:
            problems.append(f"{what}: it already exists.")
        state[key] = (change.ttl, values)
    elif change.action is Action.UPSERT:
        state[key] = (change.ttl, values)
    else:
        if present is None:
            problems.append(f"{what}: it does not exist.")
        elif present != (change.ttl, values):
            problems.append(f"{what}: the TTL or values differ from what Route 53 holds.")
        state.pop(key, None)
    return problems
