"""The mutating flows of opsbot, each as a fresh world, one interaction, and what can be observed after it.

A flow's ``setup`` builds its tables and data in a fresh moto and returns the interaction to run (a slash
command, or a click on a button of a message the setup produced); ``observe`` reads the state the flow is
about, including counters that would show a decision applied twice.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

from bot.aws import clients
from bot.aws.dynamo import from_item, to_item
from tests.support.slack import ALICE, SlackHarness

ADDRESS = "jane.doe@example.com"
ALERTS = "C0ALERTS"
SERIAL, CLIENT, CODE = "SN-D7F3C8947867", "ID-91B2F06B3F05", "AC-9BE75CD0F1543D44C9AB"
KINESIS_ARN = "arn:aws:kinesis:us-east-1:123456789012:stream/inputStream"

Act = Callable[[SlackHarness], Any]


@dataclass(frozen=True)
class Flow:
    name: str
    env: dict[str, str]
    setup: Callable[[SlackHarness], Act]
    observe: Callable[[SlackHarness], Any]
    # A second run after a success: "again" (a command run again changes nothing more) or "refused" (a
    # button's idempotency lock refuses the second click).
    button: bool = False
    # Runs in the fresh moto before the app is built; returns more environment (e.g. a DNS master's
    # address). What it starts is stopped when the stack closes.
    prepare: Callable[[ExitStack], dict[str, str]] | None = field(default=None)


# -- mail ------------------------------------------------------------------------------------------


def _mail_tables(_: SlackHarness) -> None:
    from bot.aws.mailing import create_mailing_table

    create_mailing_table("mailing")


def _bounce(harness: SlackHarness, event: str = "sns_ses_bounce_permanent") -> None:
    from bot.intake.ses_feedback import SesFeedbackApp
    from tests.support.events import load_event

    _mail_tables(harness)
    SesFeedbackApp(harness.settings).handle(load_event(event))


def _mail_state(harness: SlackHarness) -> Any:
    from bot.aws import mailing
    from bot.core.mail.state import MERGE_STATE

    item = mailing.get_address(harness.settings.mailing_table, ADDRESS) or {}
    merge_state = json.loads(str(item.get(MERGE_STATE) or "{}"))
    # The history holds one entry per event applied: a decision applied twice would show as two.
    return {
        "state": item.get("state"),
        "sticky": item.get("sticky"),
        "events": len(merge_state.get("history", [])),
    }


def _mail_command(subcommand: str) -> Callable[[SlackHarness], Act]:
    def setup(harness: SlackHarness) -> Act:
        _bounce(harness, "sns_ses_bounce_permanent" if subcommand == "reenable" else "sns_ses_delivery")
        return lambda h: h.command("/mail", f"{subcommand} {ADDRESS}")

    return setup


def _mail_button(action_id: str) -> Callable[[SlackHarness], Act]:
    def setup(harness: SlackHarness) -> Act:
        _bounce(harness)
        # A copy as a second client would hold it: the stored message changes when the first click lands.
        alert = copy.deepcopy(harness.slack.visible(ALERTS)[-1])
        return lambda h: h.click(alert, action_id)

    return setup


# -- device ----------------------------------------------------------------------------------------


def _catalog(harness: SlackHarness) -> None:
    from bot.aws.devices import DEVICE_TABLE_DEFINITION
    from bot.aws.state import create_table
    from bot.core.device.commands import register
    from tests.support.events import load_event

    create_table("iotCatalog", DEVICE_TABLE_DEFINITION)
    assert register(harness.settings, load_event("device_registration")).ok


def _device_state(_: SlackHarness) -> Any:
    item = clients.client("dynamodb").get_item(
        TableName="iotCatalog", Key=to_item({"serialNumber": SERIAL, "clientId": CLIENT})
    )["Item"]
    device = from_item(item)
    return {
        "activated": device.get("activated") or device.get("activationStatus"),
        "email": device.get("email"),
        "code": bool(device.get("activationCode") or device.get("codeHash")),
    }


def _device_activate(harness: SlackHarness) -> Act:
    _catalog(harness)
    return lambda h: h.command("/device", f"activate {SERIAL} {CLIENT} {CODE} owner@example.com")


def _device_deactivate(harness: SlackHarness) -> Act:
    _catalog(harness)
    harness.command("/device", f"activate {SERIAL} {CLIENT} {CODE} owner@example.com")
    return lambda h: h.command("/device", f"deactivate {SERIAL} {CLIENT}")


# -- fanout ----------------------------------------------------------------------------------------


def _fanout_table(harness: SlackHarness, *, active: bool) -> None:
    from bot.aws.fanout import FANOUT_TABLE_DEFINITION, register_like_cli
    from bot.aws.state import create_table

    create_table("fanoutTargets", FANOUT_TABLE_DEFINITION)
    register_like_cli(
        "fanoutTargets",
        source_arn=KINESIS_ARN,
        target_id="replica",
        target_type="kinesis",
        destination="out",
        active=active,
    )


def _fanout_state(_: SlackHarness) -> Any:
    items = clients.client("dynamodb").scan(TableName="fanoutTargets")["Items"]
    return sorted((str(from_item(i)["id"]), bool(from_item(i).get("active"))) for i in items)


def _fanout_command(activate: bool) -> Callable[[SlackHarness], Act]:
    def setup(harness: SlackHarness) -> Act:
        _fanout_table(harness, active=not activate)
        word = "activate" if activate else "deactivate"
        return lambda h: h.command("/fanout", f"{word} inputStream replica")

    return setup


def _fanout_button(activate: bool) -> Callable[[SlackHarness], Act]:
    def setup(harness: SlackHarness) -> Act:
        from bot.render.fanout import ACTION_ACTIVATE, ACTION_DEACTIVATE

        _fanout_table(harness, active=not activate)
        harness.command("/fanout", "list")
        listing = copy.deepcopy(harness.last(ALICE))
        action = ACTION_ACTIVATE if activate else ACTION_DEACTIVATE
        return lambda h: h.click(listing, action)

    return setup


def _hooked(enabled: bool) -> None:
    from tests.fanout.conftest import create_function, create_stream, hook

    create_stream("inputStream")
    create_function()
    hook(KINESIS_ARN, enabled=enabled)


def _hook_state(_: SlackHarness) -> Any:
    mappings = clients.client("lambda").list_event_source_mappings(FunctionName="fanout")[
        "EventSourceMappings"
    ]
    return sorted((m["EventSourceArn"], m["State"]) for m in mappings)


def _fanout_pause_button(harness: SlackHarness) -> Act:
    """`/fanout pause` shows the backlog and a Pause button; the click pauses."""
    from bot.render.fanout import ACTION_PAUSE

    _fanout_table(harness, active=True)
    _hooked(enabled=True)
    harness.command("/fanout", "pause inputStream")
    preview = copy.deepcopy(harness.last(ALICE))
    return lambda h: h.click(preview, ACTION_PAUSE)


def _fanout_resume_command(harness: SlackHarness) -> Act:
    _fanout_table(harness, active=True)
    _hooked(enabled=False)
    return lambda h: h.command("/fanout", "resume inputStream")


# -- dns -------------------------------------------------------------------------------------------

DOMAIN = "example.com"
DNS_RECORDS = ["www 300 IN A 192.0.2.10", "api 60 IN CNAME www", '@ 300 IN TXT "v=spf1 -all"']


def _dns_world(stack: ExitStack) -> dict[str, str]:
    from bot.local.dns_master import LocalMaster, zone_text
    from tests.dns.support import create_hosted_zone

    master = LocalMaster(zone_text(DOMAIN, 100, DNS_RECORDS), DOMAIN).start()
    stack.callback(master.stop)
    zones = [{"domain": DOMAIN, "master": str(master.address), "zone_id": create_hosted_zone(DOMAIN)}]
    return {"OPSBOT_DNS_ZONES": json.dumps(zones)}


def _dns_apply(harness: SlackHarness) -> Act:
    from bot.render.dns import ACTION_APPLY

    harness.command("/dns", f"resync {DOMAIN}")
    preview = copy.deepcopy(
        next(m for m in reversed(harness.seen_by(ALICE)) if "DNS resync" in json.dumps(m.blocks))
    )
    return lambda h: h.click(preview, ACTION_APPLY)


def _dns_state(harness: SlackHarness) -> Any:
    from tests.dns.support import list_all

    zone_id = json.loads(harness.settings.dns_zones_json)[0]["zone_id"]
    return sorted(
        (r["Name"], r["Type"], json.dumps(r.get("ResourceRecords", []), sort_keys=True))
        for r in list_all(zone_id)
        if r["Type"] not in ("SOA", "NS")
    )


# -- alarms ----------------------------------------------------------------------------------------

ALARM_KEY = "arn:aws:cloudwatch:us-east-1:123456789012:alarm:shop-api-5xx"


def _alarm_button(action_id: str) -> Callable[[SlackHarness], Act]:
    """The alarm's post (the intake, with a canned correlation: the flow is about the button, and a real
    one would only add log reads to every case), then a click on Acknowledge or Mute 1h."""

    def setup(harness: SlackHarness) -> Act:
        from bot.intake.alarms import AlarmsApp
        from tests.alarms.conftest import FakeFind, sample

        AlarmsApp(harness.settings, find_errors=FakeFind(), graph=None).handle(
            sample("sns_alarm_apigateway.json")
        )
        post = copy.deepcopy(harness.slack.visible(ALERTS)[-1])
        return lambda h: h.click(post, action_id)

    return setup


def _alarm_state(harness: SlackHarness) -> Any:
    from bot.aws import alarms as aws_alarms

    item = aws_alarms.episode_get(harness.settings.state_table, ALARM_KEY) or {}
    # Who acknowledged, and whether it is muted (the time it ends moves with the clock).
    return {"ackedBy": item.get("ackedBy"), "muted": bool(item.get("mutedUntil")), "state": item.get("state")}


MAIL_ENV = {"OPSBOT_ALERT_CHANNEL": ALERTS}

FLOWS = [
    Flow("mail reenable (command)", MAIL_ENV, _mail_command("reenable"), _mail_state),
    Flow("mail suppress (command)", MAIL_ENV, _mail_command("suppress"), _mail_state),
    Flow("mail reenable (alert button)", MAIL_ENV, _mail_button("mail:reenable"), _mail_state, button=True),
    Flow(
        "mail keep disabled (alert button)", MAIL_ENV, _mail_button("mail:suppress"), _mail_state, button=True
    ),
    Flow("device activate (command)", {}, _device_activate, _device_state),
    Flow("device deactivate (command)", {}, _device_deactivate, _device_state),
    Flow("fanout activate (command)", {}, _fanout_command(True), _fanout_state),
    Flow("fanout deactivate (command)", {}, _fanout_command(False), _fanout_state),
    Flow("fanout activate (button)", {}, _fanout_button(True), _fanout_state, button=True),
    Flow("fanout deactivate (button)", {}, _fanout_button(False), _fanout_state, button=True),
    Flow("fanout pause (button)", {}, _fanout_pause_button, _hook_state, button=True),
    Flow("fanout resume (command)", {}, _fanout_resume_command, _hook_state),
    Flow("dns apply (button)", {}, _dns_apply, _dns_state, button=True, prepare=_dns_world),
    Flow("alarm acknowledge (button)", MAIL_ENV, _alarm_button("alarms:ack"), _alarm_state, button=True),
    Flow("alarm mute 1h (button)", MAIL_ENV, _alarm_button("alarms:mute"), _alarm_state, button=True),
]
