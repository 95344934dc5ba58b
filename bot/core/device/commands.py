"""IoT device catalog: registration, race-free activation with guessing limits, show, list, deactivate.

The seed post's activation read the item, compared the code in the function and then updated without a
condition: two activations could both win, the code stayed valid after use (so whoever saw it could
re-register the device to themselves later), an unknown serial crashed the function (``data.Item`` was
undefined) and nothing limited guessing. Here activation is one conditional UpdateItem that also removes
the code, failures are told apart from the item DynamoDB returns with the failed condition, and attempts
are counted in the state table (per device and per user) before they are made, so that parallel guesses
cannot outrun the limits, with locks that expire.

Secrets: an activation code is a ``Secret`` from the moment it is parsed. No result, log line or audit
record holds it; the only code that leaves this module is the new one ``deactivate`` issues, wrapped in a
``Secret`` that prints as a mask and must be revealed explicitly to the one caller who asked for it. A
code typed in another argument's place is kept out too: activation repeats the client id it was given only
once the catalog has confirmed that the serial number has such a client id (swapped arguments would
otherwise show the code as "client id ...").
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import re
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from bot.aws import devices as catalog
from bot.aws.devices import UNREGISTERED_EMAIL, is_activated
from bot.aws.state import StateTable
from bot.config import Settings, apply_log_level
from bot.core.common.timeparse import format_time
from bot.errors import NotFoundError, UsageError, echo

log = logging.getLogger("opsbot.device")

MASK = "••••••••"


class Secret:
    """A value that prints as a mask; ``reveal()`` is the only way to read it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"Secret({MASK})"

    def __str__(self) -> str:
        return MASK

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and secrets.compare_digest(
            self._value.encode(), other._value.encode()
        )

    def __hash__(self) -> int:
        return hash(MASK)

    def to_json(self) -> str:
        return MASK


def new_activation_code() -> Secret:
    """A code in the seed post's format: ``AC-`` and 20 upper-case hex digits (80 random bits)."""
    return Secret("AC-" + secrets.token_hex(10).upper())


# -- input validation (pure) ------------------------------------------------------------------------

# Keys are typed by people (slash commands, the modal) and by device firmware: no whitespace or control
# characters, and short enough for DynamoDB's key limits (2048 bytes partition, 1024 sort).
_KEY = re.compile(r"[^\s\x00-\x1f\x7f]{1,256}")
_CODE = re.compile(r"[^\s\x00-\x1f\x7f]{8,256}")
_EMAIL = re.compile(r"[^@\s<>|]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9-]+)+")
# Slack turns a typed address into <mailto:a@b.c|a@b.c>.
_SLACK_MAILTO = re.compile(r"<mailto:([^|>]+)(?:\|[^>]*)?>")


def mask_email(address: str) -> str:
    """``jane.doe@example.com`` -> ``j•••@example.com``: enough to tell owners apart, not to write to them."""
    local, at, domain = address.partition("@")
    if not at:
        return MASK
    return f"{local[:1]}•••@{domain}"


def clean_email(text: str) -> str:
    """The address as typed, with Slack's ``<mailto:...|...>`` formatting removed."""
    text = text.strip()
    found = _SLACK_MAILTO.fullmatch(text)
    return (found.group(1) if found else text).strip()


def activation_field_errors(serial: str, client_id: str, code: str, email: str) -> dict[str, str]:
    """Per-field problems (empty when all four are acceptable). Messages never repeat the code."""
    errors: dict[str, str] = {}
    if not _KEY.fullmatch(serial.strip()):
        errors["serial"] = "Enter the serial number printed on the device, e.g. SN-D7F3C8947867."
    if not _KEY.fullmatch(client_id.strip()):
        errors["client_id"] = "Enter the device's client id, e.g. ID-91B2F06B3F05."
    if not _CODE.fullmatch(code.strip()):
        errors["code"] = (
            "Enter the activation code from the device's card (at least 8 characters, no spaces)."
        )
    address = clean_email(email)
    if len(address) > 254 or not _EMAIL.fullmatch(address):
        errors["email"] = "Enter the owner's e-mail address, e.g. owner@example.com."
    elif address.lower() == UNREGISTERED_EMAIL:
        errors["email"] = (
            f"{UNREGISTERED_EMAIL} is the placeholder for unregistered devices; enter a real address."
        )
    return errors


