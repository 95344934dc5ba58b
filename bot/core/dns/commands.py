"""What the CLI, the Slack listener and the scheduled mirror call: one function per operation.

- ``prepare``: transfer from the master, read Route 53 completely, plan (``/dns plan``, ``/dns resync``).
- ``prepare_incremental``: transfer, and plan against what the last sync left in Route 53 (its snapshot,
  ``bot.core.dns.snapshot``) instead of reading the zone: the scheduled run after a serial change.
- ``apply``: guards, client-side validation, then under the zone's apply lock: refuse a plan made before
  another run's apply (the sync state's ``version``), batches in order with backoff, stop at the first
  failure and say exactly which batches were applied; then the SOA serial and the sync state.
- ``mirror``: the scheduled run (it starts over once when another run applied while it planned); a cheap
  SOA query first, and nothing more while the serial is unchanged,
  unless a full check is due or the last one (``check_key``) left changes pending. A changed serial is
  synced incrementally when a snapshot is kept and no full check is due; when Route 53 refuses such a
  batch (an edit made apart from the mirror), the run reads the zone in full and plans again.
- ``status``: configured zones, last sync, the serials on both sides (serial drift) and what the last
  full comparison found, weighed into one verdict per zone with its reason; no transfer.

Network and AWS access happen only here (through ``transfer`` and ``bot.aws.route53``); the results are
frozen dataclasses that ``bot.render.dns`` turns into Slack blocks or terminal text, and that ``wire``
turns into JSON and back for the trip from the DNS mirror function to the Slack function.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from bot.aws import route53
from bot.aws.state import StateTable
from bot.config import Settings, apply_log_level
from bot.core.dns import names, serial, snapshot, snapshot_store
from bot.core.dns.config import (
    ZoneConfig,
    find_zone,
    parse_master,
    parse_tsig_source,
    parse_zone_id,
    parse_zones,
)
from bot.core.dns.plan import Action, Batch, Plan, make_plan, validate
from bot.core.dns.records import HostedZone, MasterZone, hosted_zone, soa_serial, with_soa_serial
from bot.core.dns.transfer import TransferStats, query_serial, transfer
from bot.core.dns.tsig import TsigKey, load_key
from bot.errors import AwsError, OpsbotError, UsageError

log = logging.getLogger("opsbot.dns")

COMMENT = "opsbot DNS mirror"
LOCK_SECONDS = 900
# Route 53 creates every hosted zone's SOA with serial 1: it says nothing about an earlier sync.
ROUTE53_DEFAULT_SERIAL = 1


# -- configuration ---------------------------------------------------------------------------------


def configured_zones(settings: Settings) -> tuple[ZoneConfig, ...]:
    """The zones of the account the request is aimed at (``bot.aws.clients.use_target``): a zone's
    ``account``, or opsbot's own for a zone without one. Outside a target: every zone."""
    from bot.aws.clients import current_target

    zones = parse_zones(settings.dns_zones_json)
    target = current_target()
    if target is None:
        return zones
    if not target.role_arn:  # opsbot's own account (named or not)
        return tuple(z for z in zones if not z.account or z.account.lower() == target.account.lower())
    return tuple(z for z in zones if z.account.lower() == target.account.lower())


def zone_for(
    settings: Settings,
    domain: str,
    *,
    master: str | None = None,
    zone_id: str | None = None,
    tsig: str | None = None,
    ignore_ttl: bool | None = None,
) -> ZoneConfig:
    """The zone to work on: from ``OPSBOT_DNS_ZONES``, or entirely from the arguments (CLI ``--master``
    and ``--zone-id``); the other arguments override the configured values."""
    wanted = names.parse_domain(domain)
    wanted_id = parse_zone_id(zone_id) if zone_id is not None else None
    try:
        base = find_zone(configured_zones(settings), wanted, zone_id=wanted_id)
    except UsageError as error:
        if master is None or wanted_id is None:
            hint = "To work on a zone that is not configured, give both --master and --zone-id."
            raise UsageError(error.message, hint=hint) from None
        base = ZoneConfig(wanted, parse_master(master), wanted_id)
    if master is not None:
        base = base.with_changes(master=parse_master(master))
    if tsig is not None:
        base = base.with_changes(tsig=parse_tsig_source(tsig))
    if ignore_ttl is not None:
        base = base.with_changes(ignore_ttl=ignore_ttl)
    return base


# -- results ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Timings:
    soa_query: float = 0.0
    transfer: float = 0.0
    route53_read: float = 0.0
    plan: float = 0.0
    apply: float = 0.0

    def to_json(self) -> dict[str, float]:
        return {k: round(v, 3) for k, v in self.__dict__.items()}


@dataclass(frozen=True)
class Preview:
    """What a preview shows of a ``Prepared``: the plan and how long it took, without the hosted zone an
    apply needs. It is what the DNS mirror function sends back to be rendered (``wire``)."""

    zone: ZoneConfig
    plan: Plan
    timings: Timings
    transfer_records: int = 0  # resource records the transfer received


@dataclass(frozen=True)
class Prepared:
    """A transfer, the Route 53 side and the plan between them."""

    zone: ZoneConfig
    plan: Plan
    hosted: HostedZone
    last_sync: dict[str, Any] | None
    transfer_stats: TransferStats
    timings: Timings
    # Planned against the snapshot of the last sync (exact: DELETE + CREATE), not a read of Route 53.
    incremental: bool = False
    master: MasterZone | None = None  # the transfer, for a full plan after a refused incremental one

    @property
    def preview(self) -> Preview:
        return Preview(self.zone, self.plan, self.timings, self.transfer_stats.records)


@dataclass(frozen=True)
class BatchOutcome:
    number: int
    changes: int
    status: str  # "applied", "failed", "not attempted"
    change_id: str = ""
    attempts: int = 0
    error: str = ""
    code: str = ""  # the AWS error code of a failed batch (InvalidChangeBatch: Route 53 refused it)

    def to_json(self) -> dict[str, Any]:
        return {
            k: v for k, v in self.__dict__.items() if v not in ("", 0) or k in ("number", "changes", "status")
        }


