"""Activation: one conditional update, distinct answers, the code consumed, guessing limited and audited."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.aws.state import StateTable
from bot.config import Settings
from bot.core.device.commands import (
    GuessingLimits,
    Reason,
    activate,
    activation_field_errors,
    clean_email,
    deactivate,
    register,
)
from bot.errors import UsageError
from tests.device.conftest import Clock
from tests.support.events import load_event

SERIAL, CLIENT, CODE = "SN-D7F3C8947867", "ID-91B2F06B3F05", "AC-9BE75CD0F1543D44C9AB"
WRONG = "AC-BADBADBADBADBADBAD0"


@pytest.fixture
def registered(device_settings: Settings) -> Settings:
    assert register(device_settings, load_event("device_registration")).ok
    return device_settings


def audit_records(settings: Settings) -> list[dict[str, Any]]:
    from datetime import UTC, datetime

    day = datetime.now(UTC).strftime("%Y-%m-%d")
    return StateTable(settings.state_table).audit_of_day(day, limit=1000)


def test_the_right_code_activates_and_is_consumed(
    registered: Settings, raw_item: Callable[[str, str], dict[str, Any] | None]
) -> None:
    result = activate(registered, SERIAL, CLIENT, CODE, "owner@example.com", actor="U111")

    assert result.ok and result.reason is Reason.ACTIVATED
    assert result.to_json()["reason"] == "activated"
    item = raw_item(SERIAL, CLIENT)
    assert item is not None
    assert item["activated"] == {"S": "true"}
    assert item["email"] == {"S": "owner@example.com"}
    assert item["activatedBy"] == {"S": "U111"}
    assert item["activatedAt"]["S"].endswith("Z")
    assert "activationCode" not in item  # consumed
    assert item["device"] == {"S": "myThing1"}  # the rest of the item is untouched


def test_the_code_cannot_be_used_again_even_after_a_reset(registered: Settings) -> None:
    assert activate(registered, SERIAL, CLIENT, CODE, "owner@example.com", actor="U1").ok

    again = activate(registered, SERIAL, CLIENT, CODE, "thief@example.com", actor="U2")
    assert again.reason is Reason.ALREADY_ACTIVATED
    assert f"/device deactivate {SERIAL} {CLIENT}" in again.message

    deactivate(registered, SERIAL, CLIENT, actor="UADMIN")
    stale = activate(registered, SERIAL, CLIENT, CODE, "thief@example.com", actor="U2")
    assert stale.reason is Reason.WRONG_CODE


def test_wrong_code_answer_says_how_many_attempts_are_left(
    registered: Settings, raw_item: Callable[[str, str], dict[str, Any] | None]
) -> None:
    result = activate(registered, SERIAL, CLIENT, WRONG, "owner@example.com", actor="U1")

    assert not result.ok and result.reason is Reason.WRONG_CODE
    assert result.attempts_left == 4
    assert "4 more wrong codes will lock the device for 15 minutes" in result.message
    item = raw_item(SERIAL, CLIENT)
    assert item is not None
    assert item["activated"] == {"S": "false"} and item["activationCode"] == {"S": CODE}


def test_unknown_device_is_an_answer_not_a_crash(device_settings: Settings) -> None:
    result = activate(
        device_settings, "SN-000000000000", "ID-000000000000", CODE, "a@example.com", actor="U1"
    )
    assert result.reason is Reason.UNKNOWN_DEVICE
    assert "No device has serial number SN-000000000000 and that client id" in result.message
    # An unknown pair's client id may be the code typed in its place: it is never repeated.
    assert "ID-000000000000" not in json.dumps(result.to_json()) and result.to_json()["clientId"] is None


@pytest.mark.parametrize("activated", [True, "true", "True", "TRUE"])
def test_activated_is_read_as_string_or_boolean(
    device_settings: Settings, put_device: Callable[..., dict[str, Any]], activated: Any
) -> None:
    put_device(SERIAL, CLIENT, activated=activated, activationCode=CODE, email="first@example.com")
    result = activate(device_settings, SERIAL, CLIENT, CODE, "second@example.com", actor="U1")
    assert result.reason is Reason.ALREADY_ACTIVATED


@pytest.mark.parametrize("activated", [False, "false", None])
def test_a_boolean_false_or_missing_activated_can_be_activated(
    device_settings: Settings,
    put_device: Callable[..., dict[str, Any]],
    raw_item: Callable[[str, str], dict[str, Any] | None],
    activated: Any,
) -> None:
    attributes: dict[str, Any] = {"activationCode": CODE}
    if activated is not None:
        attributes["activated"] = activated
    put_device(SERIAL, CLIENT, **attributes)

    assert activate(device_settings, SERIAL, CLIENT, CODE, "owner@example.com", actor="U1").ok
    item = raw_item(SERIAL, CLIENT)
    assert item is not None and item["activated"] == {"S": "true"}


@pytest.mark.parametrize(
    ("serial", "client_id", "code", "email", "field"),
    [
        ("", CLIENT, CODE, "a@example.com", "serial"),
        (SERIAL, "ID 91", CODE, "a@example.com", "client_id"),
        (SERIAL, CLIENT, "short", "a@example.com", "code"),
        (SERIAL, CLIENT, CODE, "not-an-address", "email"),
        (SERIAL, CLIENT, CODE, "not@registered.yet", "email"),
    ],
)
def test_bad_input_is_a_usage_error_and_changes_nothing(
    registered: Settings,
    raw_item: Callable[[str, str], dict[str, Any] | None],
    serial: str,
    client_id: str,
    code: str,
    email: str,
    field: str,
) -> None:
    before = raw_item(SERIAL, CLIENT)
    assert field in activation_field_errors(serial, client_id, code, email)
    with pytest.raises(UsageError) as caught:
        activate(registered, serial, client_id, code, email, actor="U1")
    assert CODE not in str(caught.value)
    assert raw_item(SERIAL, CLIENT) == before
    assert audit_records(registered) == []


def test_slack_mailto_formatting_is_unwrapped(
    registered: Settings, raw_item: Callable[[str, str], dict[str, Any] | None]
) -> None:
    assert clean_email("<mailto:owner@example.com|owner@example.com>") == "owner@example.com"
    assert activate(
        registered, SERIAL, CLIENT, CODE, "<mailto:owner@example.com|owner@example.com>", actor="U1"
    ).ok
    item = raw_item(SERIAL, CLIENT)
    assert item is not None and item["email"] == {"S": "owner@example.com"}


def test_five_wrong_codes_lock_the_device_for_fifteen_minutes(registered: Settings, clock: Clock) -> None:
    answers = [activate(registered, SERIAL, CLIENT, WRONG, "a@example.com", actor=f"U{n}") for n in range(5)]

    assert [a.attempts_left for a in answers] == [4, 3, 2, 1, 0]
    # The fifth answer is the one that locks: it says so, and until when.
    fifth = answers[-1]
    until = fifth.locked_until
    assert abs(until - (clock() + 900)) <= 2 and fifth.retry_after == 900
    ends = time.strftime("%H:%M UTC", time.gmtime(until))
    assert f"That was the 5th wrong code: the device is now locked until {ends} (15 minutes)" in fifth.message
    assert "After 5 wrong codes" not in fifth.message
    assert fifth.to_json()["lockedUntil"] == time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(until))
    assert all(a.locked_until == 0 and "locked until" not in a.message for a in answers[:4])
    # Locked: even the right code is refused, and nothing is changed.
    locked = activate(registered, SERIAL, CLIENT, CODE, "owner@example.com", actor="U9")
    assert locked.reason is Reason.LOCKED and 0 < locked.retry_after <= 900
    assert "try again in 15 minutes" in locked.message and f"until {ends}" in locked.message
    assert locked.locked_until == until

    clock.advance(14 * 60)
    still = activate(registered, SERIAL, CLIENT, CODE, "owner@example.com", actor="U9")
    assert still.reason is Reason.LOCKED and "1 minute" in still.message

    clock.advance(61)
    assert activate(registered, SERIAL, CLIENT, CODE, "owner@example.com", actor="U9").ok


def test_wrong_codes_spread_over_a_window_boundary_still_lock(registered: Settings, clock: Clock) -> None:
    # Move to 30 s before a 15-minute window boundary: 3 failures before it, 2 after.
    import time

    now = int(time.time())
    clock.advance(900 - now % 900 - 30)
    for _ in range(3):
        activate(registered, SERIAL, CLIENT, WRONG, "a@example.com", actor="U1")
    clock.advance(60)
    activate(registered, SERIAL, CLIENT, WRONG, "a@example.com", actor="U2")
    last = activate(registered, SERIAL, CLIENT, WRONG, "a@example.com", actor="U3")
    assert last.attempts_left == 0
    assert activate(registered, SERIAL, CLIENT, CODE, "a@example.com", actor="U4").reason is Reason.LOCKED


def test_a_user_failing_on_many_devices_is_slowed_down(device_settings: Settings, clock: Clock) -> None:
    limits = GuessingLimits()
    devices = []
    for n in range(limits.user_failures + 1):
        payload = {
            **load_event("device_registration"),
            "serialNumber": f"SN-{n:012X}",
            "clientId": f"ID-{n:012X}",
            "activationCode": f"AC-{n:020X}",
        }
        assert register(device_settings, payload).ok
        devices.append(payload)

    # One wrong code on each of ten devices: no device reaches its own limit...
    answers = [
        activate(device_settings, d["serialNumber"], d["clientId"], WRONG, "a@example.com", actor="UGUESS")
        for d in devices[: limits.user_failures]
    ]
    assert all(a.reason is Reason.WRONG_CODE for a in answers)
    assert "Too many wrong codes from you" in answers[-1].message
    # ...but the user is now refused everywhere, even with a right code, while others are not.
    target = devices[-1]
    refused = activate(
        device_settings,
        target["serialNumber"],
        target["clientId"],
        target["activationCode"],
        "a@ex.com",
        actor="UGUESS",
    )
    assert refused.reason is Reason.LOCKED and "from you" in refused.message
    other = activate(
        device_settings, devices[0]["serialNumber"], devices[0]["clientId"], devices[0]["activationCode"],
        "b@example.com", actor="UHONEST",
    )  # fmt: skip
    assert other.ok

    clock.advance(limits.user_lock + 1)
    assert activate(
        device_settings,
        target["serialNumber"],
        target["clientId"],
        target["activationCode"],
        "a@ex.com",
        actor="UGUESS",
    ).ok


def test_unknown_devices_count_towards_the_users_limit(device_settings: Settings) -> None:
    limits = GuessingLimits(user_failures=3)
    for n in range(3):
        activate(device_settings, f"SN-{n}", f"ID-{n}", WRONG, "a@example.com", actor="UENUM", limits=limits)
    blocked = activate(device_settings, "SN-9", "ID-9", WRONG, "a@example.com", actor="UENUM", limits=limits)
    assert blocked.reason is Reason.LOCKED


def test_attempts_that_fail_on_aws_do_not_count_as_guesses(state_table: str) -> None:
    from bot.errors import AwsError

    settings = Settings.from_env(
        {"AWS_REGION": "us-east-1", "OPSBOT_STATE_TABLE": state_table, "OPSBOT_DEVICE_TABLE": "missing"}
    )
    limits = GuessingLimits(device_failures=2, user_failures=2)
    for _ in range(3):
        with pytest.raises(AwsError, match="missing"):
            activate(settings, SERIAL, CLIENT, CODE, "owner@example.com", actor="U1", limits=limits)


def test_every_attempt_is_audited_without_the_code(registered: Settings, clock: Clock) -> None:
    activate(registered, SERIAL, CLIENT, WRONG, "a@example.com", actor="U1")
    activate(registered, "SN-404", "ID-404", WRONG, "a@example.com", actor="U2")
    activate(registered, SERIAL, CLIENT, CODE, "owner@example.com", actor="U3")
    activate(registered, SERIAL, CLIENT, CODE, "owner@example.com", actor="U4")
    for _ in range(5):
        activate(registered, "SN-D7F3C8947867", CLIENT, WRONG, "a@example.com", actor="U5")

    records = audit_records(registered)
    outcomes = sorted((r["user"], r["outcome"]) for r in records if r["action"] == "device.activate")
    assert outcomes == sorted(
        [
            ("U1", "wrong_code"),
            ("U2", "unknown_device"),
            ("U3", "activated"),
            ("U4", "already_activated"),
            *[("U5", "already_activated")] * 5,
        ]
    )
    dumped = repr(records)
    assert CODE not in dumped and WRONG not in dumped
    assert all(r["kind"] == "cli" and r["args"].startswith("SN-") for r in records)


def test_audit_of_a_locked_attempt(registered: Settings) -> None:
    limits = GuessingLimits(device_failures=1)
    activate(registered, SERIAL, CLIENT, WRONG, "a@example.com", actor="U1", limits=limits)
    activate(registered, SERIAL, CLIENT, CODE, "a@example.com", actor="U2", limits=limits)
    outcomes = [r["outcome"] for r in audit_records(registered) if r["user"] == "U2"]
    assert outcomes == ["locked"]


@given(st.text(max_size=60), st.text(max_size=60), st.text(max_size=60), st.text(max_size=300))
def test_field_validation_never_raises(serial: str, client_id: str, code: str, email: str) -> None:
    errors = activation_field_errors(serial, client_id, code, email)
    assert set(errors) <= {"serial", "client_id", "code", "email"}
    if len(code) >= 8:
        assert all(code not in message for message in errors.values())
