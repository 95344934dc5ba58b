"""The activation code never appears in a log line, an audit record, a rendered message or a result.

Logs are captured at DEBUG for every logger, botocore's included: at that level botocore writes request
and response bodies, so this also proves the catalog module mutes them around its calls.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

import pytest

from bot.aws.clients import client
from bot.aws.state import StateTable
from bot.config import Settings
from bot.core.device.commands import (
    DeviceFilters,
    Secret,
    activate,
    deactivate,
    list_devices,
    new_activation_code,
    register,
    registration_handler,
    show,
)
from bot.render import device as render
from bot.render.blocks import problems
from tests.support.events import load_event

SERIAL, CLIENT, CODE = "SN-D7F3C8947867", "ID-91B2F06B3F05", "AC-9BE75CD0F1543D44C9AB"
WRONG = "AC-BADBADBADBADBADBAD0"


def everything_logged_and_stored(settings: Settings, caplog: pytest.LogCaptureFixture) -> str:
    day = datetime.now(UTC).strftime("%Y-%m-%d")
    audit = StateTable(settings.state_table).audit_of_day(day, limit=1000)
    state_items = client("dynamodb").scan(TableName=settings.state_table)["Items"]
    return caplog.text + json.dumps(audit) + json.dumps(state_items)


def test_botocore_debug_logging_would_show_the_code_without_muting(
    device_settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    """The control: the same capture sees a code that a plain boto3 call sends."""
    caplog.set_level(logging.DEBUG)
    client("dynamodb").get_item(
        TableName="iotCatalog",
        Key={"serialNumber": {"S": SERIAL}, "clientId": {"S": CLIENT}},
        ExpressionAttributeNames={"#probe": CODE},
        ProjectionExpression="#probe",
    )
    assert CODE in caplog.text


def test_no_code_in_logs_audit_or_state_through_every_flow(
    device_settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    results: list[Any] = []

    results.append(registration_handler(device_settings)(load_event("device_registration"), None))
    results.append(register(device_settings, {**load_event("device_registration"), "clientId": ""}))
    results.append(activate(device_settings, SERIAL, CLIENT, WRONG, "owner@example.com", actor="U1"))
    results.extend(show(device_settings, SERIAL))
    page = list_devices(device_settings, DeviceFilters())
    results.append(page)
    results.append(activate(device_settings, SERIAL, CLIENT, CODE, "owner@example.com", actor="U2"))
    results.append(activate(device_settings, SERIAL, CLIENT, CODE, "owner@example.com", actor="U3"))
    reset = deactivate(device_settings, SERIAL, CLIENT, actor="UADMIN")
    new_code = reset.new_code.reveal()

    seen = everything_logged_and_stored(device_settings, caplog)
    assert "opsbot.device" in caplog.text  # the capture did see our own log lines
    for secret in (CODE, WRONG, new_code):
        assert secret not in seen
        for result in results:
            rendered = json.dumps(result.to_json() if hasattr(result, "to_json") else result)
            assert secret not in rendered and secret not in repr(result)
    assert new_code not in repr(reset) and new_code not in json.dumps(reset.to_json())
    # Only the deactivation answer to its caller shows the new code, and nothing else in it.
    assert new_code in json.dumps(render.deactivation_blocks(reset))
    assert CODE not in json.dumps(render.deactivation_blocks(reset))


def test_a_code_typed_as_the_client_id_is_kept_out_too(
    device_settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    """Client id and code swapped: the typed client id is the code. No answer, log line, audit record or
    state item repeats it, through unknown device and the lockout that follows; the serial says which."""
    from bot.core.device.commands import GuessingLimits, Reason

    plain = "Kx7-pass-9981"  # no pattern would recognise it
    register(device_settings, {**load_event("device_registration"), "activationCode": plain})
    caplog.clear()  # the registration's own log line names the device's real client id, rightly
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="opsbot")  # whatever level an earlier test left it at
    limits = GuessingLimits(user_failures=2)
    results = [
        activate(device_settings, SERIAL, plain, CLIENT, "owner@example.com", actor="U1", limits=limits)
        for _ in range(3)
    ]

    assert [r.reason for r in results] == [Reason.UNKNOWN_DEVICE, Reason.UNKNOWN_DEVICE, Reason.LOCKED]
    assert "that client id" in results[0].message
    seen = everything_logged_and_stored(device_settings, caplog)
    assert f"Activation of {SERIAL} by U1: unknown_device" in caplog.text
    for typed in (plain, CLIENT):
        assert typed not in seen
        for result in results:
            rendered = [result.to_json(), render.activation_blocks(result), render.activation_text(result)]
            assert typed not in json.dumps(rendered) and typed not in repr(result)
    day = datetime.now(UTC).strftime("%Y-%m-%d")
    records = StateTable(device_settings.state_table).audit_of_day(day)
    assert [r["args"] for r in records] == [SERIAL] * 3


def test_no_code_in_any_rendered_message(device_settings: Settings) -> None:
    register(device_settings, load_event("device_registration"))
    rendered: list[Any] = []
    for code in (WRONG, CODE, CODE):
        result = activate(device_settings, SERIAL, CLIENT, code, "owner@example.com", actor="U1")
        rendered += [render.activation_blocks(result), render.activation_text(result)]
    views = show(device_settings, SERIAL, CLIENT)
    rendered += [render.device_blocks(views), render.device_text(views)]
    page = list_devices(device_settings, DeviceFilters())
    rendered += [render.page_blocks(page), render.page_text(page)]
    text = json.dumps(rendered)
    assert CODE not in text and WRONG not in text
    for blocks in rendered:
        if isinstance(blocks, list):
            assert problems(blocks) == []


def test_unused_codes_are_masked_in_show_and_list(device_settings: Settings) -> None:
    register(device_settings, load_event("device_registration"))
    (view,) = show(device_settings, SERIAL, CLIENT)
    assert view.code_unused and "••••" in view.code_display
    assert view.to_json()["activationCode"] == "••••••••"
    listed = list_devices(device_settings, DeviceFilters()).to_json()
    assert CODE not in json.dumps(listed)


def test_a_secret_prints_as_a_mask() -> None:
    secret = new_activation_code()
    value = secret.reveal()
    assert value.startswith("AC-") and len(value) == 23 and value[3:] == value[3:].upper()
    assert value not in repr(secret) and value not in str(secret) and value not in f"{secret}"
    assert secret == Secret(value) and secret != Secret(value + "x")
    assert len({new_activation_code().reveal() for _ in range(50)}) == 50