@dataclass(frozen=True)
class ApplyResult:
    zone: ZoneConfig
    plan: Plan
    batches: tuple[BatchOutcome, ...] = ()
    refused: tuple[str, ...] = ()  # why nothing was sent (guards, validation, a concurrent run)
    forced: bool = False
    # Refused because another run applied changes after this plan was made (``_applied_since``).
    stale: bool = False
    soa_serial_set: bool = False
    notes: tuple[str, ...] = ()
    seconds: float = 0.0

    @property
    def applied(self) -> bool:
        """Every batch was applied (True for an empty plan that was not refused)."""
        return not self.refused and all(b.status == "applied" for b in self.batches)

    @property
    def outcome(self) -> str:
        """ "applied", "refused" (nothing was sent) or "failed" (a batch failed; those before it stand)."""
        return "applied" if self.applied else ("refused" if self.refused else "failed")

    @property
    def applied_batches(self) -> list[int]:
        return [b.number for b in self.batches if b.status == "applied"]

    @property
    def failed_batch(self) -> BatchOutcome | None:
        return next((b for b in self.batches if b.status == "failed"), None)

    @property
    def applied_changes(self) -> int:
        return sum(b.changes for b in self.batches if b.status == "applied")

    def applied_text(self) -> str:
        """Which batches were applied, for messages (batches run in order, so they are 1 to n)."""
        applied = self.applied_batches
        total = len(self.plan.batches)
        changes = f"{self.applied_changes} change{'s' if self.applied_changes != 1 else ''}"
        if not applied:
            return "no batch was applied"
        if len(applied) == 1:
            return f"batch 1 of {total} was applied ({changes})"
        return f"batches 1-{applied[-1]} of {total} were applied ({changes})"

    def to_json(self) -> dict[str, Any]:
        failed = self.failed_batch
        return {
            "applied": self.applied,
            "applied_batches": self.applied_batches,
            "applied_changes": self.applied_changes,
            "failed_batch": failed.number if failed else None,
            "error": failed.error if failed else None,
            "refused": list(self.refused),
            "stale": self.stale,
            "forced": self.forced,
            "soa_serial_set": self.soa_serial_set,
            "notes": list(self.notes),
            "batch_results": [b.to_json() for b in self.batches],
            "seconds": round(self.seconds, 3),
        }


@dataclass(frozen=True)
class ApplyProgress:
    """An apply under way: the batches done so far, for the message that shows it."""

    domain: str  # as shown: example.com
    counts: dict[str, int]  # the plan's changes per action
    batches: int  # in the plan
    outcomes: tuple[BatchOutcome, ...] = ()

    @property
    def number(self) -> int:
        """The last batch done (0 before the first)."""
        return self.outcomes[-1].number if self.outcomes else 0


@dataclass(frozen=True)
class MirrorResult:
    """One scheduled run (or one event of the original format)."""

    zone: ZoneConfig
    status: str  # "up-to-date", "no-changes", "synced", "refused", "failed"
    master_serial: int | None
    last_serial: int | None
    message: str
    transferred: bool = False
    soa_queries: int = 0
    plan: Plan | None = None
    result: ApplyResult | None = None
    timings: Timings = field(default_factory=Timings)
    # How Route 53's side was known: "full" (read), "incremental" (the snapshot of the last sync), "full
    # after refusal" (Route 53 refused an incremental batch, then read).
    mode: str = ""

    @property
    def ok(self) -> bool:
        return self.status in ("up-to-date", "no-changes", "synced")

    def to_json(self) -> dict[str, Any]:
        document: dict[str, Any] = {
            "domain": self.zone.name,
            "zone_id": self.zone.zone_id,
            "status": self.status,
            "message": self.message,
            "master_serial": self.master_serial,
            "last_serial": self.last_serial,
            "transferred": self.transferred,
            "mode": self.mode or None,
            "soa_queries": self.soa_queries,
            "changes": len(self.plan.changes) if self.plan else 0,
            "batches": len(self.plan.batches) if self.plan else 0,
            "timings": self.timings.to_json(),
        }
        if self.plan is not None:
            document["counts"] = self.plan.counts()
        if self.result is not None:
            document.update(self.result.to_json())
        return document


# -- prepare ---------------------------------------------------------------------------------------


def _key(zone: ZoneConfig, key: TsigKey | None) -> TsigKey | None:
    return key if key is not None else load_key(zone.tsig)


def read_route53(zone: ZoneConfig) -> HostedZone:
    """The hosted zone, complete, after checking that it is the zone we think it is."""
    info = route53.get_hosted_zone(zone.zone_id)
    if names.route53_to_canonical(info.name) != zone.domain:
        raise UsageError(
            f"The hosted zone {zone.zone_id} is {names.display(info.name)}, not {zone.name}.",
            hint="Fix zone_id in OPSBOT_DNS_ZONES (or --zone-id).",
        )
    return hosted_zone(zone.domain, route53.iter_record_sets(zone.zone_id))


def prepare(
    zone: ZoneConfig,
    *,
    state: StateTable | None = None,
    key: TsigKey | None = None,
    last_sync: dict[str, Any] | None = None,
    transferred_zone: tuple[MasterZone, TransferStats] | None = None,
) -> Prepared:
    """Transfer (unless ``transferred_zone`` is given), read Route 53, plan. Raises TransferError when the
    master does not deliver.

    With a state table, what the plan found is kept for ``/dns status`` (the only state a plan writes).
    """
    if last_sync is None and state is not None:
        last_sync = state.get_sync_state(zone.state_key)
    started = time.perf_counter()
    if transferred_zone is None:
        transferred_zone = transfer(zone.master, zone.domain, timeout=zone.timeout, key=_key(zone, key))
    master, stats = transferred_zone
    transferred = time.perf_counter()
    hosted = read_route53(zone)
    read = time.perf_counter()
    last_serial = _serial_of(last_sync)
    if last_serial is None and hosted.serial != ROUTE53_DEFAULT_SERIAL:
        # No sync recorded (a new state table): the serial an earlier sync left in Route 53's SOA.
        last_serial = hosted.serial
    plan = make_plan(
        master,
        hosted,
        ignore_ttl=zone.ignore_ttl,
        last_serial=last_serial,
        thresholds=zone.thresholds,
    )
    planned = time.perf_counter()
    _record_check(state, zone, plan, outcome="planned", pending=len(plan.changes), now=None)
    return Prepared(
        zone,
        plan,
        hosted,
        last_sync,
        stats,
        Timings(transfer=transferred - started, route53_read=read - transferred, plan=planned - read),
        master=master,
    )


