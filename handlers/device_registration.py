"""IoT rule on the MQTT topic ``registration`` -> the ``iotCatalog`` table (see bot.core.device.commands)."""

from __future__ import annotations

from bot.core.device.commands import registration_handler

handler = registration_handler()
