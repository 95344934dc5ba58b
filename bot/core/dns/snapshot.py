"""What Route 53 holds for a zone after the last sync, remembered so that the next sync need not read it.

Reading a hosted zone costs one ListResourceRecordSets per 300 record sets (167 requests, about 34 s at
Route 53's 5 requests a second, for 50,000). After a sync opsbot knows what the zone holds without reading
it: what it read (or remembered) before, with the batches it applied and the SOA serial it set
(``after_batches``, ``with_serial``). The next sync plans against that (``make_plan(exact=True)``): every
changed record set is a DELETE of the remembered version + a CREATE, and Route 53 refuses the whole
request when a DELETE does not match what it holds exactly, or a CREATE meets a record set already there.
So a hand edit of anything the plan touches is caught by Route 53 itself, with nothing applied; the
caller then reads the zone in full and plans again. Edits of record sets the plan does not touch wait for
the periodic full check (``ZoneConfig.full_check_hours``).

A snapshot is bytes: a magic line, then zlib-compressed JSON. Canonical forms are stored as they are (not
parsed again on load, which keeps loading 50,000 record sets fast); the caller stores a SHA-256 of the
bytes beside them and ``decode`` refuses anything that does not match, or describes another zone.
Pure: no I/O here (``bot.core.dns.incremental`` keeps snapshots in the state table).
"""

from __future__ import annotations

import hashlib
import json
import zlib
from collections.abc import Iterable
from dataclasses import replace
from typing import Any

from bot.core.dns import names
from bot.core.dns.plan import Action, Batch
from bot.core.dns.records import HostedRecord, HostedZone, LeftAlone, RecordSet, with_soa_serial

MAGIC = b"opsbot-dns-snapshot 1\n"


class SnapshotError(ValueError):
    """A snapshot that cannot be used: corrupt, of another format, or of another zone."""


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# -- what Route 53 holds after a sync --------------------------------------------------------------


def after_batches(hosted: HostedZone, batches: Iterable[Batch]) -> HostedZone:
    """``hosted`` with the batches applied, in order, as Route 53 applies them.

    A created record set is held as it was sent (Route 53 stores the values it is given), which is also
    how a later DELETE must repeat it.
    """
    held: dict[tuple[str, str], HostedRecord] = {item.record.key: item for item in hosted.records}
    for current in batches:
        for change in current.changes:
            if change.action is Action.DELETE:
                held.pop(change.record.key, None)
            else:
                held[change.record.key] = HostedRecord(change.record, change.wire_name, change.values)
    return replace(hosted, records=tuple(held.values()))


def with_serial(hosted: HostedZone, serial: int) -> HostedZone:
    """``hosted`` after its SOA serial was set (the SOA value repaired as ``with_soa_serial`` does)."""
    if hosted.soa is None:
        return hosted
    value = with_soa_serial(hosted.soa.wire_values[0], serial)
    record = RecordSet(hosted.soa.record.name, "SOA", hosted.soa.record.ttl, (value,))
    # Both of hosted_zone's warnings are about the SOA value, now written cleanly.
    return replace(
        hosted, soa=HostedRecord(record, hosted.soa.wire_name, (value,)), serial=serial, warnings=()
    )


# -- bytes -----------------------------------------------------------------------------------------


def encode(hosted: HostedZone, zone_id: str) -> bytes:
    """The snapshot of ``hosted`` (the hosted zone ``zone_id``) as bytes."""
    records: list[list[Any]] = []
    for item in sorted(hosted.records, key=lambda held: held.record.key):
        record = item.record
        row: list[Any] = [record.name, record.rtype, record.ttl, list(record.values)]
        # Most record sets are held exactly as opsbot writes them: the wire form only when it differs.
        wire_name = None if item.wire_name == names.encode_route53(record.name) else item.wire_name
        wire_values = None if item.wire_values == record.values else list(item.wire_values)
        if wire_name is not None or wire_values is not None:
            row.extend([wire_name, wire_values])
        records.append(row)
    soa = hosted.soa
    document = {
        "origin": hosted.origin,
        "zone_id": zone_id,
        "serial": hosted.serial,
        "soa": [soa.wire_name, soa.record.ttl, list(soa.wire_values)] if soa is not None else None,
        "records": records,
        "left_alone": [[i.side, i.name, i.rtype, i.reason] for i in hosted.left_alone],
        "occupied": sorted([list(key) for key in hosted.occupied]),
        "warnings": list(hosted.warnings),
    }
    text = json.dumps(document, separators=(",", ":"), ensure_ascii=False)
    return MAGIC + zlib.compress(text.encode("utf-8", "surrogatepass"), 6)


def decode(data: bytes, *, origin: str, zone_id: str, expected_digest: str) -> HostedZone:
    """The hosted zone a snapshot holds; SnapshotError when it is damaged or of another zone."""
    if digest(data) != expected_digest:
        raise SnapshotError("its digest does not match (damaged or incomplete)")
    if not data.startswith(MAGIC):
        raise SnapshotError("it is not in a format this version reads")
    try:
        document = json.loads(zlib.decompress(data[len(MAGIC) :]).decode("utf-8", "surrogatepass"))
        if document["origin"] != origin or document["zone_id"] != zone_id:
            raise SnapshotError(
                f"it is of {document['origin']} in hosted zone {document['zone_id']}, not {origin} in {zone_id}"
            )
        records = tuple(_held(row) for row in document["records"])
        soa = document["soa"]
        serial = document["serial"]
        return HostedZone(
            origin,
            records,
            tuple(LeftAlone(*map(str, item)) for item in document["left_alone"]),
            HostedRecord(
                RecordSet(origin, "SOA", int(soa[1]), tuple(map(str, soa[2]))), str(soa[0]), tuple(soa[2])
            )
            if soa is not None
            else None,
            int(serial) if serial is not None else None,
            frozenset((str(name), str(rtype)) for name, rtype in document["occupied"]),
            tuple(map(str, document["warnings"])),
        )
    except SnapshotError:
        raise
    except (ValueError, KeyError, TypeError, IndexError, zlib.error) as error:
        raise SnapshotError(f"it cannot be read ({type(error).__name__}: {error})") from None


def _held(row: list[Any]) -> HostedRecord:
    name, rtype, ttl, values = str(row[0]), str(row[1]), int(row[2]), tuple(map(str, row[3]))
    wire_name = str(row[4]) if len(row) > 4 and row[4] is not None else names.encode_route53(name)
    wire_values = tuple(map(str, row[5])) if len(row) > 5 and row[5] is not None else values
    return HostedRecord(RecordSet(name, rtype, ttl, values), wire_name, wire_values)