def prepare_incremental(
    zone: ZoneConfig,
    *,
    state: StateTable,
    last_sync: dict[str, Any],
    key: TsigKey | None = None,
) -> tuple[Prepared | None, str]:
    """Transfer and plan against the snapshot of the last sync; Route 53 is asked only for its SOA.

    (None, why) when no usable snapshot is kept: the caller reads the zone in full. The plan is exact
    (``make_plan(exact=True)``): a hand edit of a record set it touches makes Route 53 refuse the batch.
    """
    try:
        remembered, why = snapshot_store.load(state, zone)
    except OpsbotError as error:
        return None, f"the snapshot of the last sync could not be read: {error.message}"
    if remembered is None:
        return None, why
    started = time.perf_counter()
    master, stats = transfer(zone.master, zone.domain, timeout=zone.timeout, key=_key(zone, key))
    transferred = time.perf_counter()
    # The SOA as Route 53 holds it now (one small request): the serial is set from it, never from memory.
    soa = route53.get_soa(zone.zone_id, zone.domain)
    current = hosted_zone(zone.domain, [soa] if soa is not None else [])
    hosted = replace(remembered, soa=current.soa, serial=current.serial, warnings=current.warnings)
    read = time.perf_counter()
    plan = make_plan(
        master,
        hosted,
        ignore_ttl=zone.ignore_ttl,
        last_serial=_serial_of(last_sync),
        thresholds=zone.thresholds,
        exact=True,
    )
    planned = time.perf_counter()
    timings = Timings(transfer=transferred - started, route53_read=read - transferred, plan=planned - read)
    return Prepared(zone, plan, hosted, last_sync, stats, timings, incremental=True, master=master), ""


def _serial_of(last_sync: dict[str, Any] | None) -> int | None:
    if not last_sync:
        return None
    value = last_sync.get("serial")
    return int(value) if isinstance(value, int | float) else None


# -- apply -----------------------------------------------------------------------------------------

ProgressCallback = Callable[[BatchOutcome, int], None]


def apply(
    prepared: Prepared,
    *,
    state: StateTable | None = None,
    force: bool = False,
    actor: str = "",
    on_progress: ProgressCallback | None = None,
    sleep: Callable[[float], None] = time.sleep,
    now: datetime | None = None,
) -> ApplyResult:
    """Apply the plan's batches in order; stop at the first failure. Never raises for a refused plan."""
    zone, plan = prepared.zone, prepared.plan
    started = time.perf_counter()
    refused: list[str] = []
    if plan.blocked and not force:
        refused.extend(guard.message for guard in plan.guards)
    problems = validate(prepared.hosted, plan.batches)
    if problems:
        refused.append(
            "Route 53 would reject the plan: " + "; ".join(problems[:5]) + (" …" if len(problems) > 5 else "")
        )
    if refused:
        result = ApplyResult(
            zone, plan, refused=tuple(refused), forced=force, seconds=time.perf_counter() - started
        )
        _record(state, prepared, result, actor, now)
        return result

    lock_key = f"dns-apply:{zone.state_key}"
    if state is not None:
        lock = state.acquire_lock(
            lock_key, {"actor": actor or "opsbot", "started": _iso(now)}, ttl_seconds=LOCK_SECONDS
        )
        if not lock.acquired:
            who = lock.holder.get("actor", "someone")
            return ApplyResult(
                zone,
                plan,
                refused=(
                    f"Another sync of {zone.name} is running "
                    f"(started by {who} at {lock.holder.get('started', '?')}).",
                ),
                forced=force,
            )
    try:
        version: int | None = None
        if state is not None:
            # The plan was made before the lock: another run may have applied since, and this plan would
            # then undo part of it (an older SOA serial, a snapshot without its changes). Forcing overrides
            # the plan's guards, not this: the plan itself is out of date.
            current = state.get_sync_state(zone.state_key)
            stale = _applied_since(zone, prepared.last_sync, current)
            if stale:
                log.warning("DNS %s: %s", zone.name, stale)
            else:
                version = _claim(state, zone, current, touches_route53=_touches_route53(prepared), now=now)
                if version is None:  # another run claimed the zone between our read and our claim
                    stale = _stale_message(zone, state.get_sync_state(zone.state_key))
            if stale:
                seconds = time.perf_counter() - started
                return ApplyResult(zone, plan, refused=(stale,), stale=True, forced=force, seconds=seconds)
        if state is not None and plan.batches:
            # From the first batch on, the snapshot may no longer be what Route 53 holds; a run that stops
            # half-way (a Lambda timeout) must leave none behind. _record keeps the new one.
            snapshot_store.drop(state, zone)
        outcomes = _apply_batches(zone, plan.batches, on_progress, sleep)
        notes: list[str] = []
        soa_set = False
        if all(o.status == "applied" for o in outcomes):
            soa_set, note = _set_soa_serial(zone, prepared.hosted, plan.master_serial, sleep)
            if note:
                notes.append(note)
        result = ApplyResult(
            zone,
            plan,
            batches=tuple(outcomes),
            forced=force,
            soa_serial_set=soa_set,
            notes=tuple(notes),
            seconds=time.perf_counter() - started,
        )
        try:
            _record(state, prepared, result, actor, now, version=None if version is None else version + 1)
        except OpsbotError as error:
            # The batches are in Route 53 whatever the state table says: report them, not this failure.
            log.error("DNS %s: applied, but the sync state was not recorded: %s", zone.name, error)
            note = f"The sync state was not recorded ({error.message}); `/dns status` may be out of date."
            result = replace(result, notes=(*result.notes, note))
        return result
    finally:
        if state is not None:
            try:
                state.release_lock(lock_key, owner=lock.owner)
            except OpsbotError as error:  # it expires by itself (LOCK_SECONDS)
                log.error("DNS %s: the apply lock was not released: %s", zone.name, error)


