"""Demo data. Each capability has one module here with ``seed(ctx) -> list[str]``.

``seed`` creates the capability's tables and resources in the embedded AWS (moto server), feeds data
through the capability's real code paths (handlers, not hand-written items), and returns banner lines
that tell the demo user what to try (e.g. "/apilogs 9439989f-...").
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bot.aws.state import StateTable
from bot.config import Settings

# Order is the order of the demo banner.
SEED_MODULES: tuple[str, ...] = (
    "bot.local.seeds.apilogs",
    "bot.local.seeds.device",
    "bot.local.seeds.mail",
    "bot.local.seeds.dns",
    "bot.local.seeds.fanout",
    "bot.local.seeds.alarms",
    "bot.local.seeds.accounts",  # last: it adds a second account's data to what the others made
)


@dataclass
class SeedContext:
    settings: Settings
    state: StateTable
    now: datetime
    # The local Slack Web API server (bot.local.slack_api.LocalSlack) when the demo runs one; seeds that
    # post alerts send them there through the app's own Web API client.
    slack: Any = None
    # What seeds leave for each other and for tests (e.g. {"apilogs.request_id": "..."}).
    facts: dict[str, Any] = field(default_factory=dict)


def seed_all(ctx: SeedContext) -> list[str]:
    banner: list[str] = []
    for name in SEED_MODULES:
        banner.extend(importlib.import_module(name).seed(ctx))
    return banner
