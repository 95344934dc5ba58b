"""Errors that carry a sentence for the person who caused or can fix them.

Everything the bot shows a user goes through one of these; anything else is a bug and is reported with a
reference id instead of its text (see ``bot.listeners.framework``).
"""

from __future__ import annotations


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