# -- which sync a plan was made after --------------------------------------------------------------
#
# The sync state carries a ``version``: every write that follows a change to Route 53 (or announces one)
# raises it. A plan remembers the sync state it was made after (``Prepared.last_sync``, read before
# Route 53 or the snapshot); under the apply lock, a different version (or, for a sync state written
# before versions existed, a different serial or sync time) means another run changed the zone since.
# Writes that change nothing in Route 53 (a refusal, a master that did not answer) keep the version, so
# they never make a plan stale; they are made on condition that the version is still the one they read,
# so none of them can put back the serial of an older sync (``_record_problem``).

VERSION = "version"
APPLYING = "applying_since"  # set by an apply's claim; its own record of the outcome replaces it


def _version_of(sync: dict[str, Any] | None) -> int:
    value = (sync or {}).get(VERSION)
    return int(value) if isinstance(value, int | float) else 0


def _mark(sync: dict[str, Any] | None) -> tuple[int, Any, int | None]:
    sync = sync or {}
    return _version_of(sync), sync.get("synced_at"), _serial_of(sync)


def _applied_since(zone: ZoneConfig, before: dict[str, Any] | None, current: dict[str, Any] | None) -> str:
    """Why a plan made after the sync state ``before`` must not be applied now that it is ``current``
    ("" when no other run changed the zone in between)."""
    return "" if _mark(before) == _mark(current) else _stale_message(zone, current)


def _stale_message(zone: ZoneConfig, current: dict[str, Any] | None) -> str:
    current = current or {}
    last_serial = _serial_of(current)
    if current.get(APPLYING):  # its claim is all it wrote: it stopped (a timeout) before recording
        what = f"it began at {_clock(current[APPLYING]) or '?'} and did not finish"
    elif current.get("status", "ok") != "ok":
        what = f"it stopped part-way at {_clock(current.get('failed_at')) or '?'}"
    elif last_serial is not None:
        what = f"serial {last_serial} at {_clock(current.get('synced_at')) or '?'}"
    else:
        what = "it recorded no serial"
    return (
        f"Another sync applied changes to {zone.name} since this plan was made ({what}); nothing was "
        f"applied. Run `/dns plan {zone.name}` again."
    )


def _clock(value: Any) -> str:
    """HH:MM UTC of an ISO time from the sync state ("" when there is none)."""
    if not isinstance(value, str):
        return ""
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        return ""
    if when.tzinfo is not None:
        when = when.astimezone(UTC)
    return when.strftime("%H:%M UTC")


def _touches_route53(prepared: Prepared) -> bool:
    plan, hosted = prepared.plan, prepared.hosted
    serial_to_set = (
        plan.master_serial is not None and hosted.soa is not None and hosted.serial != plan.master_serial
    )
    return bool(plan.batches) or serial_to_set


def _claim(
    state: StateTable,
    zone: ZoneConfig,
    current: dict[str, Any] | None,
    *,
    touches_route53: bool,
    now: datetime | None,
) -> int | None:
    """Raise the version before the first change to Route 53, so that a run that stops half-way (a Lambda
    timeout, with no sync recorded) still makes the plans made before it stale. The version to build on;
    None when another run wrote a new version between our read and this write.

    Best effort otherwise: a state table that refuses the write must not stop an apply it would not have
    stopped before (the sync state is recorded, or its failure reported, afterwards)."""
    version = _version_of(current)
    if not touches_route53:
        return version
    claimed = {
        **(current or {"domain": zone.name, "zone_id": zone.zone_id}),
        VERSION: version + 1,
        APPLYING: _iso(now),
    }
    try:
        if not state.put_sync_state_if(zone.state_key, claimed, field=VERSION, expected=version):
            return None
    except OpsbotError as error:
        log.warning("DNS %s: the start of this apply was not recorded: %s", zone.name, error)
        return version
    return version + 1


def _apply_batches(
    zone: ZoneConfig,
    batches: tuple[Batch, ...],
    on_progress: ProgressCallback | None,
    sleep: Callable[[float], None],
) -> list[BatchOutcome]:
    outcomes: list[BatchOutcome] = []
    total = len(batches)
    failed = False
    for current in batches:
        if failed:
            outcomes.append(BatchOutcome(current.number, len(current.changes), "not attempted"))
            continue
        try:
            sent = route53.change_batch(
                zone.zone_id, current.to_route53(f"{COMMENT}: batch {current.number} of {total}"), sleep=sleep
            )
            outcome = BatchOutcome(
                current.number, len(current.changes), "applied", sent.change_id, sent.attempts
            )
        except OpsbotError as error:
            failed = True
            code = error.code if isinstance(error, AwsError) else ""
            outcome = BatchOutcome(
                current.number, len(current.changes), "failed", error=error.message, code=code
            )
        outcomes.append(outcome)
        if on_progress is not None:
            on_progress(outcome, total)
    return outcomes


def _set_soa_serial(
    zone: ZoneConfig, hosted: HostedZone, master_serial: int | None, sleep: Callable[[float], None]
) -> tuple[bool, str]:
    """Make Route 53's SOA carry the master's serial, as the original did. (set?, note)."""
    if master_serial is None:
        return False, "The master sent no SOA serial; Route 53's SOA was left as it is."
    if hosted.soa is None:
        return False, "Route 53 returned no SOA record; its serial was not set."
    if hosted.serial == master_serial:
        return False, ""
    try:
        value = with_soa_serial(hosted.soa.wire_values[0], master_serial)
    except UsageError as error:
        return False, f"Route 53's SOA serial was not set: {error.message}"
    change = {
        "Comment": f"{COMMENT}: SOA serial {master_serial}",
        "Changes": [
            {
                "Action": "UPSERT",
                "ResourceRecordSet": {
                    "Name": hosted.soa.wire_name,
                    "Type": "SOA",
                    "TTL": max(0, hosted.soa.record.ttl),
                    "ResourceRecords": [{"Value": value}],
                },
            }
        ],
    }
    try:
        route53.change_batch(zone.zone_id, change, sleep=sleep)
    except OpsbotError as error:
        return False, f"The records were applied but setting Route 53's SOA serial failed: {error.message}"
    return True, ""


def _iso(now: datetime | None) -> str:
    return (now or datetime.now(UTC)).isoformat(timespec="seconds")


