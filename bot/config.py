"""Configuration from environment variables (SAM sets them; the demo sets its own).

Every variable is documented in docs/configuration.md. Parsing here never does I/O: the policy
parameter and secrets are fetched later, outside the ack path.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from bot.errors import ConfigError

if TYPE_CHECKING:  # the parser is imported on first use: the Lambda cold start loads no bot.core
    from bot.core.common.accounts import Accounts

DEFAULT_SLACK_API_URL = "https://slack.com/api/"


def _flag(value: str | None, default: bool = False) -> bool:
    if value is None or value.strip() == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {raw!r}.") from None


def _list(value: str | None, default: tuple[str, ...] = ()) -> tuple[str, ...]:
    if value is None or not value.strip():
        return default
    return tuple(part.strip() for part in value.split(",") if part.strip())


@functools.lru_cache(maxsize=8)
def _parse_accounts(text: str) -> Accounts:
    from bot.core.common.accounts import parse_accounts

    return parse_accounts(text)


@dataclass(frozen=True)
class Settings:
    # Slack. The bot user id and team id let the app authorize from configuration, so that no request
    # waits on Slack's auth.test (see bot.app).
    slack_bot_token: str = ""
    slack_signing_secret: str = ""
    slack_bot_user_id: str = ""
    slack_team_id: str = ""
    slack_bot_id: str = ""
    slack_api_url: str = DEFAULT_SLACK_API_URL
    slack_app_token: str = ""
    # On Lambda: the Secrets Manager secret (name or ARN) holding the signing secret and bot token, read
    # on the first request (bot.slack_secrets); SLACK_SIGNING_SECRET and SLACK_BOT_TOKEN, when both are
    # set, take precedence.
    slack_secret_id: str = ""

    # AWS
    region: str = "us-east-1"
    state_table: str = "opsbot-state"
    audit_ttl_days: int = 90

    # Security
    policy_json: str = ""
    policy_parameter: str = ""
    policy_cache_seconds: int = 300

    # Capabilities (documented in docs/configuration.md and on each command's page in docs/)
    default_api: str = ""
    default_stage: str = ""
    mailing_table: str = "mailing"
    alert_channel: str = ""
    ses_suppression: bool = False
    device_table: str = "iotCatalog"
    dns_zones_json: str = ""
    dns_function: str = ""  # the DNS mirror function that does /dns work (empty: in this process)
    fanout_tables: tuple[str, ...] = ("fanoutTargets",)
    fanout_function: str = "fanout"
    # Several AWS accounts (docs/accounts.md): JSON, parsed by ``accounts()``; empty = opsbot's own only.
    accounts_json: str = ""

    extra: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        api_url = env.get("SLACK_API_URL", "").strip() or DEFAULT_SLACK_API_URL
        if not api_url.endswith("/"):
            api_url += "/"
        return cls(
            slack_bot_token=env.get("SLACK_BOT_TOKEN", ""),
            slack_signing_secret=env.get("SLACK_SIGNING_SECRET", ""),
            slack_bot_user_id=env.get("SLACK_BOT_USER_ID", ""),
            slack_team_id=env.get("SLACK_TEAM_ID", ""),
            slack_bot_id=env.get("SLACK_BOT_ID", ""),
            slack_api_url=api_url,
            slack_app_token=env.get("SLACK_APP_TOKEN", ""),
            slack_secret_id=env.get("OPSBOT_SLACK_SECRET_ID", "").strip(),
            region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1",
            state_table=env.get("OPSBOT_STATE_TABLE", "").strip() or "opsbot-state",
            audit_ttl_days=_int(env, "OPSBOT_AUDIT_TTL_DAYS", 90),
            policy_json=env.get("OPSBOT_POLICY", "").strip(),
            policy_parameter=env.get("OPSBOT_POLICY_PARAMETER", "").strip(),
            policy_cache_seconds=_int(env, "OPSBOT_POLICY_CACHE_SECONDS", 300),
            default_api=env.get("OPSBOT_DEFAULT_API", "").strip(),
            default_stage=env.get("OPSBOT_DEFAULT_STAGE", "").strip(),
            mailing_table=env.get("OPSBOT_MAILING_TABLE", "").strip() or "mailing",
            alert_channel=env.get("OPSBOT_ALERT_CHANNEL", "").strip(),
            ses_suppression=_flag(env.get("OPSBOT_SES_SUPPRESSION")),
            device_table=env.get("OPSBOT_DEVICE_TABLE", "").strip() or "iotCatalog",
            dns_zones_json=env.get("OPSBOT_DNS_ZONES", "").strip(),
            dns_function=env.get("OPSBOT_DNS_FUNCTION", "").strip(),
            fanout_function=(fanout := env.get("OPSBOT_FANOUT_FUNCTION", "").strip() or "fanout"),
            fanout_tables=_list(env.get("OPSBOT_FANOUT_TABLE"), (f"{fanout}Targets",)),  # the CLI's name
            accounts_json=env.get("OPSBOT_ACCOUNTS", "").strip(),
            extra={k: v for k, v in env.items() if k.startswith("OPSBOT_")},
        )

    def accounts(self) -> Accounts:
        """The accounts of ``OPSBOT_ACCOUNTS`` (parsed once per text). Raises ConfigError when malformed."""
        return _parse_accounts(self.accounts_json)

    def require_slack(self) -> None:
        """Fail with a sentence naming what is missing, before any request arrives (with a secret to read,
        whether it holds them is known only on the first request: bot.slack_secrets)."""
        if self.slack_secret_id:
            return
        missing = [
            name
            for name, value in (
                ("SLACK_SIGNING_SECRET", self.slack_signing_secret),
                ("SLACK_BOT_TOKEN", self.slack_bot_token),
            )
            if not value
        ]
        if missing:
            raise ConfigError(
                f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} not set.",
                hint=(
                    "Set them from the Slack app's Basic Information and OAuth pages, or name a Secrets "
                    "Manager secret holding them in OPSBOT_SLACK_SECRET_ID (see docs/deploy.md)."
                ),
            )


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


def apply_log_level(settings: Settings) -> None:
    """Set the level of opsbot's own loggers (``opsbot.*``) from ``OPSBOT_LOG_LEVEL`` (default INFO).

    Lambda's Python runtime leaves the root logger at WARNING: without this the audit lines and every
    other INFO line of opsbot would be dropped in production. Payload-logging libraries are governed
    separately (``bot.app.quiet_payload_loggers``).
    """
    import logging

    wanted = settings.extra.get("OPSBOT_LOG_LEVEL", "").strip().upper() or "INFO"
    logging.getLogger("opsbot").setLevel(wanted if wanted in LOG_LEVELS else "INFO")
