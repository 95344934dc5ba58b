"""show, list (full pagination), deactivate, the CLI and the demo seed."""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.aws.devices import scan_devices
from bot.aws.state import StateTable
from bot.cli import main
from bot.config import Settings
from bot.core.device.commands import (
    DeviceFilters,
    GuessingLimits,
    Reason,
    activate,
    deactivate,
    decode_cursor,
    encode_cursor,
    list_devices,
    parse_activated,
    parse_limit,
    register,
    show,
)
from bot.errors import UsageError
from bot.render import device as render
from bot.render.blocks import problems
from tests.support.events import load_event

SERIAL, CLIENT, CODE = "SN-D7F3C8947867", "ID-91B2F06B3F05", "AC-9BE75CD0F1543D44C9AB"


def register_many(settings: Settings, count: int, **overrides: str) -> list[dict[str, str]]:
    payloads = []
    for n in range(count):
        payload = {
            **load_event("device_registration"),
            "serialNumber": f"SN-{n:012X}",
            "clientId": f"ID-{n:012X}",
            "activationCode": f"AC-{n + 1:020X}",
            "device": f"myThing{n}",
            "type": "Thermostat" if n % 3 == 0 else "MySmartIoTDevice",
            **overrides,
        }
        assert register(settings, payload).ok
        payloads.append(payload)
    return payloads


# -- show ------------------------------------------------------------------------------------------


def test_show_one_device_and_every_client_of_a_serial(device_settings: Settings) -> None:
    register(device_settings, load_event("device_registration"))
    register(device_settings, {**load_event("device_registration"), "clientId": "ID-SECOND"})

    (one,) = show(device_settings, SERIAL, CLIENT)
    assert one.serial == SERIAL and not one.activated and one.device == "myThing1"
    both = show(device_settings, SERIAL)
    assert sorted(v.client_id for v in both) == ["ID-91B2F06B3F05", "ID-SECOND"]
    assert problems(render.device_blocks(both)) == []


def test_show_reports_recent_wrong_codes_and_a_lock(device_settings: Settings) -> None:
    register(device_settings, load_event("device_registration"))
    limits = GuessingLimits(device_failures=2)
    for _ in range(2):
        activate(
            device_settings, SERIAL, CLIENT, "AC-BADBADBADBAD", "a@example.com", actor="U1", limits=limits
        )
    (view,) = show(device_settings, SERIAL, CLIENT)
    assert view.recent_failures == 2 and 0 < view.locked_for <= 900
    assert "locked for" in render.device_text([view])


def test_show_counts_only_wrong_codes(device_settings: Settings) -> None:
    register(device_settings, load_event("device_registration"))
    assert activate(device_settings, SERIAL, CLIENT, CODE, "a@example.com", actor="U1").ok
    again = activate(device_settings, SERIAL, CLIENT, CODE, "b@example.com", actor="U2")
    assert again.reason is Reason.ALREADY_ACTIVATED
    (view,) = show(device_settings, SERIAL, CLIENT)
    assert view.recent_failures == 0 and view.locked_for == 0


def test_show_unknown_device_is_a_usage_error(device_settings: Settings) -> None:
    with pytest.raises(UsageError, match="No device has serial number `SN-X` and client id `ID-Y`"):
        show(device_settings, "SN-X", "ID-Y")
    with pytest.raises(UsageError, match=r"No device has serial number `SN-X`\."):
        show(device_settings, "SN-X")


# -- list ------------------------------------------------------------------------------------------


def test_list_follows_every_page_without_gaps_or_repeats(device_settings: Settings) -> None:
    payloads = register_many(device_settings, 50)
    seen: list[tuple[str, str]] = []
    cursor = None
    pages = 0
    while True:
        page = list_devices(device_settings, DeviceFilters(limit=7), cursor=cursor)
        pages += 1
        assert len(page.devices) <= 7
        seen += [(v.serial, v.client_id) for v in page.devices]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert pages == 8
    assert sorted(seen) == sorted((p["serialNumber"], p["clientId"]) for p in payloads)


def test_scan_follows_dynamodb_pages_while_filtering(device_settings: Settings) -> None:
    register_many(device_settings, 30)
    # Pages of 4 items with a filter that keeps a third of them: several requests per answer.
    first = scan_devices("iotCatalog", device_type="Thermostat", limit=6, page_size=4)
    assert len(first.items) == 6 and first.requests > 1 and first.next_key is not None
    assert all(item["type"] == "Thermostat" for item, _ in first.items)
    rest = scan_devices(
        "iotCatalog", device_type="Thermostat", limit=100, page_size=4, start_after=first.next_key
    )
    assert rest.next_key is None
    assert len(first.items) + len(rest.items) == 10


