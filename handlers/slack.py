"""Slack slash commands, buttons and modals: API Gateway (HTTP API or REST) -> Bolt."""

from __future__ import annotations

from typing import Any

from bot.app import build_app, lambda_request_handler
from bot.config import Settings

app = build_app(Settings.from_env(), for_lambda=True)
slack_handler = lambda_request_handler(app)


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return slack_handler.handle(event, context)