def _record(
    state: StateTable | None,
    prepared: Prepared,
    result: ApplyResult,
    actor: str,
    now: datetime | None,
    *,
    version: int | None = None,
) -> None:
    """Sync state: serial, time and counts after a success; the failure beside the last success otherwise.

    ``version``: the sync state's new version, after an apply that held the lock (None before it: nothing
    was sent, the version stays)."""
    if state is None:
        return
    zone, plan = prepared.zone, prepared.plan
    applied = set(result.applied_batches)
    pending = sum(len(b.changes) for b in plan.batches if b.number not in applied)
    outcome = "applied" if result.applied else ("refused" if result.refused else "failed")
    if not prepared.incremental:  # a comparison with the snapshot is no full comparison
        _record_check(state, zone, plan, outcome=outcome, pending=pending, now=now)
    if not result.applied:
        failed = result.failed_batch
        _record_problem(
            state,
            zone,
            status="refused" if result.refused else "failed",
            error="; ".join(result.refused) if result.refused else (failed.error if failed else ""),
            now=now,
            version=version,
            applied_batches=result.applied_batches,
            actor=actor or "opsbot",
        )
        return
    when = _iso(now)
    checked = when
    if prepared.incremental:
        # Only a full read checks the whole zone: the periodic full check counts from the last one.
        last = prepared.last_sync or {}
        checked = last.get("checked_at") or last.get("synced_at") or when
    record: dict[str, Any] = {
        "domain": zone.name,
        "zone_id": zone.zone_id,
        "serial": plan.master_serial,
        "synced_at": when,
        "checked_at": checked,
        "mode": "incremental" if prepared.incremental else "full",
        "counts": plan.counts(),
        "changes": len(plan.changes),
        "batches": len(plan.batches),
        "records": plan.master_records,
        "left_alone": len(plan.left_alone),
        "forced": result.forced,
        "actor": actor or "opsbot",
        "status": "ok",
        VERSION: version,
    }
    state.put_sync_state(zone.state_key, {k: v for k, v in record.items() if v is not None})
    _keep_snapshot(state, prepared, result)


def _keep_snapshot(state: StateTable, prepared: Prepared, result: ApplyResult) -> None:
    """After a complete apply: what Route 53 now holds, for the next sync to plan against. Best effort
    (logged): without it the next sync reads the zone in full."""
    zone, plan = prepared.zone, prepared.plan
    held = snapshot.after_batches(prepared.hosted, plan.batches)
    try:
        if result.soa_serial_set and plan.master_serial is not None:
            held = snapshot.with_serial(held, plan.master_serial)
        snapshot_store.save(state, zone, held, serial=plan.master_serial)
    except (OpsbotError, ValueError) as error:
        log.warning(
            "DNS %s: the snapshot of this sync was not kept (%s); the next sync reads in full",
            zone.name,
            error,
        )
        with contextlib.suppress(OpsbotError):
            snapshot_store.drop(state, zone)


def check_key(zone: ZoneConfig) -> str:
    """Where the last full comparison of a zone is kept: an item of its own, beside the sync state, so
    that recording a plan never races with an apply recording its sync."""
    return f"{zone.state_key}#check"


def _record_check(
    state: StateTable | None,
    zone: ZoneConfig,
    plan: Plan,
    *,
    outcome: str,
    pending: int,
    now: datetime | None,
) -> None:
    """What the last full comparison (transfer + whole hosted zone) found, for ``/dns status``.

    Serials alone cannot show edits made in Route 53 by hand; this can, as of its time. Best effort: a
    plan must not fail because its finding could not be kept.
    """
    if state is None:
        return
    record = {
        "domain": zone.name,
        "zone_id": zone.zone_id,
        "checked_at": _iso(now),
        "master_serial": plan.master_serial,
        "route53_serial": plan.route53_serial,
        "outcome": outcome,  # planned, applied, refused, failed
        "pending": pending,
        "counts": plan.counts(),
        "left_alone": len(plan.left_alone),
    }
    try:
        state.put_sync_state(check_key(zone), {k: v for k, v in record.items() if v is not None})
    except OpsbotError as problem:
        logging.getLogger("opsbot.dns").warning("could not record the check of %s: %s", zone.name, problem)


def _record_problem(
    state: StateTable | None,
    zone: ZoneConfig,
    *,
    status: str,
    error: str,
    now: datetime | None,
    version: int | None = None,
    **extra: Any,
) -> None:
    """Keep the last success (serial, time, counts) and add why this run did not sync.

    The last success is read again here, not taken from the start of the run: another run may have synced
    since, and its serial must stay. The write is made on condition that the version read is still there
    (``VERSION``), and read again when it is not. ``version``: a new one, when this run changed Route 53
    (some batches applied); otherwise it is kept.

    Best effort: when the state table itself is the problem, the run's result still says what happened.
    """
    if state is None:
        return
    try:
        for _ in range(3):
            current = state.get_sync_state(zone.state_key)
            record = {
                **(current or {}),
                "domain": zone.name,
                "zone_id": zone.zone_id,
                "status": status,
                "failed_at": _iso(now),
                "error": error,
                **extra,
            }
            if version is not None:  # this apply's own outcome: its claim is settled
                record[VERSION] = version
                record.pop(APPLYING, None)
            if state.put_sync_state_if(zone.state_key, record, field=VERSION, expected=_version_of(current)):
                return
        log.warning("could not record the sync state of %s: it kept changing under this write", zone.name)
    except OpsbotError as problem:
        log.warning("could not record the sync state of %s: %s", zone.name, problem)


# -- the scheduled run -----------------------------------------------------------------------------


def _full_check_due(zone: ZoneConfig, last_sync: dict[str, Any], now: datetime) -> bool:
    if zone.full_check_hours <= 0:
        return True
    checked = last_sync.get("checked_at") or last_sync.get("synced_at")
    if not isinstance(checked, str):
        return True
    try:
        when = datetime.fromisoformat(checked)
    except ValueError:
        return True
    return (now - when).total_seconds() >= zone.full_check_hours * 3600