def test_list_filters_by_type_and_activation(device_settings: Settings) -> None:
    payloads = register_many(device_settings, 9)
    for payload in payloads[:2]:
        assert activate(
            device_settings,
            payload["serialNumber"],
            payload["clientId"],
            payload["activationCode"],
            "o@example.com",
            actor="U1",
        ).ok
    activated = list_devices(device_settings, DeviceFilters(activated=True, limit=100))
    assert sorted(v.device for v in activated.devices) == ["myThing0", "myThing1"]
    waiting = list_devices(device_settings, DeviceFilters(activated=False, limit=100))
    assert len(waiting.devices) == 7 and all(not v.activated for v in waiting.devices)
    thermostats = list_devices(device_settings, DeviceFilters(type="Thermostat", activated=False, limit=100))
    assert sorted(v.device for v in thermostats.devices) == ["myThing3", "myThing6"]


def test_list_blocks_have_a_more_button_that_continues(device_settings: Settings) -> None:
    register_many(device_settings, 12)
    page = list_devices(device_settings, DeviceFilters(type="MySmartIoTDevice", limit=5))
    blocks = render.page_blocks(page)
    assert problems(blocks) == []
    (button,) = [e for b in blocks if b["type"] == "actions" for e in b["elements"]]
    assert button["action_id"] == "device:more"
    cursor, kind, activated, limit = render.parse_more_value(button["value"])
    assert (kind, activated, limit) == ("MySmartIoTDevice", None, 5)
    nxt = list_devices(
        device_settings, DeviceFilters(type=kind, activated=activated, limit=limit), cursor=cursor
    )
    assert not {v.serial for v in nxt.devices} & {v.serial for v in page.devices}


def serials_through_the_more_buttons(settings: Settings, limit: int) -> tuple[list[str], int]:
    """Follow the "more" buttons from the first page: (serials shown, messages)."""
    page = list_devices(settings, DeviceFilters(limit=limit))
    shown: list[str] = []
    messages = 0
    while True:
        blocks = render.page_blocks(page, continued=messages > 0)
        messages += 1
        assert problems(blocks) == []
        text = json.dumps(blocks)
        shown += re.findall(r"`(SN-[0-9A-F]{12})`", text)
        buttons = [e for b in blocks if b["type"] == "actions" for e in b["elements"]]
        if not buttons:
            assert "end of list" in text
            return shown, messages
        cursor, kind, activated, limit = render.parse_more_value(buttons[0]["value"])
        page = list_devices(settings, DeviceFilters(kind, activated, limit), cursor=cursor)


@pytest.mark.parametrize(("count", "limit", "name_length"), [(120, 120, 80), (40, 40, 1000)])
def test_a_page_too_long_for_one_message_continues_where_the_message_ended(
    device_settings: Settings, count: int, limit: int, name_length: int
) -> None:
    payloads = register_many(device_settings, count, device="d" * name_length)

    shown, messages = serials_through_the_more_buttons(device_settings, limit)

    assert sorted(shown) == sorted(p["serialNumber"] for p in payloads)  # none skipped, none twice
    assert messages > 1  # the page did not fit in one message


@given(st.text(max_size=40))
def test_parsers_raise_only_usage_errors(text: str) -> None:
    for parse in (parse_activated, parse_limit, decode_cursor):
        with contextlib.suppress(UsageError):
            parse(text)


@given(st.tuples(st.text(min_size=1, max_size=40), st.text(min_size=1, max_size=40)))
def test_cursor_round_trip(key: tuple[str, str]) -> None:
    assert decode_cursor(encode_cursor(key)) == key


# -- deactivate ------------------------------------------------------------------------------------


def test_deactivate_resets_and_issues_a_new_code(
    device_settings: Settings, raw_item: Callable[[str, str], dict[str, Any] | None]
) -> None:
    register(device_settings, load_event("device_registration"))
    assert activate(device_settings, SERIAL, CLIENT, CODE, "owner@example.com", actor="U1").ok

    reset = deactivate(device_settings, SERIAL, CLIENT, actor="UADMIN")

    assert reset.was_activated and reset.previous_email == "owner@example.com"
    item = raw_item(SERIAL, CLIENT)
    assert item is not None
    assert item["activated"] == {"S": "false"} and item["email"] == {"S": "not@registered.yet"}
    assert item["activationCode"] == {"S": reset.new_code.reveal()}
    assert item["deactivatedBy"] == {"S": "UADMIN"}
    assert "activatedAt" not in item and "activatedBy" not in item
    assert activate(
        device_settings, SERIAL, CLIENT, reset.new_code.reveal(), "new@example.com", actor="U2"
    ).ok


