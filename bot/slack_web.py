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


class SlackWebReader:
    """The doctor's read of Slack (``bot.core.ops.checks.slack.SlackReader``) through the Web API."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def _call(self, method: str, **params: Any) -> Any:
        from slack_sdk.errors import SlackApiError

        from bot.errors import OpsbotError

        try:
            return self.client.api_call(method, params=params)
        except SlackApiError as error:
            raise OpsbotError(
                f"Slack answered {error.response.get('error', 'an error')} to {method}"
            ) from error
        except Exception as error:  # no connection, a timeout: said as a sentence, not a trace
            from bot.core.ops.checks.slack import SlackUnreachable

            raise SlackUnreachable(
                f"Slack could not be reached for {method} ({type(error).__name__})"
            ) from error

    def auth(self) -> Any:
        from bot.core.ops.checks.slack import SlackAuth

        answer = self._call("auth.test")
        headers = {k.lower(): v for k, v in (answer.headers or {}).items()}
        raw = headers.get("x-oauth-scopes")
        if isinstance(raw, list):
            raw = ",".join(raw)
        scopes = None if raw is None else tuple(s.strip() for s in str(raw).split(",") if s.strip())
        return SlackAuth(
            team=str(answer.get("team", "")),
            team_id=str(answer.get("team_id", "")),
            user_id=str(answer.get("user_id", "")),
            scopes=scopes,
        )

    def channel(self, channel_id: str) -> Any:
        from bot.core.ops.checks.slack import SlackChannel

        info = self._call("conversations.info", channel=channel_id).get("channel") or {}
        return SlackChannel(
            channel_id=channel_id,
            name=str(info.get("name", "")),
            is_member=bool(info.get("is_member")),
            is_archived=bool(info.get("is_archived")),
        )
