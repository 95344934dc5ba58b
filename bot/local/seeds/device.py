"""Demo devices: fifty registrations sent through the real registration handler, as the seed post's
generator publishes them on the ``registration`` topic, and one of them activated."""

from __future__ import annotations

import os
import secrets

from bot.aws.clients import client
from bot.aws.devices import DEVICE_TABLE_DEFINITION
from bot.aws.state import create_table
from bot.core.device.commands import activate, registration_handler
from bot.local.seeds import SeedContext

DEVICE_COUNT = 50
DEVICE_TYPE = "MySmartIoTDevice"
ENDPOINT = "a1b2c3d4e5f6g7.iot.us-east-1.amazonaws.com"
REGISTRATION_TOPIC = "registration"
REGISTRATION_FUNCTION = "opsbot-device-registration"


def registration_payload(number: int) -> dict[str, str]:
    """One message like the post's generator: SN-/ID- and 12 hex digits, AC- and 20 hex digits."""
    return {
        "serialNumber": "SN-" + secrets.token_hex(6).upper(),
        "clientId": "ID-" + secrets.token_hex(6).upper(),
        "device": f"myThing{number}",
        "endpoint": ENDPOINT,
        "type": DEVICE_TYPE,
        "activationCode": "AC-" + secrets.token_hex(10).upper(),
        "activated": "false",
        "email": "not@registered.yet",
    }


def route_registrations(region: str) -> None:
    """The IoT rule the stack's IoTRule event creates: the registration topic to the registration function
    (what `/ops doctor` looks for)."""
    account = client("sts").get_caller_identity()["Account"]
    arn = f"arn:aws:lambda:{region}:{account}:function:{REGISTRATION_FUNCTION}"
    client("iot").create_topic_rule(
        ruleName="opsbot_device_registration",
        topicRulePayload={
            "sql": f"SELECT * FROM '{REGISTRATION_TOPIC}'",
            "awsIotSqlVersion": "2016-03-23",
            "ruleDisabled": False,
            "actions": [{"lambda": {"functionArn": arn}}],
        },
    )
    # The demo builds its Settings after seeding (the stack sets it from the function's name).
    os.environ.setdefault("OPSBOT_DEVICE_FUNCTION", REGISTRATION_FUNCTION)


def seed(ctx: SeedContext) -> list[str]:
    table = ctx.settings.device_table
    create_table(table, DEVICE_TABLE_DEFINITION)
    route_registrations(ctx.settings.region)
    handler = registration_handler(ctx.settings)
    payloads = [registration_payload(number) for number in range(1, DEVICE_COUNT + 1)]
    for payload in payloads:
        handler(payload, None)
    # One device already belongs to someone, so the list shows both states.
    owned = payloads[1]
    activate(
        ctx.settings,
        owned["serialNumber"],
        owned["clientId"],
        owned["activationCode"],
        "alice@example.com",
        actor="demo",
    )
    first = payloads[0]
    ctx.facts.update(
        {
            "device.serial": first["serialNumber"],
            "device.client_id": first["clientId"],
            "device.code": first["activationCode"],
            "device.activated_serial": owned["serialNumber"],
            "device.activated_client_id": owned["clientId"],
        }
    )
    return [
        f"/device: {DEVICE_COUNT} devices registered in {table} through the registration handler; try",
        f"  /device activate {first['serialNumber']} {first['clientId']} {first['activationCode']} "
        "you@example.com",
        f"  /device show {owned['serialNumber']}      /device list --activated no --limit 10",
    ]
