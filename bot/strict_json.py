"""JSON settings read strictly: a key given twice in one object is an error, not the last one kept."""

from __future__ import annotations

import json
from typing import Any


class RepeatedKey(ValueError):
    """A JSON object names ``key`` twice. ``json.loads`` would keep the last silently: in a setting that
    someone edits by hand (a copy-pasted account, a second ``grants``), the first would vanish unseen."""

    def __init__(self, key: str) -> None:
        super().__init__(f"{key!r} is given twice in one object")
        self.key = key


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for key, value in pairs:
        if key in found:
            raise RepeatedKey(key)
        found[key] = value
    return found


def loads_unique(text: str) -> Any:
    """``json.loads``, raising ``RepeatedKey`` for a key repeated in any object (``JSONDecodeError`` as
    before for text that is not JSON)."""
    return json.loads(text, object_pairs_hook=_unique_keys)
