"""Failures turned into sentences: an ``OpsbotError`` is shown as it is, a translated AWS or Slack error
as its sentence, anything else as a short message with a reference id that is also in the log.
"""

from __future__ import annotations

import logging

from bot.errors import NotAllowedError, OpsbotError, UsageError

logger = logging.getLogger("opsbot.listeners")


def failure(error: BaseException, ref: str) -> tuple[str, str, str]:
    """(message for the user, audit outcome, audit detail) for an exception raised by a run.

    The detail is the sentence for errors that carry one, else only the exception's type: an
    unexpected error's text may hold data that belongs in the log, not the audit record."""
    message, outcome = explain_failure(error, ref)
    return message, outcome, str(error) if isinstance(error, OpsbotError) else type(error).__name__


def usage_text(error: UsageError) -> str:
    """A usage error's sentence for mrkdwn. It is built from what someone typed (``echo``) and is never
    meant as markup, so Slack's ``& < >`` are escaped: ``<!channel>`` typed as an argument pings nobody,
    and ``Missing <serial>`` shows its angle brackets."""
    from bot.render.blocks import escape

    return escape(str(error))


def explain_failure(error: BaseException, ref: str) -> tuple[str, str]:
    """(message for the user, audit outcome) for an exception raised by a run."""
    if isinstance(error, UsageError):
        return f":warning: {usage_text(error)}", "usage"
    if isinstance(error, NotAllowedError):
        return f":no_entry: {error}", "denied"
    if isinstance(error, OpsbotError):
        return f":x: {error}", "error"
    aws_error = _untranslated_aws_error(error)
    if aws_error is not None:  # a call that skipped bot.aws.errors: still a sentence that says what to fix
        logger.warning("untranslated AWS error ref=%s: %s", ref, error)
        return f":x: {aws_error}", "error"
    try:
        from slack_sdk.errors import SlackApiError
    except ImportError:  # pragma: no cover - slack_sdk is a dependency
        SlackApiError = ()  # type: ignore[assignment,misc]
    if isinstance(error, SlackApiError):
        code = str(error.response.get("error", "unknown_error"))
        hints = {
            "missing_scope": f"the Slack app lacks the scope `{error.response.get('needed', '?')}`; "
            "add it in the app's OAuth settings (bot/manifest.json) and reinstall.",
            "not_in_channel": "invite opsbot to this channel (`/invite @opsbot`) and try again.",
            "channel_not_found": "opsbot cannot see that channel; invite it or check the channel id.",
            "invalid_auth": "the bot token is wrong or revoked; put the current one in the Slack secret (OPSBOT_SLACK_SECRET_ID).",
            "ratelimited": "Slack is rate-limiting opsbot; try again in a minute.",
        }
        hint = hints.get(code, "")
        logger.warning("slack api error ref=%s: %s", ref, error)
        return f":x: Slack refused the request (`{code}`){': ' + hint if hint else '.'}", "error"
    logger.exception("unexpected error ref=%s", ref)
    return (
        f":boom: Something went wrong (reference `{ref}`). "
        "The details are in opsbot's log under that reference.",
        "failed",
    )


def _untranslated_aws_error(error: BaseException) -> OpsbotError | None:
    """A botocore error that reached the framework as it was: translated (missing permission, ...)."""
    import sys

    if "botocore" not in sys.modules:  # nothing can have raised one
        return None
    from botocore.exceptions import BotoCoreError, ClientError

    if not isinstance(error, ClientError | BotoCoreError):
        return None
    from bot.aws.errors import translate

    return translate(error)


def form_failure(error: BaseException) -> tuple[str, str]:
    """(message for the ack, audit detail) when Slack did not open a form."""
    from slack_sdk.errors import SlackApiError

    if isinstance(error, SlackApiError):
        message, _ = explain_failure(error, "")
        return message, f"the form did not open: {error.response.get('error', 'unknown_error')}"
    logger.warning("could not open a form: %r", error)
    return (
        ":x: Slack did not open the form in time. Try again, or give the arguments on the command line "
        "(`help` shows them).",
        f"the form did not open: {type(error).__name__}",
    )


def not_started(error: BaseException, ref: str) -> tuple[str, str]:
    """(message for the user, audit detail) when the lazy half of a request could not be handed over."""
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        ConnectionError,
        HTTPClientError,
        ReadTimeoutError,
    )

    from bot.aws.errors import THROTTLING_CODES, error_code, translate

    sentence = ""
    if isinstance(error, ClientError) and error_code(error) in THROTTLING_CODES:
        sentence = (
            f"AWS Lambda is throttling opsbot ({error_code(error)}), so the work was not started. "
            "Try again in a minute."
        )
    elif isinstance(error, ReadTimeoutError):
        # The request reached Lambda: the invocation may have been queued after all.
        sentence = (
            "AWS Lambda did not confirm in time that the work started; it may still run. "
            "If no answer follows within a minute, try again."
        )
    elif isinstance(error, (ConnectionError, HTTPClientError)):
        sentence = (
            "opsbot could not reach AWS Lambda in time to start the work "
            f"({type(error).__name__}). Try again in a minute."
        )
    elif isinstance(error, (ClientError, BotoCoreError)):
        sentence = str(translate(error))
    elif isinstance(error, OpsbotError):
        sentence = str(error)
    if sentence:
        logger.error("lazy work not started ref=%s: %s", ref, sentence)
        return f":x: {sentence}", sentence
    logger.error("lazy work not started ref=%s", ref, exc_info=error)
    return (
        f":boom: opsbot could not start the work (reference `{ref}`). "
        "The details are in opsbot's log under that reference.",
        type(error).__name__,
    )
