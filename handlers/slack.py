"""Slack slash commands, buttons and modals: API Gateway (HTTP API or REST) -> Bolt."""

from __future__ import annotations

from typing import Any

from bot.app import build_app, lambda_request_handler
from bot.aws.logs import share_budget
from bot.config import Settings
from bot.observability import lambda_entry

settings = Settings.from_env()
share_budget(settings.state_table)  # each command runs in a container of its own: one account quota
app = build_app(settings, for_lambda=True)
slack_handler = lambda_request_handler(app)


def _handle(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return slack_handler.handle(event, context)


handler = lambda_entry(_handle, "slack")
