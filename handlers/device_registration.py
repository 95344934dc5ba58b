"""IoT rule on the MQTT topic ``registration`` -> the ``iotCatalog`` table (see bot.core.device.commands)."""

from __future__ import annotations

from bot.aws.targets import in_event_account
from bot.core.device.commands import registration_handler
from bot.observability import lambda_entry

handler = lambda_entry(in_event_account(registration_handler(), "device-registration"), "device-registration")
