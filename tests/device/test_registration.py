"""Registration: IoT rule payload -> iotCatalog, with the original's attributes and value types."""

from __future__ import annotations

import importlib
import json
import logging
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.aws.clients import client
from bot.config import Settings
from bot.core.device.commands import activate, parse_registration, register, registration_handler
from bot.errors import UsageError
from tests.support.events import load_event
from tests.support.properties import examples

CODE = "AC-9BE75CD0F1543D44C9AB"
ROOT = Path(__file__).resolve().parents[2]


def test_registration_stores_the_originals_attributes_and_types(
    device_settings: Settings, raw_item: Callable[[str, str], dict[str, Any] | None]
) -> None:
    result = registration_handler(device_settings)(load_event("device_registration"), None)

    assert result["ok"] is True and result["reason"] == "registered"
    item = raw_item("SN-D7F3C8947867", "ID-91B2F06B3F05")
    assert item is not None
    assert item["activationCode"] == {"S": CODE}
    assert item["activated"] == {"S": "false"}  # a string, as the seed post writes it
    assert item["email"] == {"S": "not@registered.yet"}
    assert item["device"] == {"S": "myThing1"}
    assert item["type"] == {"S": "MySmartIoTDevice"}
    assert item["endpoint"] == {"S": "a1b2c3d4e5f6g7.iot.ap-northeast-1.amazonaws.com"}
    assert "S" in item["registeredAt"]
    assert "certificateId" not in item  # absent in the payload, absent in the item


def test_payload_as_a_json_string_is_accepted(
    device_settings: Settings, raw_item: Callable[[str, str], dict[str, Any] | None]
) -> None:
    payload = load_event("device_registration")
    payload["certificateId"] = "3f1c0e5b9d"
    result = register(device_settings, json.dumps(payload))
    assert result.ok
    item = raw_item("SN-D7F3C8947867", "ID-91B2F06B3F05")
    assert item is not None and item["certificateId"] == {"S": "3f1c0e5b9d"}


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"serialNumber": None}, "serialNumber is missing"),
        ({"clientId": ""}, "clientId is missing"),
        ({"activationCode": None}, "activationCode is missing"),
        ({"activationCode": "short"}, "activationCode must be 8 to 256 characters"),
        ({"serialNumber": 12345}, "serialNumber must be a string, not int"),
        ({"clientId": "ID 1"}, "clientId must be 1 to 256 characters without spaces"),
        ({"type": ["x"]}, "type must be a string"),
    ],
)
def test_invalid_payloads_are_logged_and_nothing_is_stored(
    device_settings: Settings,
    caplog: pytest.LogCaptureFixture,
    change: dict[str, Any],
    expected: str,
) -> None:
    payload = {**load_event("device_registration"), **change}
    caplog.set_level(logging.INFO, logger="opsbot.device")

    result = registration_handler(device_settings)(payload, None)

    assert result["ok"] is False and result["reason"] == "invalid"
    assert expected in result["message"]
    assert expected in caplog.text and "Nothing was stored" in caplog.text
    assert caplog.records[-1].levelno == logging.ERROR
    assert CODE not in caplog.text
    assert client("dynamodb").scan(TableName="iotCatalog")["Count"] == 0


@pytest.mark.parametrize("payload", [None, [], "not json", 42, b"[1,2]"])
def test_payloads_that_are_not_objects_are_rejected(device_settings: Settings, payload: Any) -> None:
    result = register(device_settings, payload)
    assert not result.ok and result.reason == "invalid"


def test_reregistering_a_device_that_is_not_activated_updates_it(
    device_settings: Settings, raw_item: Callable[[str, str], dict[str, Any] | None]
) -> None:
    handler = registration_handler(device_settings)
    handler(load_event("device_registration"), None)
    second = {
        **load_event("device_registration"),
        "activationCode": "AC-00000000000000000001",
        "device": "renamed",
    }

    result = handler(second, None)

    assert result["ok"] and result["reason"] == "updated"
    item = raw_item("SN-D7F3C8947867", "ID-91B2F06B3F05")
    assert item is not None
    assert item["device"] == {"S": "renamed"}
    assert item["activationCode"] == {"S": "AC-00000000000000000001"}


def test_reregistering_a_reset_device_keeps_the_code_the_reset_issued(
    device_settings: Settings, raw_item: Callable[[str, str], dict[str, Any] | None]
) -> None:
    """An operator reset a device because its code leaked; the device then republishes its registration
    (with the old code): the leaked code must stay revoked."""
    from bot.core.device.commands import deactivate

    handler = registration_handler(device_settings)
    handler({**load_event("device_registration"), "activationCode": CODE}, None)
    reset = deactivate(device_settings, "SN-D7F3C8947867", "ID-91B2F06B3F05", actor="UADMIN")

    result = handler(
        {**load_event("device_registration"), "activationCode": CODE, "device": "rebooted"}, None
    )

    assert result["ok"] and result["reason"] == "updated"
    item = raw_item("SN-D7F3C8947867", "ID-91B2F06B3F05")
    assert item is not None
    assert item["device"] == {"S": "rebooted"}  # the registration's own attributes are updated
    assert item["activationCode"] == {"S": reset.new_code.reveal()} and item["deactivatedBy"] == {
        "S": "UADMIN"
    }
    assert not activate(
        device_settings, "SN-D7F3C8947867", "ID-91B2F06B3F05", CODE, "x@example.com", actor="U1"
    ).ok
    assert activate(
        device_settings,
        "SN-D7F3C8947867",
        "ID-91B2F06B3F05",
        reset.new_code.reveal(),
        "o@example.com",
        actor="U1",
    ).ok


