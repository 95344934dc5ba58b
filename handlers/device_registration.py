"""IoT rule on the MQTT topic ``registration`` -> the ``iotCatalog`` table (see bot.core.device)."""

from __future__ import annotations

from bot.core.device import registration_handler

handler = registration_handler()
