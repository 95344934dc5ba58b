"""Snapshots (``bot.core.dns.snapshot``) kept in the state table, beside the zone's sync state.

A DynamoDB item holds at most 400 KB, and a snapshot of 50,000 record sets is about 0.5 MB compressed,
so it is cut into chunks of ``CHUNK_BYTES``. They live in the zone's own ``sync#dns:...`` partition, the
only one the mirror function's role may touch (template.yaml, DnsSyncState: GetItem, PutItem,
DeleteItem), so keeping them needs no bucket and no new permission.

Items, all under ``sync#<state key>``:
    snapshot                   the manifest: generation, chunk count, SHA-256, size, serial
    snapshot#<gen>#<nnn>       the chunks of one generation

A new snapshot is written as a new generation, chunks first, then the manifest that names it, then the
old generation's chunks are deleted: a reader sees the old snapshot or the new one, never a mix (and the
digest would refuse a mix anyway). Every item expires after ``TTL_SECONDS``, so chunks left behind by an
interrupted write go by themselves; a zone that has not been synced for that long is read in full once.
Everything here is best effort for the caller: a missing or unreadable snapshot means a full read.
"""

from __future__ import annotations

import logging
import secrets
from typing import Any

from bot.aws.state import StateTable
from bot.core.dns.config import ZoneConfig
from bot.core.dns.records import HostedZone
from bot.core.dns.snapshot import SnapshotError, decode, digest, encode
from bot.errors import OpsbotError

CHUNK_BYTES = 350_000  # under DynamoDB's 400 KB per item, with room for the key and attribute names
TTL_SECONDS = 35 * 24 * 3600
MANIFEST = "snapshot"

log = logging.getLogger("opsbot.dns")


def snapshot_pk(zone: ZoneConfig) -> str:
    return f"sync#{zone.state_key}"


def chunk_sk(generation: str, number: int) -> str:
    return f"{MANIFEST}#{generation}#{number:03d}"


def _bytes(value: Any) -> bytes:
    # boto3 reads binary attributes back as boto3.dynamodb.types.Binary.
    raw = getattr(value, "value", value)
    if not isinstance(raw, bytes | bytearray):
        raise SnapshotError("a chunk holds no bytes")
    return bytes(raw)


def load(state: StateTable, zone: ZoneConfig) -> tuple[HostedZone | None, str]:
    """The remembered hosted zone, or None and why not (to log and to report)."""
    pk = snapshot_pk(zone)
    manifest = state.get(pk, MANIFEST)
    if manifest is None:
        return None, "no snapshot of the last sync is kept"
    try:
        generation, count = str(manifest["generation"]), int(manifest["chunks"])
        parts = []
        for number in range(count):
            item = state.get(pk, chunk_sk(generation, number))
            if item is None:
                raise SnapshotError(f"chunk {number + 1} of {count} is missing")
            parts.append(_bytes(item.get("data")))
        hosted = decode(
            b"".join(parts), origin=zone.domain, zone_id=zone.zone_id, expected_digest=str(manifest["sha256"])
        )
    except (SnapshotError, KeyError, TypeError, ValueError) as error:
        return None, f"the snapshot of the last sync cannot be used: {error}"
    return hosted, ""


def save(state: StateTable, zone: ZoneConfig, hosted: HostedZone, *, serial: int | None) -> bool:
    """Keep ``hosted`` as what Route 53 holds; False when the same snapshot is kept already (not rewritten)."""
    data = encode(hosted, zone.zone_id)
    sha = digest(data)
    pk = snapshot_pk(zone)
    old = state.get(pk, MANIFEST)
    if old is not None and old.get("sha256") == sha:
        return False
    generation = secrets.token_hex(6)
    chunks = [data[start : start + CHUNK_BYTES] for start in range(0, len(data), CHUNK_BYTES)]
    for number, chunk in enumerate(chunks):
        state.put(pk, chunk_sk(generation, number), {"data": chunk}, ttl_seconds=TTL_SECONDS)
    manifest = {
        "generation": generation,
        "chunks": len(chunks),
        "sha256": sha,
        "bytes": len(data),
        "records": len(hosted.records),
        "serial": serial,
    }
    state.put(pk, MANIFEST, {k: v for k, v in manifest.items() if v is not None}, ttl_seconds=TTL_SECONDS)
    if old is not None:
        _delete_chunks(state, pk, old)
    return True


def drop(state: StateTable, zone: ZoneConfig) -> None:
    """Forget the snapshot (Route 53 may now hold something else): the next sync reads in full."""
    pk = snapshot_pk(zone)
    old = state.get(pk, MANIFEST)
    if old is None:
        return
    state.delete(pk, MANIFEST)
    _delete_chunks(state, pk, old)


def _delete_chunks(state: StateTable, pk: str, manifest: dict[str, Any]) -> None:
    try:
        generation, count = str(manifest["generation"]), int(manifest["chunks"])
        for number in range(count):
            state.delete(pk, chunk_sk(generation, number))
    except (OpsbotError, KeyError, TypeError, ValueError) as error:  # they expire by themselves (TTL_SECONDS)
        log.warning("old DNS snapshot chunks under %s not deleted: %s", pk, error)
