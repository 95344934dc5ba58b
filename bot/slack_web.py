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

    from bot.slack_secrets import SlackSecrets

    # The token from the environment, or read from Secrets Manager now (bot.slack_secrets).
    token = SlackSecrets(settings).bot_token()
    return WebClient(token=token or None, base_url=settings.slack_api_url, timeout=10)