def test_deactivate_lifts_a_guessing_lock(device_settings: Settings) -> None:
    register(device_settings, load_event("device_registration"))
    limits = GuessingLimits(device_failures=1)
    activate(device_settings, SERIAL, CLIENT, "AC-BADBADBADBAD", "a@example.com", actor="U1", limits=limits)
    assert (
        activate(device_settings, SERIAL, CLIENT, CODE, "a@example.com", actor="U2", limits=limits).reason
        is Reason.LOCKED
    )
    reset = deactivate(device_settings, SERIAL, CLIENT, actor="UADMIN", limits=limits)
    result = activate(device_settings, SERIAL, CLIENT, reset.new_code.reveal(), "a@example.com", actor="U2")
    assert result.ok


def test_deactivate_unknown_device_changes_nothing(
    device_settings: Settings, raw_item: Callable[[str, str], dict[str, Any] | None]
) -> None:
    with pytest.raises(UsageError, match="nothing was changed"):
        deactivate(device_settings, "SN-NOPE", "ID-NOPE", actor="UADMIN")
    assert raw_item("SN-NOPE", "ID-NOPE") is None
    day = datetime.now(UTC).strftime("%Y-%m-%d")
    outcomes = [r["outcome"] for r in StateTable(device_settings.state_table).audit_of_day(day)]
    assert outcomes == ["unknown_device"]


# -- CLI -------------------------------------------------------------------------------------------