def _usage_from(errors: Mapping[str, str]) -> UsageError:
    return UsageError(" ".join(errors.values()))


# -- registration ----------------------------------------------------------------------------------

REGISTRATION_REQUIRED = ("serialNumber", "clientId", "activationCode")
REGISTRATION_OPTIONAL = ("device", "type", "endpoint", "certificateId")


@dataclass(frozen=True)
class Registration:
    serial: str
    client_id: str
    code: Secret = field(repr=False)
    optional: tuple[tuple[str, str], ...] = ()  # (attribute, value) for the optional attributes given
    ignored_activated: bool = (
        False  # the payload claimed "activated": "true" (a registration never activates)
    )

    def item(self, registered_at: str) -> dict[str, Any]:
        """The iotCatalog item, with the original's attribute names and value types."""
        return {
            "serialNumber": self.serial,
            "clientId": self.client_id,
            **dict(self.optional),
            catalog.CODE_ATTRIBUTE: self.code.reveal(),
            "activated": "false",
            "email": UNREGISTERED_EMAIL,
            "registeredAt": registered_at,
        }


def parse_registration(payload: Any) -> Registration:
    """The IoT rule's payload (``SELECT * FROM 'registration'``) -> Registration, or UsageError.

    Error messages name the field and never include the activation code.
    """
    if isinstance(payload, str | bytes):
        try:
            payload = json.loads(payload)
        except ValueError:
            raise UsageError("The registration payload is not JSON.") from None
    if not isinstance(payload, dict):
        raise UsageError(f"The registration payload must be a JSON object, not {type(payload).__name__}.")
    problems: list[str] = []
    for name in REGISTRATION_REQUIRED:
        value = payload.get(name)
        if value is None or (isinstance(value, str) and not value.strip()):
            problems.append(f"{name} is missing")
        elif not isinstance(value, str):
            problems.append(f"{name} must be a string, not {type(value).__name__}")
        elif name == "activationCode" and not _CODE.fullmatch(value):
            problems.append("activationCode must be 8 to 256 characters without spaces")
        elif name != "activationCode" and not _KEY.fullmatch(value):
            problems.append(f"{name} must be 1 to 256 characters without spaces (got {value[:40]!r})")
    optional: list[tuple[str, str]] = []
    for name in REGISTRATION_OPTIONAL:
        value = payload.get(name)
        if value is None:
            continue
        if not isinstance(value, str) or len(value) > 1024:
            problems.append(f"{name} must be a string of at most 1024 characters")
        elif value:
            optional.append((name, value))
    if problems:
        raise UsageError("Registration rejected: " + "; ".join(problems) + ".")
    return Registration(
        serial=payload["serialNumber"],
        client_id=payload["clientId"],
        code=Secret(payload["activationCode"]),
        optional=tuple(optional),
        ignored_activated=is_activated(payload.get("activated")),
    )


@dataclass(frozen=True)
class RegistrationResult:
    ok: bool
    reason: str  # registered | updated | already_activated | invalid
    message: str
    serial: str = ""
    client_id: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "reason": self.reason,
            "message": self.message,
            "serialNumber": self.serial,
            "clientId": self.client_id,
        }


