"""The one way opsbot builds a Slack Web API client outside a Bolt request.

``SLACK_API_URL`` (Settings.slack_api_url) points every client at another server: the demo's and the
tests' local Slack Web API. Inside Bolt listeners use the ``client`` Bolt passes, which is built on the
same base URL (see bot.app).
"""

from __future__ import annotations

from typing import Any

from bot.config import Settings


def web_client(settings: Settings) -> Any:
    from slack_sdk import WebClient

    return WebClient(token=settings.slack_bot_token or None, base_url=settings.slack_api_url, timeout=10)