@pytest.fixture
def cli_env(device_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("OPSBOT_STATE_TABLE", device_settings.state_table)
    register(device_settings, load_event("device_registration"))
    return device_settings


def test_cli_activate_json_and_exit_codes(cli_env: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["device", "activate", SERIAL, CLIENT, "AC-BADBADBADBAD", "o@example.com", "--json"]) == 1
    wrong = json.loads(capsys.readouterr().out)
    assert wrong["ok"] is False and wrong["reason"] == "wrong_code"

    assert main(["device", "activate", SERIAL, CLIENT, CODE, "o@example.com", "--json"]) == 0
    out = capsys.readouterr().out
    assert json.loads(out)["ok"] is True and json.loads(out)["reason"] == "activated"
    assert CODE not in out

    assert main(["device", "activate", SERIAL, CLIENT, CODE, "o@example.com", "--json"]) == 1
    assert json.loads(capsys.readouterr().out)["reason"] == "already_activated"


def test_cli_json_says_unknown_device_and_locked(
    cli_env: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["device", "activate", "SN-NOPE", CLIENT, CODE, "o@example.com", "--json"]) == 1
    unknown = json.loads(capsys.readouterr().out)
    assert unknown["ok"] is False and unknown["reason"] == "unknown_device"
    reasons = []
    for _ in range(6):  # five wrong codes lock the device; the sixth attempt is refused as locked
        assert main(["device", "activate", SERIAL, CLIENT, "AC-BADBADBADBAD", "o@example.com", "--json"]) == 1
        reasons.append(json.loads(capsys.readouterr().out)["reason"])
    assert reasons[:5] == ["wrong_code"] * 5 and reasons[5] == "locked"
    # Locked: even the right code waits, and says so.
    assert main(["device", "activate", SERIAL, CLIENT, CODE, "o@example.com", "--json"]) == 1
    out = capsys.readouterr().out
    assert json.loads(out)["reason"] == "locked" and CODE not in out


def test_cli_reads_the_code_from_stdin(
    cli_env: Settings, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import io

    monkeypatch.setattr("sys.stdin", io.StringIO(CODE + "\n"))
    assert main(["device", "activate", SERIAL, CLIENT, "-", "o@example.com"]) == 0
    assert capsys.readouterr().out.startswith("activated: Device SN-D7F3C8947867")


def test_cli_bad_input_exits_with_usage_code(cli_env: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["device", "activate", SERIAL, CLIENT, CODE, "nope", "--json"]) == 2
    captured = capsys.readouterr()
    document = json.loads(captured.out)  # scripts get a document on stdout, the sentence on stderr
    assert (
        document["ok"] is False and document["reason"] == "usage" and "e-mail address" in document["message"]
    )
    assert "e-mail address" in captured.err and CODE not in captured.err + captured.out

    assert main(["device", "activate", SERIAL, CLIENT, CODE, "nope"]) == 2  # without --json: stderr only
    captured = capsys.readouterr()
    assert captured.out == "" and "e-mail address" in captured.err


@pytest.mark.parametrize(
    "argv",
    [
        [SERIAL, CLIENT, "AC-BADBADBADBAD", "o@example.com", "Kx7-pass-9981"],  # one too many
        [SERIAL, "Kx7-pass-9981", "o@example.com"],  # one missing
    ],
)
def test_cli_wrong_number_of_arguments_is_usage_without_repeating_them(
    cli_env: Settings,
    capsys: pytest.CaptureFixture[str],
    raw_item: Callable[[str, str], dict[str, Any] | None],
    argv: list[str],
) -> None:
    assert main(["device", "activate", *argv, "--json"]) == 2
    captured = capsys.readouterr()
    document = json.loads(captured.out)
    assert document["ok"] is False and document["reason"] == "usage"
    assert "SERIAL CLIENT_ID CODE EMAIL" in document["message"]
    assert "Kx7-pass-9981" not in captured.out + captured.err
    item = raw_item(SERIAL, CLIENT)
    assert item is not None and item["activated"] == {"S": "false"}


def test_cli_aws_error_is_a_json_document_and_exit_1(
    cli_env: Settings, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPSBOT_DEVICE_TABLE", "noSuchCatalog")
    assert main(["device", "activate", SERIAL, CLIENT, CODE, "o@example.com", "--json"]) == 1
    captured = capsys.readouterr()
    document = json.loads(captured.out)
    assert document == {"ok": False, "reason": "error", "message": document["message"]}
    assert "noSuchCatalog" in document["message"] and document["message"] in captured.err
    assert CODE not in captured.out + captured.err


def test_cli_masks_the_code_if_an_error_message_quotes_it(
    cli_env: Settings, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from bot.errors import AwsError

    def quoting(*args: Any, **kwargs: Any) -> Any:
        raise AwsError(f"DynamoDB refused the value {CODE}.")

    monkeypatch.setattr("bot.aws.devices.try_activate", quoting)
    assert main(["device", "activate", SERIAL, CLIENT, CODE, "o@example.com", "--json"]) == 1
    captured = capsys.readouterr()
    assert json.loads(captured.out)["message"] == "DynamoDB refused the value ••••••••."
    assert CODE not in captured.out + captured.err and "refused the value" in captured.err


def test_cli_show_list_deactivate(cli_env: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["device", "show", SERIAL, "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["devices"][0]["activationCode"] == "••••••••"

    register_many(cli_env, 4)
    assert main(["device", "list", "--limit", "2", "--json"]) == 0
    first = json.loads(capsys.readouterr().out)
    assert len(first["devices"]) == 2 and first["next"]
    assert main(["device", "list", "--all", "--limit", "2", "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["devices"]) == 5
    assert main(["device", "list", "--activated", "maybe"]) == 2
    capsys.readouterr()

    assert main(["device", "deactivate", SERIAL, CLIENT, "--json"]) == 0
    reset = json.loads(capsys.readouterr().out)
    assert re.fullmatch(r"AC-[0-9A-F]{20}", reset["newActivationCode"])
    assert main(["device", "list"]) == 0
    assert "SERIAL" in capsys.readouterr().out


# -- demo seed -------------------------------------------------------------------------------------


def test_seed_registers_fifty_devices_through_the_handler(device_settings: Settings) -> None:
    from bot.local.seeds import SeedContext
    from bot.local.seeds.device import seed

    ctx = SeedContext(
        settings=device_settings, state=StateTable(device_settings.state_table), now=datetime.now(UTC)
    )
    banner = seed(ctx)

    page = list_devices(device_settings, DeviceFilters(limit=100))
    assert len(page.devices) == 50
    for view in page.devices:
        assert re.fullmatch(r"SN-[0-9A-F]{12}", view.serial) and re.fullmatch(
            r"ID-[0-9A-F]{12}", view.client_id
        )
        assert view.type == "MySmartIoTDevice" and view.device.startswith("myThing")
    assert sum(v.activated for v in page.devices) == 1
    assert re.fullmatch(r"AC-[0-9A-F]{20}", ctx.facts["device.code"])
    text = "\n".join(banner)
    assert ctx.facts["device.serial"] in text and ctx.facts["device.code"] in text
    result = activate(
        device_settings,
        ctx.facts["device.serial"],
        ctx.facts["device.client_id"],
        ctx.facts["device.code"],
        "you@example.com",
        actor="U1",
    )
    assert result.ok


def test_cli_not_found_is_a_json_document_and_exit_1(
    cli_env: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    for argv in (["show", "SN-X", "--json"], ["deactivate", "SN-X", "ID-Y", "--json"]):
        assert main(["device", *argv]) == 1
        out, err = capsys.readouterr()
        document = json.loads(out)  # exactly one document
        assert document["ok"] is False and document["reason"] == "not-found"
        assert document["message"].startswith("No device has serial number `SN-X`") and "No device" in err
    assert main(["device", "show", "SN-X"]) == 1 and capsys.readouterr().out == ""
