"""Shared terminal output: one JSON document for ``--json``, plain text otherwise."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Mapping
from datetime import date, datetime
from typing import Any


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        from bot.render.blocks import iso_time

        return iso_time(value)  # the CLI's one time format: ISO 8601 with the zone
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, set | frozenset | tuple):
        return sorted(value) if isinstance(value, set | frozenset) else list(value)
    if hasattr(value, "to_json"):
        return value.to_json()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def print_json(document: Any) -> None:
    """Exactly one JSON document on stdout (scripts parse it)."""
    sys.stdout.write(json.dumps(document, default=_default, indent=2, sort_keys=False) + "\n")


def emit(result: Any, as_text: Callable[[Any], str], *, as_json: bool) -> None:
    """``result`` as its JSON document (``--json``) or as the text ``as_text`` renders."""
    if as_json:
        print_json(result.to_json())
    else:
        print(as_text(result))


def read_json_files(paths: list[str]) -> list[Any]:
    """The JSON document of each path (``-``: stdin); a file that cannot be read or parsed is a usage error."""
    from pathlib import Path

    from bot.errors import UsageError

    documents = []
    for path in paths:
        try:
            text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
        except OSError as error:
            raise UsageError(f"Cannot read {path}: {error.strerror}.") from None
        except UnicodeDecodeError:
            raise UsageError(f"{path} is not UTF-8 text.") from None
        try:
            documents.append(json.loads(text))
        except ValueError as error:
            raise UsageError(f"{path} is not JSON: {error}.") from None
    return documents


def feed_files(
    paths: list[str],
    handle: Callable[[Any], Mapping[str, Any]],
    summary: Callable[[Mapping[str, Any]], str],
    *,
    as_json: bool,
) -> int:
    """``feed`` of an intake: each file's event through ``handle``, a report a file. Every file is read and
    parsed before the first is handled, so a bad file further down changes nothing."""
    reports = [handle(event) for event in read_json_files(paths)]
    if as_json:
        print_json({"batches": reports})
    else:
        for path, report in zip(paths, reports, strict=True):
            print(f"{path}: {summary(report)}")
    return 0


def use_colour(stream: Any = None) -> bool:
    stream = stream or sys.stdout
    # NO_COLOR disables colour only when non-empty (no-color.org): set but empty keeps it.
    return bool(getattr(stream, "isatty", lambda: False)()) and not os.environ.get("NO_COLOR")
