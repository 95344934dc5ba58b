"""What the doctor (``/ops doctor``) reads of one zone's mirror wiring, as JSON: the master's answer to
an SOA query over TCP, whether TSIG and the transfer are accepted, the hosted zone, the last sync.

It runs where the master is reachable (the DNS mirror function, through the worker's ``doctor`` op; or
this process), so it only gathers facts and classifies failures; the verdicts are judged on the asking
side (``bot.core.ops.checks.dns``). Read-only: the transfer is started and dropped after its first
message, and nothing is recorded.
"""

from __future__ import annotations

import socket
from typing import Any

import dns.exception
import dns.message
import dns.query
import dns.tsig
import dns.xfr

from bot.aws import route53
from bot.aws.errors import ACCESS_DENIED_CODES
from bot.aws.state import StateTable
from bot.core.dns import names
from bot.core.dns.config import ZoneConfig
from bot.core.dns.transfer import TransferError, _explain, query_serial, resolve
from bot.core.dns.tsig import TsigKey, load_key
from bot.errors import AwsError, OpsbotError

# Each DNS exchange of a doctor run: short, so that the checks of every area fit Slack's wait.
QUERY_TIMEOUT = 3.0

_TSIG_ERRORS = (
    dns.tsig.PeerError,
    dns.tsig.BadSignature,
    dns.tsig.BadKey,
    dns.tsig.BadAlgorithm,
    dns.tsig.BadTime,
    dns.message.UnknownTSIGKey,
)


def classify(error: TransferError) -> str:
    """``unreachable`` (no answer, refused connection, unresolvable), ``tsig`` (the key was not
    accepted), ``refused`` (the master answered and refused the transfer) or ``answer`` (an answer that
    does not serve the zone)."""
    cause = error.__cause__
    if isinstance(cause, _TSIG_ERRORS) or (
        isinstance(cause, dns.exception.FormError) and "TSIG" in str(cause)
    ):
        return "tsig"
    if isinstance(cause, dns.xfr.TransferError | EOFError | ConnectionResetError | BrokenPipeError):
        return "refused"
    if cause is None and error.message.startswith("Cannot resolve"):
        return "unreachable"
    if isinstance(cause, dns.exception.Timeout | socket.timeout | TimeoutError | OSError):
        return "unreachable"
    return "answer"


def _failure(kind: str, error: OpsbotError) -> dict[str, Any]:
    return {"kind": kind, "error": error.message, "hint": error.hint or ""}


def first_transfer_message(zone: ZoneConfig, key: TsigKey | None, timeout: float) -> None:
    """Start an AXFR and stop after its first message: the master allows the transfer (to this address,
    with this key). Raises TransferError as ``transfer`` does."""
    address = resolve(zone.master, timeout)
    messages = dns.query.xfr(
        address,
        zone.domain,
        port=zone.master.port,
        timeout=timeout,
        lifetime=timeout * 2,
        keyring=key.keyring() if key else None,  # type: ignore[arg-type]
        keyname=key.name if key else None,
        keyalgorithm=key.algorithm if key else dns.tsig.default_algorithm,
        relativize=False,
    )
    try:
        next(messages, None)
    except Exception as error:  # every failure becomes one sentence, as in a real transfer
        raise _explain(error, zone.master, zone.domain, key, timeout) from error
    finally:
        messages.close()


def _master(zone: ZoneConfig, timeout: float) -> dict[str, Any]:
    """The SOA query, the key and the transfer start."""
    found: dict[str, Any] = {"serial": None, "soa": {"kind": "ok"}, "tsig": {"kind": "none"}}
    key: TsigKey | None = None
    if zone.tsig:
        try:
            key = load_key(zone.tsig)
            found["tsig"] = {"kind": "ok", "name": key.name if key else ""}
        except OpsbotError as error:
            # Without the key the master can still be asked, unsigned, whether it answers at all.
            found["tsig"] = _failure("key", error)
    try:
        found["serial"] = query_serial(zone.master, zone.domain, timeout=timeout, key=key)
    except TransferError as error:
        kind = classify(error)
        if kind == "tsig":
            found["tsig"] = _failure("tsig", error)
        else:
            found["soa"] = _failure(kind, error)
        found["transfer"] = {"kind": "skipped"}
        return found
    if found["tsig"]["kind"] == "key":
        found["transfer"] = {"kind": "skipped"}
        return found
    try:
        first_transfer_message(zone, key, timeout)
        found["transfer"] = {"kind": "ok"}
    except TransferError as error:
        found["transfer"] = _failure(classify(error), error)
    return found


def _hosted_zone(zone: ZoneConfig) -> dict[str, Any]:
    try:
        info = route53.get_hosted_zone(zone.zone_id)
    except AwsError as error:
        if error.code in {"NoSuchHostedZone", "InvalidInput"}:
            return _failure("missing", error)
        return _failure("denied" if error.code in ACCESS_DENIED_CODES else "error", error)
    name = names.display(info.name)
    if names.route53_to_canonical(info.name) != zone.domain:
        return {"kind": "mismatch", "name": name, "error": f"the hosted zone is {name}", "hint": ""}
    return {"kind": "ok", "name": name}


def check_zone(
    zone: ZoneConfig, *, state: StateTable | None, timeout: float = QUERY_TIMEOUT
) -> dict[str, Any]:
    """Everything the doctor judges about one zone, as JSON."""
    document: dict[str, Any] = {**zone.describe()}
    document.update(_master(zone, min(timeout, zone.timeout)))
    document["hosted_zone"] = _hosted_zone(zone)
    document["last_sync"] = None
    if state is not None:
        try:
            document["last_sync"] = state.get_sync_state(zone.state_key)
        except OpsbotError as error:
            document["state_error"] = error.message
    return document
