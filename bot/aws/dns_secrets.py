"""Secrets Manager, for the DNS mirror's TSIG key (the only secret it reads at run time)."""

from __future__ import annotations

from bot.aws.clients import client
from bot.aws.errors import aws_errors
from bot.errors import ConfigError


def secret_string(secret_id: str) -> str:
    """The SecretString of ``secret_id`` (name or ARN). The value is never logged or put in an error."""
    with aws_errors(resource=f"secret {secret_id}"):
        response = client("secretsmanager").get_secret_value(SecretId=secret_id)
    value = response.get("SecretString")
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"The secret {secret_id} has no SecretString (binary secrets are not supported).")
    return value