def _refused_by_route53(prepared: Prepared, result: ApplyResult) -> str:
    """Why an incremental apply must be redone from a full read ("" when it need not): Route 53 refused a
    batch as a whole (InvalidChangeBatch), which for an exact plan means the zone is not as remembered."""
    failed = result.failed_batch
    if not prepared.incremental or failed is None or failed.code != "InvalidChangeBatch":
        return ""
    return (
        f"Route 53 refused batch {failed.number} of the incremental sync ({failed.error}): the zone was "
        "edited apart from the mirror since the last sync, so it was read in full and planned again."
    )


def _pending_changes(state: StateTable | None, zone: ZoneConfig) -> int:
    """Changes the last full comparison (``check_key``) left to apply: a ``/dns plan`` that found an edit
    made in Route 53 while the master's serial stood still. Every plan and every apply (refused, failed
    or not) rewrites that item, so the latest one is what is pending now."""
    check = state.get_sync_state(check_key(zone)) if state is not None else None
    value = (check or {}).get("pending")
    return int(value) if isinstance(value, int | float) and value > 0 else 0


def mirror(
    zone: ZoneConfig,
    *,
    state: StateTable | None,
    force: bool = False,
    actor: str = "schedule",
    sleep: Callable[[float], None] = time.sleep,
    now: datetime | None = None,
) -> MirrorResult:
    """Bring Route 53 up to the master, doing as little as possible when nothing changed.

    Never raises an OpsbotError: a failure (master, TSIG key, Route 53, state table) is the result, so
    that one zone's problem does not stop a run over several zones.

    When another run (``/dns resync``, the CLI) applied changes while this one planned, its plan is out of
    date and ``apply`` refuses it; nobody is there to run it again, so it starts over once, from the SOA
    query: the zone may well be up to date by then.
    """
    result = _mirror_once(zone, state=state, force=force, actor=actor, sleep=sleep, now=now)
    if result.result is None or not result.result.stale:
        return result
    log.info("DNS %s: %s Planning again.", zone.name, result.message)
    again = _mirror_once(zone, state=state, force=force, actor=actor, sleep=sleep, now=now)
    note = "Another sync applied changes while this run planned; it started over."
    return replace(
        again, message=f"{again.message} {note}", soa_queries=result.soa_queries + again.soa_queries
    )


def _mirror_once(
    zone: ZoneConfig,
    *,
    state: StateTable | None,
    force: bool,
    actor: str,
    sleep: Callable[[float], None],
    now: datetime | None,
) -> MirrorResult:
    now = now or datetime.now(UTC)
    last_sync: dict[str, Any] | None = None
    master_serial: int | None = None
    soa_queries = 0

    def failed(error: OpsbotError, *, transferred: bool = False) -> MirrorResult:
        message = str(error)
        _record_problem(state, zone, status="failed", error=message, now=now)
        return MirrorResult(
            zone,
            "failed",
            master_serial,
            _serial_of(last_sync),
            message,
            transferred=transferred,
            soa_queries=soa_queries,
        )

    started = 0.0
    try:
        last_sync = state.get_sync_state(zone.state_key) if state is not None else None
        key = load_key(zone.tsig)
        soa_queries = 1
        started = time.perf_counter()
        master_serial = query_serial(zone.master, zone.domain, timeout=zone.timeout, key=key)
    except OpsbotError as error:
        return failed(error)
    soa_seconds = time.perf_counter() - started
    last_serial = _serial_of(last_sync)
    if last_serial is not None and not force and last_sync is not None:
        order = serial.compare(master_serial, last_serial)
        unchanged = (
            order is serial.Order.SAME
            and last_sync.get("status", "ok") == "ok"
            and not _full_check_due(zone, last_sync, now)
        )
        if unchanged:
            # A /dns plan may have found records edited in Route 53 at this very serial: put them back now
            # (with the usual guards) rather than at the next full check.
            try:
                unchanged = not _pending_changes(state, zone)
            except OpsbotError as error:
                return failed(error)
        if unchanged:
            return MirrorResult(
                zone,
                "up-to-date",
                master_serial,
                last_serial,
                f"{zone.name} is at serial {master_serial}, as at the last sync; nothing transferred.",
                soa_queries=1,
                timings=Timings(soa_query=soa_seconds),
            )
        if order in (serial.Order.BEFORE, serial.Order.UNDEFINED):
            message = (
                f"The master's serial {master_serial} for {zone.name} is older than {last_serial}, "
                "the serial of the last sync; nothing was changed. Fix the master, or resync with --force."
            )
            _record_problem(state, zone, status="refused", error=message, now=now)
            return MirrorResult(zone, "refused", master_serial, last_serial, message, soa_queries=1)
    prepared: Prepared | None = None
    transferred_zone: tuple[MasterZone, TransferStats] | None = None
    mode = "full"
    incremental = (
        state is not None
        and last_sync is not None
        and last_serial is not None
        and not force
        and last_sync.get("status", "ok") == "ok"
        and serial.compare(master_serial, last_serial) is serial.Order.AFTER
        and not _full_check_due(zone, last_sync, now)
    )
    try:
        if incremental and state is not None and last_sync is not None and not _pending_changes(state, zone):
            prepared, why = prepare_incremental(zone, state=state, last_sync=last_sync, key=key)
            if prepared is None:
                log.info("DNS %s: reading Route 53 in full: %s", zone.name, why)
            elif problems := validate(prepared.hosted, prepared.plan.batches):
                log.warning(
                    "DNS %s: the snapshot does not fit the plan (%s); reading in full", zone.name, problems[0]
                )
                transferred_zone = (prepared.master, prepared.transfer_stats) if prepared.master else None
                prepared = None
            else:
                mode = "incremental"
        if prepared is None:
            prepared = prepare(zone, key=key, last_sync=last_sync or {}, transferred_zone=transferred_zone)
    except OpsbotError as error:
        return failed(error)
    try:
        result = apply(prepared, state=state, force=force, actor=actor, sleep=sleep, now=now)
        refusal = _refused_by_route53(prepared, result)
        if refusal:
            # Route 53 checked a DELETE or CREATE against what it holds and refused: someone edited the zone
            # apart from the mirror since the last sync. Nothing of that batch was applied; the batches
            # before it were proven right. Read it all, plan again, apply (with the usual guards).
            log.warning("DNS %s: %s", zone.name, refusal)
            mode = "full after refusal"
            assert prepared.master is not None  # an incremental Prepared carries its transfer
            # The refused apply wrote a new version of the sync state: plan after that one, read now.
            current = state.get_sync_state(zone.state_key) if state is not None else last_sync
            prepared = prepare(
                zone,
                key=key,
                last_sync=current or {},
                transferred_zone=(prepared.master, prepared.transfer_stats),
            )
            result = apply(prepared, state=state, force=force, actor=actor, sleep=sleep, now=now)
            result = replace(result, notes=(refusal, *result.notes))
    except OpsbotError as error:  # the state table (lock, record) failed, or the full read after a refusal
        return failed(error, transferred=True)
    plan = prepared.plan
    timings = Timings(
        soa_query=soa_seconds,
        transfer=prepared.timings.transfer,
        route53_read=prepared.timings.route53_read,
        plan=prepared.timings.plan,
        apply=result.seconds,
    )

    def done(status: str, message: str) -> MirrorResult:
        return MirrorResult(
            zone,
            status,
            plan.master_serial,
            last_serial,
            message,
            transferred=True,
            soa_queries=1,
            plan=plan,
            result=result,
            timings=timings,
            mode=mode,
        )

    if result.refused:
        return done("refused", " ".join(result.refused))
    failed_batch = result.failed_batch
    if failed_batch is not None:
        return done(
            "failed",
            f"Batch {failed_batch.number} of {len(plan.batches)} failed: {failed_batch.error} "
            f"Each batch is atomic: {result.applied_text()}; the rest were not attempted.",
        )
    if plan.empty:
        return done(
            "no-changes",
            f"{zone.name} matches the master at serial {plan.master_serial}; no change was needed.",
        )
    effects = plan.effects()
    batches = len(plan.batches)
    notes = "".join(f" {note}" for note in result.notes)
    return done(
        "synced",
        f"{zone.name} mirrored at serial {plan.master_serial}: {len(plan.changes)} changes "
        f"({effects['created']} created, {effects['updated']} updated, {effects['deleted']} deleted) "
        f"in {batches} batch{'es' if batches != 1 else ''}.{notes}",
    )


