"""Errors that carry a sentence for the person who caused or can fix them.

Everything the bot shows a user goes through one of these; anything else is a bug and is reported with a
reference id instead of its text (see ``bot.listeners.framework``).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence


class OpsbotError(Exception):
    """A failure with a message fit to show in Slack or on a terminal."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} {self.hint}" if self.hint else self.message


class UsageError(OpsbotError):
    """Bad input: nothing was changed, the message says what was expected."""

    exit_code = 2


class NotFoundError(UsageError):
    """What was asked about does not exist (a device, a fan-out target, an address with no record).

    A usage error in Slack (the sentence says what was looked for); the CLI exits 1 for it, as for any
    answer that found nothing, keeping 2 for input it could not read."""

    exit_code = 1


class ConfigError(OpsbotError):
    """opsbot itself is configured wrongly (environment variable, policy, table name)."""

    exit_code = 3


class NotAllowedError(OpsbotError):
    """The policy does not allow this caller to run this action."""

    exit_code = 4


class AwsError(OpsbotError):
    """An AWS call failed; the message says what to fix (permission, table name, region)."""

    def __init__(self, message: str, *, code: str = "", operation: str = "", hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.code = code
        self.operation = operation


# A message repeats at most this many of the words someone typed, and at most this much of each word: the whole message must fit Slack's limits,
# and a pasted wall of text would otherwise crowd out the explanation.
ECHO_COUNT = 5
ECHO_LIMIT = 80


# Characters never shown as they are: controls (Cc: NUL, escape sequences, a carriage return), format
# characters (Cf: the bidi overrides that make text read differently from what it is, zero-width ones),
# lone surrogates (Cs) and line/paragraph separators (Zl, Zp). One rule for addresses refused, echoes and
# outside text shown (SES's, log lines').
INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})


def is_invisible(char: str) -> bool:
    return unicodedata.category(char) in INVISIBLE_CATEGORIES


def escape_invisible(text: str, *, keep: str = "") -> str:
    """``text`` with its invisible characters (but those in ``keep``) written as ``\\uXXXX`` escapes."""
    return "".join(
        f"\\u{ord(char):04x}" if char not in keep and is_invisible(char) else char for char in text
    )


def echo(value: object, limit: int = ECHO_LIMIT) -> str:
    """What someone typed, as a message repeats it: at most ``limit`` characters (an ellipsis marks a cut),
    in a code span, so that Slack shows ``*bold*`` or ``_x_`` as typed rather than as formatting.

    For every message built from input (usage errors, lookups that found nothing), in core as in the
    listeners: plain text, fit for a terminal too. Slack's ``& < >`` are escaped where a usage error is
    shown in Slack (``bot.listeners.framework``), so ``<!channel>`` typed as an argument pings nobody.
    Control and bidi characters (a newline would end the span, U+202E reverses what follows) show as
    ``?``, and a backtick, which would end the span, as ``'``.
    """
    text = str(value)
    if len(text) > limit:
        text = text[: max(1, limit - 1)] + "…"
    if not text:
        return "(nothing)"
    shown = "".join("'" if char == "`" else "?" if is_invisible(char) else char for char in text)
    return f"`{shown}`"


def echo_all(values: Sequence[object]) -> str:
    """Several words someone typed, as a message repeats them: the first ``ECHO_COUNT``, each ``echo``ed,
    then how many more there are."""
    shown = " ".join(echo(value) for value in values[:ECHO_COUNT])
    more = len(values) - ECHO_COUNT
    return shown + (f" and {more} more" if more > 0 else "")
