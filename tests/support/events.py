"""Sample events live as JSON files under tests/events/; this is the one way tests load them."""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

EVENTS_DIR = Path(__file__).resolve().parent.parent / "events"


@cache
def _read(name: str) -> Any:
    path = EVENTS_DIR / (name if name.endswith(".json") else f"{name}.json")
    return json.loads(path.read_text())


def load_event(name: str) -> Any:
    """A fresh copy of tests/events/<name>.json (callers may mutate it)."""
    return copy.deepcopy(_read(name))
