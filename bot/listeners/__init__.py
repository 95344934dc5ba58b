"""Slack glue: one module per slash command, each with ``register(app)``."""

from __future__ import annotations

import importlib
from typing import Any

# Order is the order of `/ops help`.
LISTENER_MODULES: tuple[str, ...] = (
    "bot.listeners.ops",
    "bot.listeners.apilogs",
    "bot.listeners.apilogs_ids",
    "bot.listeners.mail",
    "bot.listeners.device",
    "bot.listeners.dns",
    "bot.listeners.fanout",
    "bot.listeners.alarms",  # buttons only (alarm posts); no slash command
)


def register_all(app: Any) -> None:
    from bot.listeners.framework import register_link_buttons

    for name in LISTENER_MODULES:
        importlib.import_module(name).register(app)
    register_link_buttons(app)