def register(settings: Settings, payload: Any, *, now: datetime | None = None) -> RegistrationResult:
    """Store one registration. Invalid payloads and activated devices are logged and refused.

    AWS errors propagate: the IoT rule invokes the function asynchronously, so Lambda retries them.
    """
    try:
        registration = parse_registration(payload)
    except UsageError as error:
        log.error("%s Nothing was stored.", error.message)
        return RegistrationResult(False, "invalid", error.message)
    target = f"{registration.serial} / {registration.client_id}"
    if registration.ignored_activated:
        log.warning("Registration of %s said activated=true; stored as not activated.", target)
    at = format_time(now or datetime.now(UTC))
    written, previous = catalog.put_registration(settings.device_table, registration.item(at))
    if not written:
        message = f"Device {target} is already activated; the registration was ignored."
        log.warning(message)
        return RegistrationResult(
            False, "already_activated", message, registration.serial, registration.client_id
        )
    reason = "updated" if previous else "registered"
    message = f"Device {target} {'re-registered' if previous else 'registered'} in {settings.device_table}."
    log.info(message)
    return RegistrationResult(True, reason, message, registration.serial, registration.client_id)


def registration_handler(settings: Settings | None = None) -> Callable[[Any, Any], dict[str, Any]]:
    """The Lambda entry point behind the IoT rule; building it does no I/O."""
    resolved = settings or Settings.from_env()

    def handler(event: Any, context: Any) -> dict[str, Any]:
        apply_log_level(resolved)
        return register(resolved, event).to_json()

    return handler


# -- guessing limits -------------------------------------------------------------------------------


@dataclass(frozen=True)
class GuessingLimits:
    device_failures: int = 5  # wrong codes for one device ...
    device_window: int = 900  # ... within this many seconds ...
    device_lock: int = 900  # ... lock the device this long
    user_failures: int = 10  # wrong codes or unknown devices by one user (any devices) ...
    user_window: int = 3600  # ... within this many seconds ...
    user_lock: int = 900  # ... make that user wait this long


GUESSING_LIMITS = GuessingLimits()
BUSY_RETRY = 5  # seconds to wait when more attempts than the limit are in flight at once


def _device_key(serial: str, client_id: str) -> str:
    # The client id as typed may be the code typed in its place: the counters (stored, and shown in
    # botocore's debug log) name it by a digest. Whoever can read the state table can read the catalog's
    # codes anyway; the digest only keeps them out of places they are not meant to be.
    digest = hashlib.sha256(client_id.encode()).hexdigest()[:24]
    return f"device#{serial}#{digest}"


def _user_key(actor: str) -> str:
    return f"device-user#{actor}"