# -- status ----------------------------------------------------------------------------------------


class Verdict(StrEnum):
    """A zone's state in one word for ``/dns status``."""

    IN_SYNC = "in sync"
    CHANGES_PENDING = "changes pending"
    FAILED = "failed"
    NEVER_SYNCED = "never synced"


@dataclass(frozen=True)
class ZoneStatus:
    """A zone's status from cheap reads only: one SOA query each side and the state table.

    The serials show whether the master moved since the last sync, not whether Route 53 still holds what
    was synced: an edit made in Route 53 by hand leaves its SOA serial alone. So the status also weighs
    what the last full comparison (a plan, a preview, an apply, the schedule's full check) found, and
    when; only a new ``/dns plan`` can tell what changed since. All of it comes down to one ``verdict``
    (in sync, changes pending, failed, never synced) and the ``reason`` for it.
    """

    zone: ZoneConfig
    last_sync: dict[str, Any] | None
    master_serial: int | None
    route53_serial: int | None
    master_error: str = ""
    route53_error: str = ""
    last_check: dict[str, Any] | None = None

    @property
    def last_serial(self) -> int | None:
        return _serial_of(self.last_sync)

    @property
    def last_run_failed(self) -> bool:
        return bool(self.last_sync and self.last_sync.get("status") in ("failed", "refused"))

    @property
    def serial_drift(self) -> str:
        """The serials compared: "none" when the master, the last sync and Route 53's SOA agree."""
        if self.master_error:
            return "master unreachable"
        if self.last_sync and self.last_run_failed:
            return f"last sync {self.last_sync['status']}"
        if self.last_serial is None:
            return "never synced"
        assert self.master_serial is not None
        order = serial.compare(self.master_serial, self.last_serial)
        if order is serial.Order.AFTER:
            return "master ahead of the last sync"
        if order is not serial.Order.SAME:
            return "master serial went backwards"
        if self.route53_serial is not None and self.route53_serial != self.master_serial:
            return "Route 53 SOA serial differs"
        if self.route53_error:
            return "Route 53 unreadable"
        return "none"

    @property
    def pending(self) -> int | None:
        """Changes the last full comparison found still to apply (None: no comparison recorded)."""
        value = (self.last_check or {}).get("pending")
        return int(value) if isinstance(value, int | float) else None

    def _judged(self) -> tuple[Verdict, str]:
        """One verdict and the reason for it, from the most serious finding down."""
        last = self.last_sync or {}
        if self.last_run_failed:
            when = last.get("failed_at")
            at = f" at {when}" if when else ""
            error = str(last.get("error") or "").strip()
            return Verdict.FAILED, f"the last sync was {last['status']}{at}" + (
                f": {error}" if error else "."
            )
        if self.master_error:
            return Verdict.FAILED, f"the master {self.zone.master} did not answer: {self.master_error}"
        if self.route53_error:
            return Verdict.FAILED, f"Route 53 could not be read: {self.route53_error}"
        check = self.last_check or {}
        found = (
            f"; the last plan ({check.get('checked_at', '?')}) found {_changes(self.pending)} to make"
            if self.pending
            else ""
        )
        if self.last_serial is None:
            return Verdict.NEVER_SYNCED, f"no sync of {self.zone.name} is recorded{found}."
        assert self.master_serial is not None  # no master_error
        order = serial.compare(self.master_serial, self.last_serial)
        if order is serial.Order.AFTER:
            return (
                Verdict.CHANGES_PENDING,
                f"the master is at serial {self.master_serial}, the last sync at {self.last_serial}.",
            )
        if order is not serial.Order.SAME:
            return (
                Verdict.FAILED,
                f"the master's serial {self.master_serial} is older than {self.last_serial}, the serial of "
                "the last sync: the mirror refuses it unless forced.",
            )
        if self.pending:
            return (
                Verdict.CHANGES_PENDING,
                f"the last full check ({check.get('checked_at', '?')}) found {_changes(self.pending)} to "
                f"make at the master's serial {self.master_serial} (Route 53 was edited apart from the mirror).",
            )
        if self.route53_serial != self.master_serial:
            return (
                Verdict.CHANGES_PENDING,
                f"Route 53's SOA serial is {self.route53_serial}, the master's {self.master_serial}.",
            )
        checked = (
            f"; the last full check ({check.get('checked_at', '?')}) found nothing to change"
            if self.pending == 0
            else "; no full comparison is recorded"
        )
        return Verdict.IN_SYNC, f"Route 53 and the master are at serial {self.master_serial}{checked}."

    @property
    def verdict(self) -> Verdict:
        return self._judged()[0]

    @property
    def reason(self) -> str:
        return self._judged()[1]

    @property
    def in_sync(self) -> bool:
        return self.verdict is Verdict.IN_SYNC

    def to_json(self) -> dict[str, Any]:
        verdict, reason = self._judged()
        return {
            **self.zone.describe(),
            "verdict": verdict.value,
            "reason": reason,
            "in_sync": verdict is Verdict.IN_SYNC,
            "master_serial": self.master_serial,
            "route53_serial": self.route53_serial,
            "last_serial": self.last_serial,
            "last_sync": self.last_sync,
            "serial_drift": self.serial_drift,
            "last_check": self.last_check,
            "pending": self.pending,
            "master_error": self.master_error or None,
            "route53_error": self.route53_error or None,
        }


