"""/device through signed requests into the real Bolt app and the local Slack Web API server."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

import pytest

from bot.aws import clients
from bot.aws.devices import DEVICE_TABLE_DEFINITION
from bot.aws.dynamo import from_item, to_item
from bot.aws.state import create_table
from bot.config import Settings
from bot.core.device.commands import register
from bot.listeners import device as listener
from bot.local.slack_api import LocalSlack
from bot.render import device as render
from tests.support.events import load_event
from tests.support.slack import ALICE, BOB, CAROL, SlackHarness

SERIAL, CLIENT, CODE = "SN-D7F3C8947867", "ID-91B2F06B3F05", "AC-9BE75CD0F1543D44C9AB"
WRONG = "AC-BADBADBADBADBADBAD0"


@pytest.fixture
def catalog(state_table: str) -> None:
    create_table("iotCatalog", DEVICE_TABLE_DEFINITION)
    settings = Settings.from_env({"AWS_REGION": "us-east-1", "OPSBOT_STATE_TABLE": state_table})
    assert register(settings, load_event("device_registration")).ok


def stored() -> dict[str, Any]:
    item = clients.client("dynamodb").get_item(
        TableName="iotCatalog", Key=to_item({"serialNumber": SERIAL, "clientId": CLIENT})
    )["Item"]
    return from_item(item)


def audit_items() -> list[dict[str, Any]]:
    items = clients.client("dynamodb").scan(TableName="opsbot-state")["Items"]
    return [from_item(i) for i in items if i["pk"]["S"].startswith("audit#")]


def everything_slack_saw(server: LocalSlack) -> str:
    return json.dumps([call.params for call in server.calls], default=str) + json.dumps(
        [(m.text, m.blocks) for m in server.visible()], default=str
    )


def test_help_lists_the_subcommands(harness: SlackHarness, catalog: None) -> None:
    ack = harness.command("/device", "help")
    assert ack.status == 200 and ack.json["response_type"] == "ephemeral"
    for word in ("activate", "show", "list", "deactivate"):
        assert f"/device {word}" in ack.text
    detail = harness.command("/device", "help activate")
    assert "never shown, logged or stored" in detail.text and "needs a policy grant" in json.dumps(
        detail.json
    )


def test_activation_end_to_end_without_the_code_anywhere(
    harness: SlackHarness, catalog: None, slack_server: LocalSlack, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)

    harness.command("/device", f"activate {SERIAL} {CLIENT} {WRONG} owner@example.com")
    assert "That is not the activation code" in harness.last().text
    harness.command(
        "/device", f"activate {SERIAL} {CLIENT} {CODE} <mailto:owner@example.com|owner@example.com>"
    )
    answer = harness.last()

    assert answer.kind == "ephemeral" and answer.ephemeral_to == ALICE[0]
    assert "is activated and registered to owner@example.com" in answer.text
    item = stored()
    assert item["activated"] == "true" and item["activatedBy"] == ALICE[0] and "activationCode" not in item

    records = [r for r in audit_items() if r.get("action") == "device.activate"]
    assert sorted(r["outcome"] for r in records) == ["activated", "wrong_code"]
    assert all("[redacted]" in r["args"] for r in records)
    for secret in (CODE, WRONG):
        assert secret not in json.dumps(audit_items())
        assert secret not in caplog.text
        assert secret not in everything_slack_saw(slack_server)


def test_each_answer_is_distinct(harness: SlackHarness, catalog: None) -> None:
    harness.command("/device", f"activate SN-000000000000 ID-000000000000 {CODE} a@example.com")
    assert "No device has serial number SN-000000000000" in harness.last().text
    harness.command("/device", f"activate {SERIAL} {CLIENT} {CODE} a@example.com")
    harness.command("/device", f"activate {SERIAL} {CLIENT} {CODE} b@example.com")
    assert "already activated" in harness.last().text


def test_the_fifth_wrong_code_says_the_device_is_now_locked_and_until_when(
    harness: SlackHarness, catalog: None
) -> None:
    for _ in range(5):
        harness.command("/device", f"activate {SERIAL} {CLIENT} {WRONG} a@example.com")
    fifth = harness.last().text
    assert "the device is now locked until " in fifth and " UTC (15 minutes)" in fifth
    harness.command("/device", f"activate {SERIAL} {CLIENT} {CODE} a@example.com")
    assert "is locked after too many wrong codes until " in harness.last().text


def test_a_person_without_the_grant_is_denied_and_nothing_changes(
    harness: SlackHarness, catalog: None
) -> None:
    harness.command("/device", f"activate {SERIAL} {CLIENT} {CODE} bob@example.com", user=BOB)
    assert "You may not run `device.activate`" in harness.last(BOB).text
    assert stored()["activated"] == "false"
    harness.command("/device", f"deactivate {SERIAL} {CLIENT}", user=BOB)
    assert "You may not run `device.deactivate`" in harness.last(BOB).text
    assert stored()["activationCode"] == CODE


def test_incomplete_or_malformed_arguments_are_refused_in_the_ack(
    harness: SlackHarness, catalog: None
) -> None:
    partial = harness.command("/device", f"activate {SERIAL} {CODE}")
    assert "Give all four" in partial.text and CODE not in partial.text
    bad_email = harness.command("/device", f"activate {SERIAL} {CLIENT} {CODE} not-an-address")
    assert "e-mail address" in bad_email.text and CODE not in bad_email.text
    assert stored()["activated"] == "false"


PLAIN_CODE = "Kx7-pass-9981"  # a code in no recognisable format: only the argument spec can mask it


@pytest.mark.parametrize(
    ("text", "outcome"),
    [
        (f"activate {SERIAL} {PLAIN_CODE} owner@example.com", "usage"),  # the client id forgotten
        (f"activate {SERIAL} {CLIENT} owner@example.com {PLAIN_CODE}", "usage"),  # code and e-mail swapped
        (f"activate {SERIAL} {CLIENT} {PLAIN_CODE} owner@example.com", "activated"),  # right
        # Client id and code swapped: a well-formed attempt on a device that does not exist.
        (f"activate {SERIAL} {PLAIN_CODE} {CLIENT} owner@example.com", "unknown_device"),
        (f"activate {SERIAL} {CLIENT} {WRONG} owner@example.com {PLAIN_CODE}", "usage"),  # one too many
        (f"activate {SERIAL} {CLIENT} --{PLAIN_CODE} owner@example.com", "usage"),  # looks like an option
        (f'activate {SERIAL} {CLIENT} "{PLAIN_CODE} owner@example.com', "usage"),  # a quote not closed
        (f"activate {SERIAL} {CLIENT} '{PLAIN_CODE}' 'owner@example.com", "usage"),
    ],
)
def test_a_code_in_any_position_stays_out_of_the_audit_and_the_log(
    harness: SlackHarness,
    state_table: str,
    slack_server: LocalSlack,
    caplog: pytest.LogCaptureFixture,
    text: str,
    outcome: str,
) -> None:
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="opsbot")  # building the app pins it to the root's level
    create_table("iotCatalog", DEVICE_TABLE_DEFINITION)
    settings = Settings.from_env({"AWS_REGION": "us-east-1", "OPSBOT_STATE_TABLE": state_table})
    assert register(settings, {**load_event("device_registration"), "activationCode": PLAIN_CODE}).ok
    caplog.clear()

    harness.command("/device", text)

    (record,) = audit_items()  # usage errors are audited too, under the bare command
    assert record["outcome"] == outcome
    assert PLAIN_CODE not in json.dumps(record)
    assert "opsbot.audit" in caplog.text  # the capture did see the audit's log line
    assert PLAIN_CODE not in caplog.text
    assert record["args"].startswith(f"activate {SERIAL}")
    if outcome == "activated":  # the device is named in the record all the same
        assert f"{SERIAL} {CLIENT}" in record["detail"]
    elif outcome == "unknown_device":
        assert SERIAL in record["detail"] and CLIENT not in record["detail"]
        assert "No device has serial number" in harness.last().text
    else:
        assert harness.last().text.startswith(":warning:")
    assert PLAIN_CODE not in everything_slack_saw(slack_server)
    assert stored()["activated"] == ("true" if outcome == "activated" else "false")


def test_a_swapped_client_id_and_code_are_not_repeated(
    harness: SlackHarness, catalog: None, slack_server: LocalSlack, caplog: pytest.LogCaptureFixture
) -> None:
    """The seed post's codes: AC- and hex, in the client id's place (the audit's pattern would catch those
    in the record, not in the answer or the log)."""
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="opsbot")  # building the app pins it to the root's level
    harness.command("/device", f"activate {SERIAL} {CODE} {CLIENT} owner@example.com")
    answer = harness.last().text
    assert "No device has serial number" in answer and "that client id" in answer
    assert f"Activation of {SERIAL} by {ALICE[0]}: unknown_device" in caplog.text  # by its serial only
    (record,) = audit_items()
    assert record["outcome"] == "unknown_device"
    for secret in (CODE, CLIENT):  # the client id was typed in the code's place: it may be a code too
        assert secret not in caplog.text
        assert secret not in json.dumps(record)
        assert secret not in everything_slack_saw(slack_server)


def test_a_code_in_the_client_id_field_of_the_form_stays_secret(
    harness: SlackHarness,
    state_table: str,
    slack_server: LocalSlack,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="opsbot")  # building the app pins it to the root's level
    create_table("iotCatalog", DEVICE_TABLE_DEFINITION)
    settings = Settings.from_env({"AWS_REGION": "us-east-1", "OPSBOT_STATE_TABLE": state_table})
    assert register(settings, {**load_event("device_registration"), "activationCode": PLAIN_CODE}).ok
    harness.command("/device", "activate")
    (opened,) = slack_server.calls_to("views.open")
    view = opened.params["view"]
    view = json.loads(view) if isinstance(view, str) else view
    caplog.clear()

    harness.submit(
        view,
        {
            "device_serial": SERIAL,
            "device_client_id": PLAIN_CODE,
            "device_code": CLIENT,
            "device_email": "o@example.com",
        },
    )

    assert "No device has serial number" in harness.last().text
    (record,) = [r for r in audit_items() if r.get("kind") == "view"]
    assert record["outcome"] == "unknown_device" and SERIAL in record["args"]
    assert json.loads(record["args"])["device_serial"] == SERIAL
    assert "o@example.com" not in record["args"]  # every field but the serial is masked
    for secret in (PLAIN_CODE, CLIENT):
        assert secret not in json.dumps(record)
        assert secret not in caplog.text
        assert secret not in json.dumps([harness.last().text, harness.last().blocks])
    assert PLAIN_CODE not in everything_slack_saw(slack_server)  # (the form's placeholders show CLIENT)
    assert stored()["activated"] == "false"


def test_activation_form(harness: SlackHarness, catalog: None, slack_server: LocalSlack) -> None:
    harness.command("/device", "activate")
    (opened,) = slack_server.calls_to("views.open")
    view = opened.params["view"]
    view = json.loads(view) if isinstance(view, str) else view
    assert view["callback_id"] == listener.MODAL_CALLBACK == render.MODAL_CALLBACK
    assert json.loads(view["private_metadata"]) == {"channel": "C0OPS"}

    refused = harness.submit(
        view,
        {"device_serial": SERIAL, "device_client_id": CLIENT, "device_code": CODE, "device_email": "nope"},
    )
    assert refused.json["response_action"] == "errors" and "device_email" in refused.json["errors"]
    assert stored()["activated"] == "false"

    harness.submit(
        view,
        {
            "device_serial": SERIAL,
            "device_client_id": CLIENT,
            "device_code": CODE,
            "device_email": "o@example.com",
        },
    )
    assert "is activated and registered to o@example.com" in harness.last().text
    rejected, accepted = sorted(
        (r for r in audit_items() if r.get("kind") == "view"), key=lambda r: r["time"]
    )
    assert rejected["outcome"] == "usage"  # the submission the form turned back is audited too
    assert accepted["outcome"] == "activated"
    assert CODE not in json.dumps(rejected) + json.dumps(accepted)
    assert CODE not in everything_slack_saw(slack_server).replace(json.dumps(CODE), "")


def test_list_pages_with_the_more_button(harness: SlackHarness, catalog: None, state_table: str) -> None:
    settings = Settings.from_env({"AWS_REGION": "us-east-1", "OPSBOT_STATE_TABLE": state_table})
    for n in range(11):
        payload = {
            **load_event("device_registration"),
            "serialNumber": f"SN-{n:012X}",
            "clientId": f"ID-{n:012X}",
        }
        assert register(settings, payload).ok

    harness.command("/device", "list --limit 5")
    first = harness.last()
    assert "5 devices from iotCatalog (more available)" in first.text
    harness.click(first, listener.ACTION_MORE, user=BOB)  # reading needs no grant
    second = harness.last(BOB)
    assert "(continued)" in json.dumps(second.blocks)
    shown = {
        b["text"]["text"].split("`")[1] for m in (first, second) for b in m.blocks if "`SN-" in json.dumps(b)
    }
    assert len(shown) == 10
    assert listener.ACTION_MORE == render.ACTION_MORE


def test_show_and_deactivate(harness: SlackHarness, catalog: None, slack_server: LocalSlack) -> None:
    harness.command("/device", f"show {SERIAL}")
    shown = harness.last()
    assert SERIAL in json.dumps(shown.blocks) and CODE not in json.dumps(shown.blocks)

    harness.command("/device", f"deactivate {SERIAL} {CLIENT}")
    answer = harness.last()
    new_code = stored()["activationCode"]
    assert answer.kind == "ephemeral" and answer.ephemeral_to == ALICE[0]
    assert new_code in json.dumps(answer.blocks) and new_code not in answer.text
    (record,) = [r for r in audit_items() if r.get("action") == "device.deactivate"]
    assert record["outcome"] == "reset" and new_code not in json.dumps(record)

    harness.command("/device", f"deactivate {SERIAL} ID-NOPE")
    assert "nothing was changed" in harness.last().text


def test_unknown_subcommand_gets_usage(harness: SlackHarness, catalog: None) -> None:
    ack = harness.command("/device", "frobnicate")
    assert "has no subcommand `frobnicate`" in ack.text


def test_owners_are_masked_for_callers_without_the_owners_grant(harness: SlackHarness, catalog: None) -> None:
    harness.command("/device", f"activate {SERIAL} {CLIENT} {CODE} jane.doe@example.com")
    assert "is activated" in harness.last().text

    harness.command("/device", f"show {SERIAL}")
    assert "jane.doe@example.com" in json.dumps(harness.last().blocks)  # alice: on call, granted "*"
    harness.command("/device", f"show {SERIAL}", user=BOB)
    shown = json.dumps(harness.last(BOB).blocks, ensure_ascii=False)
    assert "j•••@example.com" in shown and "jane.doe" not in shown

    harness.command("/device", "list --activated yes --limit 1", user=BOB)
    listed = json.dumps(harness.last(BOB).blocks, ensure_ascii=False)
    assert "j•••@example.com" in listed and "jane.doe" not in listed
    harness.command("/device", "list --activated yes --limit 1")
    assert "jane.doe@example.com" in json.dumps(harness.last().blocks)

    harness.command("/ops", "whoami", user=BOB)
    assert "`device.owners`" in harness.last(BOB).text or "device.owners" in json.dumps(
        harness.last(BOB).blocks
    )


def test_masking_keeps_the_first_letter_and_the_domain() -> None:
    from bot.core.device.commands import MASK, mask_email

    assert mask_email("jane.doe@example.com") == "j•••@example.com"
    assert mask_email("x@y.org") == "x•••@y.org"
    assert mask_email("not-an-address") == MASK


def test_the_forms_answer_reaches_a_user_in_a_channel_the_bot_is_not_in(
    harness: SlackHarness, catalog: None, slack_server: LocalSlack
) -> None:
    """A form has no response URL: where Slack refuses the bot's ephemeral (a private channel it is not
    in), the answer comes as a direct message instead of being lost."""
    harness.command("/device", "activate")
    (opened,) = slack_server.calls_to("views.open")
    view = opened.params["view"]
    view = json.loads(view) if isinstance(view, str) else view
    slack_server.bot_absent.add(json.loads(view["private_metadata"])["channel"])
    values = {
        "device_serial": SERIAL,
        "device_client_id": CLIENT,
        "device_code": CODE,
        "device_email": "o@example.com",
    }
    harness.submit(view, values)
    answer = harness.last()
    assert answer.channel == ALICE[0] and answer.kind == "message"
    assert "is activated and registered to o@example.com" in answer.text
    assert stored()["activated"] == "true"
    # A second submission fails (already activated): the failure is delivered the same way.
    harness.submit(view, values)
    assert harness.last().channel == ALICE[0] and "already activated" in harness.last().text


def test_deactivate_masks_the_previous_owner_without_the_owners_grant(
    make_harness: Callable[..., SlackHarness], catalog: None
) -> None:
    policy = {"rules": [{"allow": ["device.activate", "device.deactivate"], "users": [CAROL[0]]}]}
    harness = make_harness(OPSBOT_POLICY=json.dumps(policy))
    harness.command("/device", f"activate {SERIAL} {CLIENT} {CODE} jane.doe@example.com", user=CAROL)
    assert "is activated" in harness.last(CAROL).text
    harness.command("/device", f"deactivate {SERIAL} {CLIENT}", user=CAROL)
    answer = harness.last(CAROL)
    shown = answer.text + json.dumps(answer.blocks, ensure_ascii=False)
    assert "registered to j•••@example.com" in shown and "jane.doe" not in shown
    assert stored()["activated"] == "false"
