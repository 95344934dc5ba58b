"""Delivering a ``Reply`` to Slack within its limits, and saying so when Slack refuses it."""

from __future__ import annotations

import logging
from typing import Any

from bot.listeners.framework.declarations import MAX_MESSAGE_TEXT, VIEWS_OPEN_TIMEOUT, Reply

logger = logging.getLogger("opsbot.listeners")


def fit_text(text: str) -> str:
    """Every text opsbot sends to Slack passes here: longer than Slack's limit, the message would be
    refused and the user would see nothing at all."""
    if len(text) <= MAX_MESSAGE_TEXT:
        return text
    return text[: MAX_MESSAGE_TEXT - 1] + "…"


def message_body(text: str, blocks: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    message: dict[str, Any] = {"text": fit_text(text)}
    if blocks:
        message["blocks"] = blocks
    return message


def ephemeral(text: str, blocks: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"response_type": "ephemeral", **message_body(text, blocks)}


def _refusal(response: Any) -> str:
    """'' when Slack took a response_url message, else what it answered (``respond`` does not raise)."""
    status = getattr(response, "status_code", None)
    if status is None or 200 <= int(status) < 300:
        return ""
    body = "".join(c for c in str(getattr(response, "body", "") or "")[:60] if c.isalnum() or c in "_-. ")
    return f"HTTP {status}" + (f" {body.strip()}" if body.strip() else "")


def deliver(respond: Any, reply: Reply, *, ref: str, for_button: bool = False) -> bool:
    """Send the run's reply; if Slack refuses it, a short note with the reference instead. False then."""
    kwargs = message_body(reply.text, reply.blocks)
    if for_button and reply.replace_original:
        response = respond(replace_original=True, **kwargs)
    else:
        kind = "in_channel" if reply.in_channel else "ephemeral"
        response = respond(response_type=kind, replace_original=False, **kwargs)
    refused = _refusal(response)
    if not refused:
        return True
    logger.warning("Slack refused the reply ref=%s (%s); sending a short note instead", ref, refused)
    note = f":warning: opsbot's reply could not be shown here (Slack answered {refused}). Reference `{ref}`."
    safe_respond(respond, f"{note} {reply.if_not_shown}" if reply.if_not_shown else note, ref=ref)
    return False


def safe_respond(respond: Any, text: str, *, ref: str = "") -> None:
    """Send a message to the user; never raises. If Slack refuses it, a short plain one instead."""
    try:
        refused = _refusal(respond(**ephemeral(text)))
        if refused:
            logger.warning("Slack refused a message ref=%s (%s); sending a short one instead", ref, refused)
            short = "opsbot could not show its message here" + (f" (reference `{ref}`)." if ref else ".")
            refused = _refusal(respond(response_type="ephemeral", replace_original=False, text=short))
            if refused:
                logger.error("Slack refused the short message ref=%s too (%s)", ref, refused)
    except Exception:
        logger.exception("could not deliver a message to the user ref=%s", ref)


def post_to_response_url(url: str, text: str, *, ref: str) -> None:
    """An ephemeral note from the ack path, with a short timeout (Slack waits 3 s for the ack)."""
    if not url:
        return
    try:
        from slack_sdk.webhook import WebhookClient

        response = WebhookClient(url, timeout=VIEWS_OPEN_TIMEOUT).send(
            text=fit_text(text), response_type="ephemeral", replace_original=False
        )
        refused = _refusal(response)
        if refused:
            logger.warning("Slack refused a note ref=%s (%s)", ref, refused)
    except Exception as error:
        logger.warning("could not send a note ref=%s: %r", ref, error)
