"""Times as people type them without quotes: ``--since 2h ago``, ``--until 2024-05-01 12:00``.

A shell (and Slack's text) splits those into several words, and a parser that takes one word per value
then finds an unexpected ``ago``. These helpers put the words of a time value back together before the
strict parse; ``bot.listeners.args.parse`` applies them to flags of kind ``time`` and the CLI to its
time options. Pure and small: they run in Slack's ack path.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence

TIME_FLAGS = ("since", "until")  # the CLI's time options

_UNIT_WORDS = {
    "s", "sec", "secs", "second", "seconds",
    "m", "min", "mins", "minute", "minutes",
    "h", "hr", "hrs", "hour", "hours",
    "d", "day", "days", "w", "week", "weeks",
}  # fmt: skip
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_DURATION = re.compile(r"(?:\d+(?:\.\d+)?[a-z]+)+")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_CLOCK = re.compile(r"\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:z|[+-]\d{2}:?\d{2})?")


def _is_duration(word: str) -> bool:
    return bool(_DURATION.fullmatch(word)) and all(
        unit in _UNIT_WORDS for unit in re.findall(r"[a-z]+", word)
    )


def time_word_count(words: Sequence[str]) -> int:
    """How many of ``words`` (at least the first) make one time value: ``2h ago``, ``2 hours ago``,
    ``1h 30m ago``, ``2024-05-01 12:00:00``. An id or another argument is never a time word."""
    if not words:
        return 0
    # "... ago" a few words on is one time, even with a word we do not know ("2 parsecs ago"): the
    # time parser then says what is wrong with it, which helps more than "unexpected 'parsecs'".
    for index, word in enumerate(words[1:4], start=1):
        if word.startswith("--"):
            break
        if word.lower() == "ago":
            return index + 1
    value = [words[0].lower()]
    for word in (w.lower() for w in words[1:]):
        last = value[-1]
        if word == "ago":
            if last == "ago":
                break
            value.append(word)
            break
        if last == "ago":
            break
        continues = (word in _UNIT_WORDS and _NUMBER.fullmatch(last)) or (
            (_is_duration(word) or _NUMBER.fullmatch(word)) and (_is_duration(last) or last in _UNIT_WORDS)
        )
        # A date and a time of day typed apart ("2024-05-01 12:00").
        clock = _CLOCK.fullmatch(word) and _DATE.fullmatch(last) and len(value) == 1
        if continues or clock:
            value.append(word)
        else:
            break
    # A trailing bare number is not part of the time ("--since 2h 30" is a typo, not 2h30s).
    while len(value) > 1 and _NUMBER.fullmatch(value[-1]) and not _CLOCK.fullmatch(value[-1]):
        value.pop()
    return len(value)


def take_time(words: Sequence[str]) -> tuple[str, list[str]]:
    """The time value at the start of ``words`` (joined) and the words after it."""
    count = time_word_count(words)
    return " ".join(words[:count]), list(words[count:])


def join_time_values(tokens: Sequence[str], flags: Collection[str] = TIME_FLAGS) -> list[str]:
    """``--since 2h ago`` -> ``--since``, ``2h ago``: the words of each time flag's value in one token."""
    out: list[str] = []
    index = 0
    while index < len(tokens):
        token = tokens[index]
        index += 1
        if token == "--":
            out.extend(tokens[index - 1 :])
            break
        name, eq, inline = token.removeprefix("--").partition("=")
        if not token.startswith("--") or name.lower() not in flags:
            out.append(token)
            continue
        if eq:
            count = time_word_count([inline, *tokens[index:]])
            out.append(f"{token.partition('=')[0]}=" + " ".join([inline, *tokens[index : index + count - 1]]))
            index += count - 1
            continue
        out.append(token)
        count = time_word_count(tokens[index:])
        if count:
            out.append(" ".join(tokens[index : index + count]))
            index += count
    return out