class _Guard:
    """The guessing limit of one key (a device or a user): a lock flag and counters of attempts.

    Attempts are counted before they are made (``reserve``): each count is one atomic ADD, so parallel
    attempts cannot all pass a check that only the later ones would fail, and an attempt counted beyond
    the limit is refused without reaching the catalog. Attempts that turn out not to be wrong codes are
    ``settle``d in a second counter: the failures are the attempts minus the settled ones.

    The counters are named after the end of the last lock (its "epoch"), so a lock that ends starts fresh
    counts without deleting any (a delete would race with attempts in flight). The lock flag therefore
    outlives the lock by two windows, the longest that the sliding counters of the older epoch are read.

    An activation reads what its guards need in two BatchGetItems (the flags, whose epochs name the
    counters; then the counters) rather than one GetItem per item.
    """

    def __init__(
        self, state: StateTable, key: str, window: int, now: int, flag: dict[str, Any] | None
    ) -> None:
        self.state, self.key, self.window, self.now = state, key, window, now
        flag = flag or {}
        self.until = int(flag.get("until", 0))
        self.locked_for = max(0, self.until - now)
        self.failures_at_lock = int(flag.get("failures", 0))
        self._counter = f"{key}@{self.until}"
        self._settled = f"{self._counter}#settled"

    @classmethod
    def read(cls, state: StateTable, key: str, window: int, now: int) -> _Guard:
        return cls(state, key, window, now, state.get_flag(cls.flag_key(key)))

    @staticmethod
    def flag_key(key: str) -> str:
        return f"lock#{key}"

    @staticmethod
    def flag_item(key: str) -> tuple[str, str]:
        return StateTable.flag_item_key(_Guard.flag_key(key))

    def counter_items(self) -> list[tuple[str, str]]:
        """What ``reserve`` needs read beforehand: the settled counts and the previous window's attempts."""
        settled_now, settled_before = StateTable.recent_keys(
            self._settled, window_seconds=self.window, now=self.now
        )
        _, attempts_before = StateTable.recent_keys(self._counter, window_seconds=self.window, now=self.now)
        return [settled_now, settled_before, attempts_before]

    def reserve(self, read: dict[tuple[str, str], dict[str, Any]]) -> int:
        """Count one attempt; return the unsettled attempts of the window, this one included.

        ``read`` holds ``counter_items``, read before this call: every attempt settled by then was added
        before ours, so the difference never misses an attempt in flight (it may count one that has just
        settled, which errs on the safe side).
        """
        settled_now, settled_before, attempts_before = self.counter_items()
        settled = StateTable.count_in(read, settled_now) + StateTable.count_in(read, settled_before)
        attempts = self.state.add_recent(
            self._counter,
            window_seconds=self.window,
            now=self.now,
            previous=StateTable.count_in(read, attempts_before),
        )
        return max(0, attempts - settled)

    def settle(self) -> None:
        self.state.add_only(self._settled, window_seconds=self.window, now=self.now)

    def failures(self, now: int) -> int:
        if self.locked_for:
            return self.failures_at_lock
        attempts = self.state.recent(self._counter, window_seconds=self.window, now=now)
        settled = self.state.recent(self._settled, window_seconds=self.window, now=now)
        return max(0, attempts - settled)

    def lock(self, seconds: int, failures: int) -> int:
        """Lock for ``seconds`` (0 ends a lock); either way, counting starts afresh when it ends.

        Returns the end of the lock (epoch seconds)."""
        until = int(time.time()) + seconds
        self.state.set_flag(
            self.flag_key(self.key),
            {"until": until, "failures": failures},
            ttl_seconds=seconds + 2 * self.window,
        )
        return until