@pytest.mark.parametrize("stored", [{"S": "true"}, {"BOOL": True}, {"S": "TRUE"}])
def test_an_activated_device_is_never_overwritten(
    device_settings: Settings,
    raw_item: Callable[[str, str], dict[str, Any] | None],
    caplog: pytest.LogCaptureFixture,
    stored: dict[str, Any],
) -> None:
    client("dynamodb").put_item(
        TableName="iotCatalog",
        Item={
            "serialNumber": {"S": "SN-D7F3C8947867"},
            "clientId": {"S": "ID-91B2F06B3F05"},
            "activated": stored,
            "email": {"S": "owner@example.com"},
        },
    )
    caplog.set_level(logging.INFO, logger="opsbot.device")

    result = registration_handler(device_settings)(load_event("device_registration"), None)

    assert result["ok"] is False and result["reason"] == "already_activated"
    assert "already activated" in caplog.text
    item = raw_item("SN-D7F3C8947867", "ID-91B2F06B3F05")
    assert item is not None
    assert item["email"] == {"S": "owner@example.com"} and item["activated"] == stored
    assert "activationCode" not in item


def test_a_registration_claiming_activation_is_stored_as_not_activated(
    device_settings: Settings,
    raw_item: Callable[[str, str], dict[str, Any] | None],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="opsbot.device")
    payload = {**load_event("device_registration"), "activated": "true", "email": "someone@example.com"}

    assert register(device_settings, payload).ok

    item = raw_item("SN-D7F3C8947867", "ID-91B2F06B3F05")
    assert item is not None
    assert item["activated"] == {"S": "false"} and item["email"] == {"S": "not@registered.yet"}
    assert "said activated=true" in caplog.text


def test_registered_device_can_be_activated_with_the_post_activation_payload(
    device_settings: Settings,
) -> None:
    register(device_settings, load_event("device_registration"))
    request = load_event("device_activation")
    result = activate(
        device_settings,
        request["serialNumber"],
        request["clientId"],
        request["activationCode"],
        request["email"],
        actor="U1",
    )
    assert result.ok


def test_importing_the_handler_module_does_no_io() -> None:
    # A client is created only through boto3; if importing the handler did any AWS I/O, boto3 would be
    # loaded. A fresh interpreter shows what the import alone does.
    probe = (
        "import sys, handlers.device_registration as h; print(callable(h.handler), 'boto3' in sys.modules)"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=ROOT, timeout=60
    )
    assert done.stdout.split() == ["True", "False"]


def test_the_handler_module_registers(device_settings: Settings) -> None:
    sys.modules.pop("handlers.device_registration", None)
    module = importlib.import_module("handlers.device_registration")

    result = module.handler(load_event("device_registration"), None)

    assert result == {
        "ok": True,
        "reason": "registered",
        "message": "Device SN-D7F3C8947867 / ID-91B2F06B3F05 registered in iotCatalog.",
        "serialNumber": "SN-D7F3C8947867",
        "clientId": "ID-91B2F06B3F05",
    }


def test_handler_uses_the_configured_table(
    monkeypatch: pytest.MonkeyPatch, device_settings: Settings
) -> None:
    from bot.aws.devices import DEVICE_TABLE_DEFINITION
    from bot.aws.state import create_table

    create_table("otherCatalog", DEVICE_TABLE_DEFINITION)
    monkeypatch.setenv("OPSBOT_DEVICE_TABLE", "otherCatalog")
    result = registration_handler()(load_event("device_registration"), None)
    assert result["message"].endswith("registered in otherCatalog.")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=15), children, max_size=4)
    ),
    max_leaves=12,
)
payload_dicts = st.fixed_dictionaries(
    {},
    optional={
        "serialNumber": json_values,
        "clientId": json_values,
        "activationCode": json_values,
        "device": json_values,
        "type": json_values,
        "activated": json_values,
    },
)


@settings(max_examples=examples(300), deadline=None)
@given(st.one_of(json_values, payload_dicts, st.binary(max_size=40)))
def test_parsing_a_payload_raises_only_usage_errors(payload: Any) -> None:
    try:
        registration = parse_registration(payload)
    except UsageError as error:
        code = payload.get("activationCode") if isinstance(payload, dict) else None
        others = (
            repr({k: v for k, v in payload.items() if k != "activationCode"})
            if isinstance(payload, dict)
            else ""
        )
        if isinstance(code, str) and len(code) >= 4 and code not in others:
            assert code not in error.message
    else:
        assert registration.serial and registration.client_id
        assert registration.code.reveal() not in repr(registration)