def _changes(count: int | None) -> str:
    return f"{count} change{'s' if count != 1 else ''}"


def zone_status(zone: ZoneConfig, *, state: StateTable | None) -> ZoneStatus:
    last_sync = state.get_sync_state(zone.state_key) if state is not None else None
    last_check = state.get_sync_state(check_key(zone)) if state is not None else None
    master_serial: int | None = None
    route53_serial: int | None = None
    master_error = route53_error = ""
    try:
        master_serial = query_serial(zone.master, zone.domain, timeout=zone.timeout, key=load_key(zone.tsig))
    except OpsbotError as error:
        master_error = error.message
    try:
        soa = route53.get_soa(zone.zone_id, zone.domain)
        values = (soa or {}).get("ResourceRecords") or [{}]
        route53_serial = soa_serial(str(values[0].get("Value", ""))) if soa else None
        if soa is None:
            route53_error = "no SOA record"
    except OpsbotError as error:
        route53_error = error.message
    return ZoneStatus(zone, last_sync, master_serial, route53_serial, master_error, route53_error, last_check)


def status(zones: tuple[ZoneConfig, ...], *, state: StateTable | None) -> list[ZoneStatus]:
    return [zone_status(zone, state=state) for zone in zones]


# -- the Lambda entry point -----------------------------------------------------------------------


class MirrorFailed(OpsbotError):
    """A scheduled run did not bring the zone in sync; raised so that Lambda counts an error."""


def _mirror_one(zone: ZoneConfig, state: StateTable, force: bool, logger: logging.Logger) -> MirrorResult:
    """``mirror`` for one zone of a scheduled run, where nothing may stop the zones after it.

    ``mirror`` turns every OpsbotError into its result; anything else is a bug (a record dnspython or
    opsbot cannot handle, say). It is logged with its traceback, recorded beside the zone's last sync for
    ``/dns status``, and reported as that zone's failure.
    """
    try:
        return mirror(zone, state=state, force=force)
    except Exception as error:  # a bug must cost one zone, not the run
        logger.exception("DNS mirror %s: unexpected error", zone.name)
        detail = str(error)[:500]
        message = f"Unexpected error while mirroring {zone.name} ({type(error).__name__}: {detail})."
        last_sync: dict[str, Any] | None = None
        with contextlib.suppress(OpsbotError):  # the state table may be the problem itself
            last_sync = state.get_sync_state(zone.state_key)
        _record_problem(state, zone, status="failed", error=message, now=None)
        return MirrorResult(zone, "failed", None, _serial_of(last_sync), message)


def mirror_handler(settings: Settings | None = None) -> Callable[[Any, Any], dict[str, Any]]:
    """The scheduled mirror function. Building it does no I/O; OPSBOT_DNS_ZONES is read at each run."""
    import json

    from bot.core.dns import worker
    from bot.core.dns.config import parse_event

    resolved = settings or Settings.from_env()
    logger = logging.getLogger("opsbot.dns")

    def handler(event: Any, context: Any) -> dict[str, Any]:
        apply_log_level(resolved)
        if isinstance(event, dict) and worker.REQUEST_KEY in event:
            return worker.handle_event(event, resolved)  # /dns work asked by the Slack function
        from bot.aws.clients import use_target
        from bot.aws.targets import for_function

        zones = parse_zones(resolved.dns_zones_json)
        try:
            requests = parse_event(event, zones)
        except UsageError:
            own = tuple(z for z in zones if not z.account)
            if own == zones:
                raise
            # A domain mirrored in several accounts, named without its zone_id: opsbot's own account's.
            requests = parse_event(event, own)
        state = StateTable(resolved.state_table)
        results = []
        for request in requests:
            # A zone hosted in another account is mirrored there, as opsbot-dns-mirror (bot.aws.targets).
            with use_target(for_function(resolved, "dns-mirror", account=request.zone.account)):
                result = _mirror_one(request.zone, state, request.force, logger)
            # One JSON line per zone: CloudWatch Logs Insights can chart serials, counts and timings.
            print(json.dumps({"dns_mirror": result.to_json()}, default=str))
            results.append(result)
        failed = [r for r in results if not r.ok]
        if failed:
            for result in failed:
                logger.error("DNS mirror %s: %s", result.zone.name, result.message)
            raise MirrorFailed(" ".join(f"{r.zone.name}: {r.message}" for r in failed))
        if len(results) == 1:
            return results[0].to_json()
        return {"zones": [r.to_json() for r in results]}

    return handler


__all__ = [
    "Action",
    "ApplyProgress",
    "ApplyResult",
    "BatchOutcome",
    "MirrorResult",
    "Prepared",
    "Preview",
    "Timings",
    "Verdict",
    "ZoneStatus",
    "apply",
    "configured_zones",
    "mirror",
    "mirror_handler",
    "prepare",
    "status",
    "zone_for",
    "zone_status",
]