def _minutes(seconds: int) -> str:
    minutes = max(1, (seconds + 59) // 60)
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _until(epoch: int) -> str:
    """When a lock ends, in UTC: the time of day, with the date when that is not today."""
    end, now = time.gmtime(epoch), time.gmtime(time.time())
    same_day = end[:3] == now[:3]
    return time.strftime("%H:%M UTC" if same_day else "%Y-%m-%d %H:%M UTC", end)


# -- activation ------------------------------------------------------------------------------------


class Reason(StrEnum):
    ACTIVATED = "activated"
    WRONG_CODE = "wrong_code"
    UNKNOWN_DEVICE = "unknown_device"
    ALREADY_ACTIVATED = "already_activated"
    LOCKED = "locked"


@dataclass(frozen=True)
class ActivationResult:
    ok: bool
    reason: Reason
    serial: str
    client_id: str  # empty unless the catalog confirmed it (it may be a code typed in the wrong place)
    message: str
    retry_after: int = 0  # seconds until another attempt is accepted (when locked)
    attempts_left: int | None = None  # wrong codes left before the device locks
    locked_until: int = 0  # epoch seconds when the lock this answer reports ends (0: no lock)

    def to_json(self) -> dict[str, Any]:
        document: dict[str, Any] = {
            "ok": self.ok,
            "reason": self.reason.value,
            "serialNumber": self.serial,
            "clientId": self.client_id or None,
            "message": self.message,
        }
        if self.retry_after:
            document["retryAfter"] = self.retry_after
        if self.attempts_left is not None:
            document["attemptsLeft"] = self.attempts_left
        if self.locked_until:
            document["lockedUntil"] = format_time(datetime.fromtimestamp(self.locked_until, UTC))
        return document

    @property
    def target(self) -> str:
        """The device as logs and audit records name it: the serial, and the client id once confirmed."""
        return f"{self.serial} {self.client_id}".strip()


def _audit(settings: Settings, actor: str, action: str, target: str, outcome: str, started: float) -> None:
    """One record per attempt outside Slack (the CLI); in Slack the command framework writes it.

    The arguments recorded are the device's keys, never the code. ``write_cli`` never raises.
    """
    from bot.security.audit import write_cli

    write_cli(
        settings,
        action=action,
        args=target,
        outcome=outcome,
        started=started,
        actor=actor,
    )


def _bookkeeping(step: Callable[[], Any], what: str, whom: str) -> None:
    """A state-table step after the catalog change is made: logged when it fails, never raised."""
    try:
        step()
    except Exception as error:
        log.warning("could not %s %s (the catalog change stands): %s", what, whom, error)


def activate(
    settings: Settings,
    serial: str,
    client_id: str,
    code: str | Secret,
    email: str,
    *,
    actor: str,
    limits: GuessingLimits = GUESSING_LIMITS,
    audit: bool = True,
) -> ActivationResult:
    """Activate a device for ``email`` if ``code`` is its current code. Raises UsageError on bad input."""
    secret = code if isinstance(code, Secret) else Secret(code)
    serial, client_id, address = serial.strip(), client_id.strip(), clean_email(email)
    errors = activation_field_errors(serial, client_id, secret.reveal(), address)
    if errors:
        raise _usage_from(errors)
    started = time.time()
    state = StateTable(settings.state_table)
    # For answers about a device the catalog knows: then the client id is one, not a misplaced code.
    target = f"{serial} / {client_id}"

    def finish(result: ActivationResult) -> ActivationResult:
        if audit:
            _audit(settings, actor, "device.activate", result.target, result.reason.value, started)
        log.info("Activation of %s by %s: %s", result.target, actor, result.reason.value)
        return result

    def locked(message: str, wait: int, *, known: bool = False, until: int = 0) -> ActivationResult:
        return finish(
            ActivationResult(
                False,
                Reason.LOCKED,
                serial,
                client_id if known else "",
                message,
                retry_after=wait,
                locked_until=until,
            )
        )

    now = int(time.time())
    user_key, device_key = _user_key(actor), _device_key(serial, client_id)
    flags = state.get_many([_Guard.flag_item(user_key), _Guard.flag_item(device_key)])
    user = _Guard(state, user_key, limits.user_window, now, flags.get(_Guard.flag_item(user_key)))
    if user.locked_for:
        wait = user.locked_for
        return locked(
            f"Too many wrong activation codes from you: locked until {_until(user.until)}; "
            f"try again in {_minutes(wait)}.",
            wait,
            until=user.until,
        )
    device = _Guard(state, device_key, limits.device_window, now, flags.get(_Guard.flag_item(device_key)))
    if device.locked_for:
        wait = device.locked_for
        # Only a known device is ever locked (unknown ones are settled, never counted as its failures).
        return locked(
            f"Device {target} is locked after too many wrong codes until {_until(device.until)}; "
            f"try again in {_minutes(wait)}.",
            wait,
            known=True,
            until=device.until,
        )

    # Beyond a limit with attempts still in flight: refused before reaching the catalog, so not a guess.
    counts = state.get_many(user.counter_items() + device.counter_items())
    user_failures = user.reserve(counts)
    if user_failures > limits.user_failures:
        user.settle()
        return locked("Too many activation attempts from you at once; try again in a moment.", BUSY_RETRY)
    device_failures = device.reserve(counts)
    if device_failures > limits.device_failures:
        device.settle()
        user.settle()
        return locked(
            f"Too many activation attempts for device {serial} at once; try again in a moment.", BUSY_RETRY
        )

    try:
        attempt = catalog.try_activate(
            settings.device_table,
            serial,
            client_id,
            code=secret.reveal(),
            email=address,
            actor=actor,
            at=format_time(datetime.now(UTC)),
        )
    except Exception:
        # No answer about the code (e.g. the table is missing): not a guess, so it must not count.
        user.settle()
        device.settle()
        raise
    # Settle what was not a wrong code. The catalog has answered: bookkeeping that fails now must not
    # turn an activation into an error (its counters expire with their window).
    if attempt.activated:
        _bookkeeping(user.settle, "settle the attempt of", actor)
    if attempt.succeeded:
        # Its earlier wrong codes mean nothing now (the code is gone): count afresh.
        _bookkeeping(lambda: device.lock(0, 0), "reset the guessing counters of", target)
        return finish(
            ActivationResult(
                True,
                Reason.ACTIVATED,
                serial,
                client_id,
                f"Device {target} is activated and registered to {address}.",
            )
        )
    if attempt.activated:
        device.settle()
        return finish(
            ActivationResult(
                False,
                Reason.ALREADY_ACTIVATED,
                serial,
                client_id,
                f"Device {target} is already activated. An operator can reset it with "
                f"`/device deactivate {serial} {client_id}`.",
            )
        )

    user_locked = user_failures >= limits.user_failures
    if user_locked:
        user.lock(limits.user_lock, user_failures)
    if not attempt.exists:
        device.settle()  # no such device: a wrong guess of the person's, not of a device's code
        suffix = f" You can try again in {_minutes(limits.user_lock)}." if user_locked else ""
        return finish(
            ActivationResult(
                False,
                Reason.UNKNOWN_DEVICE,
                serial,
                "",  # not a client id after all: perhaps the code, typed in its place
                f"No device has serial number {serial} and that client id. Check both on the device's "
                f"label, and that the client id comes before the activation code.{suffix}",
                retry_after=limits.user_lock if user_locked else 0,
            )
        )

    left = max(0, limits.device_failures - device_failures)
    locked_until = 0
    if left == 0:
        locked_until = device.lock(limits.device_lock, device_failures)
        # This answer is the one that locks it: say so, and until when (not only what the rule is).
        message = (
            f"That is not the activation code of {target}. That was the {_ordinal(limits.device_failures)} "
            f"wrong code: the device is now locked until {_until(locked_until)} "
            f"({_minutes(limits.device_lock)}); until then even the right code is refused."
        )
        retry_after = limits.device_lock
    elif user_locked:
        message = (
            f"That is not the activation code of {target}. Too many wrong codes from you; try again in "
            f"{_minutes(limits.user_lock)}."
        )
        retry_after = limits.user_lock
    else:
        message = (
            f"That is not the activation code of {target}. {left} more wrong "
            f"code{'s' if left != 1 else ''} will lock the device for {_minutes(limits.device_lock)}."
        )
        retry_after = 0
    return finish(
        ActivationResult(
            False,
            Reason.WRONG_CODE,
            serial,
            client_id,
            message,
            retry_after=retry_after,
            attempts_left=left,
            locked_until=locked_until,
        )
    )


# -- deactivation ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeactivationResult:
    serial: str
    client_id: str
    was_activated: bool
    previous_email: str
    new_code: Secret = field(repr=False)

    @property
    def message(self) -> str:
        if self.was_activated:
            owner = f" (registered to {self.previous_email})" if self.previous_email else ""
            state = f"was activated{owner}"
        else:
            state = "was not activated"
        return (
            f"Device {self.serial} / {self.client_id} {state}; it is now reset (not activated, e-mail "
            f"{UNREGISTERED_EMAIL}) with a new activation code."
        )

    def to_json(self, *, reveal_code: bool = False) -> dict[str, Any]:
        return {
            "ok": True,
            "serialNumber": self.serial,
            "clientId": self.client_id,
            "wasActivated": self.was_activated,
            "previousEmail": self.previous_email,
            "newActivationCode": self.new_code.reveal() if reveal_code else MASK,
            "message": self.message,
        }


def deactivate(
    settings: Settings,
    serial: str,
    client_id: str,
    *,
    actor: str,
    limits: GuessingLimits = GUESSING_LIMITS,
    audit: bool = True,
) -> DeactivationResult:
    """Reset activation and issue a new code (returned as a Secret for the caller only)."""
    started = time.time()
    serial, client_id = serial.strip(), client_id.strip()
    if not _KEY.fullmatch(serial) or not _KEY.fullmatch(client_id):
        raise UsageError(
            "Give the serial number and the client id of the device, e.g. SN-D7F3C8947867 ID-91B2F06B3F05."
        )
    state = StateTable(settings.state_table)
    code = new_activation_code()
    previous = catalog.reset_activation(
        settings.device_table,
        serial,
        client_id,
        new_code=code.reveal(),
        actor=actor,
        at=format_time(datetime.now(UTC)),
    )
    if previous is None:
        if audit:
            _audit(settings, actor, "device.deactivate", f"{serial} {client_id}", "unknown_device", started)
        raise NotFoundError(
            f"No device has serial number {echo(serial)} and client id {echo(client_id)}; nothing was changed."
        )
    # A new code makes earlier guesses meaningless: lift the device's lock and start counting afresh. The
    # reset is made: a failure here leaves only an old lock to expire, not a failed command.
    guard = _Guard(state, _device_key(serial, client_id), limits.device_window, 0, None)
    _bookkeeping(lambda: guard.lock(0, 0), "lift the guessing lock of", f"{serial} / {client_id}")
    if audit:
        _audit(settings, actor, "device.deactivate", f"{serial} {client_id}", "reset", started)
    log.info("Device %s / %s reset by %s", serial, client_id, actor)
    email = str(previous.get("email", ""))
    return DeactivationResult(
        serial,
        client_id,
        was_activated=is_activated(previous.get("activated")),
        previous_email=email if email != UNREGISTERED_EMAIL else "",
        new_code=code,
    )


# -- show and list ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeviceView:
    serial: str
    client_id: str
    activated: bool
    email: str
    code_unused: bool  # the device still holds a code that has not been used
    device: str = ""
    type: str = ""
    endpoint: str = ""
    certificate_id: str = ""
    registered_at: str = ""
    activated_at: str = ""
    activated_by: str = ""
    locked_for: int = 0  # seconds left on a guessing lock
    recent_failures: int = 0

    @property
    def code_display(self) -> str:
        return f"{MASK} (unused)" if self.code_unused else "none (used at activation)"

    def owner_hidden(self) -> DeviceView:
        """This view for someone without the ``device.owners`` grant: the owner's address masked."""
        return replace(self, email=mask_email(self.email)) if self.activated else self

    @classmethod
    def from_item(cls, item: Mapping[str, Any], code_unused: bool, **extra: Any) -> DeviceView:
        def text(name: str) -> str:
            value = item.get(name)
            return "" if value is None else str(value)

        return cls(
            serial=text("serialNumber"),
            client_id=text("clientId"),
            activated=is_activated(item.get("activated")),
            email=text("email"),
            code_unused=code_unused,
            device=text("device"),
            type=text("type"),
            endpoint=text("endpoint"),
            certificate_id=text("certificateId"),
            registered_at=text("registeredAt"),
            activated_at=text("activatedAt"),
            activated_by=text("activatedBy"),
            **extra,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "serialNumber": self.serial,
            "clientId": self.client_id,
            "activated": self.activated,
            "email": self.email,
            "activationCode": MASK if self.code_unused else None,
            "device": self.device,
            "type": self.type,
            "endpoint": self.endpoint,
            "certificateId": self.certificate_id,
            "registeredAt": self.registered_at,
            "activatedAt": self.activated_at,
            "activatedBy": self.activated_by,
            "lockedFor": self.locked_for,
            "recentFailures": self.recent_failures,
        }


def show(
    settings: Settings, serial: str, client_id: str | None = None, *, limits: GuessingLimits = GUESSING_LIMITS
) -> list[DeviceView]:
    """One device, or every client id under a serial number; the code is never included."""
    serial = serial.strip()
    if not _KEY.fullmatch(serial) or (client_id is not None and not _KEY.fullmatch(client_id.strip())):
        raise UsageError(
            "Give a serial number and optionally a client id, e.g. SN-D7F3C8947867 ID-91B2F06B3F05."
        )
    if client_id is not None:
        found = catalog.get_device(settings.device_table, serial, client_id.strip())
        rows = [found] if found else []
    else:
        rows = catalog.devices_of_serial(settings.device_table, serial)
    if not rows:
        which = f"serial number {echo(serial)}" + (
            f" and client id {echo(client_id.strip())}" if client_id else ""
        )
        raise NotFoundError(f"No device has {which}.")
    state = StateTable(settings.state_table)
    views: list[DeviceView] = []
    now = int(time.time())
    for item, code_unused in rows:
        guard = _Guard.read(
            state,
            _device_key(str(item.get("serialNumber")), str(item.get("clientId"))),
            limits.device_window,
            now,
        )
        views.append(
            DeviceView.from_item(
                item, code_unused, locked_for=guard.locked_for, recent_failures=guard.failures(now)
            )
        )
    return views


@dataclass(frozen=True)
class DeviceFilters:
    type: str | None = None
    activated: bool | None = None
    limit: int = 20

    def to_json(self) -> dict[str, Any]:
        return {"type": self.type, "activated": self.activated, "limit": self.limit}


def parse_activated(text: str | None) -> bool | None:
    if text is None or text == "":
        return None
    lowered = text.strip().lower()
    if lowered in {"yes", "y", "true"}:
        return True
    if lowered in {"no", "n", "false"}:
        return False
    raise UsageError(f"--activated takes yes or no, not {echo(text)}.")


MAX_LIST_LIMIT = 1000


def parse_limit(text: str | int | None, default: int = 20) -> int:
    if text is None or text == "":
        return default
    try:
        value = int(text)
    except (TypeError, ValueError):
        raise UsageError(f"--limit takes a whole number, not {echo(text)}.") from None
    if not 1 <= value <= MAX_LIST_LIMIT:
        raise UsageError(f"--limit must be between 1 and {MAX_LIST_LIMIT}.")
    return value


def encode_cursor(key: tuple[str, str]) -> str:
    raw = json.dumps(list(key), separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[str, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        value = json.loads(raw)
    except (ValueError, binascii.Error):
        raise UsageError("That page cursor is not valid; start the list again.") from None
    if not (isinstance(value, list) and len(value) == 2 and all(isinstance(v, str) and v for v in value)):
        raise UsageError("That page cursor is not valid; start the list again.")
    return value[0], value[1]


@dataclass(frozen=True)
class DevicePage:
    devices: list[DeviceView]
    filters: DeviceFilters
    next_cursor: str | None
    table: str
    # The scan stopped at its page cap before enough devices matched (more may match further on).
    partial: bool = False
    pages_read: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "filters": self.filters.to_json(),
            "devices": [d.to_json() for d in self.devices],
            "next": self.next_cursor,
            "partial": self.partial,
        }


def list_devices(settings: Settings, filters: DeviceFilters, *, cursor: str | None = None) -> DevicePage:
    start_after = decode_cursor(cursor) if cursor else None
    page = catalog.scan_devices(
        settings.device_table,
        device_type=filters.type,
        activated=filters.activated,
        limit=filters.limit,
        start_after=start_after,
    )
    views = [DeviceView.from_item(item, code_unused) for item, code_unused in page.items]
    return DevicePage(
        devices=views,
        filters=filters,
        next_cursor=encode_cursor(page.next_key) if page.next_key else None,
        table=settings.device_table,
        partial=page.partial,
        pages_read=page.requests,
    )
