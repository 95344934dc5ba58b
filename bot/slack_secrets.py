"""The Slack signing secret and bot token.

``opsbot serve``, the demo and the tests set ``SLACK_SIGNING_SECRET`` and ``SLACK_BOT_TOKEN``; they are
used as they are. On Lambda no function holds a secret in its environment (anyone allowed
``lambda:GetFunctionConfiguration`` could read it there and forge any request): ``OPSBOT_SLACK_SECRET_ID``
names one Secrets Manager secret, JSON ``{"signing_secret": ..., "bot_token": ...}``.

It is read on first use, never at import (importing a handler does no network I/O, and the cold start
stays short), then cached for the container's life. A read for a request from Slack (the ack) has one
attempt and short timeouts because Slack waits three seconds for the answer: at most 0.7 s, which leaves
the self-invocation its share of the ack's 2.5-second budget (bot.app.ACK_BUDGET_SECONDS). A read for
the lazy self-invocation (``patient``) has nobody waiting on it, and failing it loses the command's work
to the failure destination: two attempts with ordinary timeouts, so that a slow first TLS connection of a
cold container (a VPC behind a NAT gateway) does not; and it is made even within the pause after a failed
read, which only keeps forged requests from driving reads (nobody outside can send an internal one). A signature that does not match may mean
the secret was rotated: the verifier then asks for a re-read, which happens at most once per
``REREAD_INTERVAL_SECONDS``, so that forged requests cannot drive reads (or Secrets Manager's bill). A
failed first read is retried no sooner than ``RETRY_INTERVAL_SECONDS`` later; a failed re-read (the
container still holds the secrets) waits the whole re-read interval, for the same reason.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from bot.config import Settings
from bot.errors import OpsbotError

logger = logging.getLogger("opsbot.secrets")

READ_ATTEMPTS = 1
# GetSecretValue answers in tens of milliseconds, a new TLS connection included; these are many times that.
READ_CONNECT_TIMEOUT = 0.3
READ_TIMEOUT = 0.4
# The lazy run's read: at most 2 x (2 + 5) s, well within the Slack function's timeout.
PATIENT_READ_ATTEMPTS = 2
PATIENT_CONNECT_TIMEOUT = 2.0
PATIENT_READ_TIMEOUT = 5.0
REREAD_INTERVAL_SECONDS = 300.0
RETRY_INTERVAL_SECONDS = 10.0

# Monotonic seconds; tests move it forward.
clock: Callable[[], float] = time.monotonic


class SecretsUnavailable(OpsbotError):
    """The Slack secrets could not be read (the sentence says why, never what)."""


def secrets_client(*, patient: bool = False) -> Any:
    """The Secrets Manager client of these reads (from the cache; tests hook its events): the ack's, or
    the lazy run's (``patient``)."""
    from bot.aws.clients import own_client as client  # opsbot's own secret, whatever the request's account

    if patient:
        return client(
            "secretsmanager",
            attempts=PATIENT_READ_ATTEMPTS,
            connect_timeout=PATIENT_CONNECT_TIMEOUT,
            read_timeout=PATIENT_READ_TIMEOUT,
        )
    return client(
        "secretsmanager",
        attempts=READ_ATTEMPTS,
        connect_timeout=READ_CONNECT_TIMEOUT,
        read_timeout=READ_TIMEOUT,
    )


class SlackSecrets:
    def __init__(self, settings: Settings) -> None:
        self.secret_id = settings.slack_secret_id
        self._lock = threading.Lock()
        self._values: tuple[str, str] | None = None
        self._next_read = float("-inf")  # when a read may happen again
        self.reads = 0
        if (settings.slack_signing_secret and settings.slack_bot_token) or not self.secret_id:
            self._values = (settings.slack_signing_secret, settings.slack_bot_token)
            self.secret_id = ""

    @property
    def from_secrets_manager(self) -> bool:
        return bool(self.secret_id)

    def signing_secret(self, *, patient: bool = False) -> str:
        """``patient``: for the lazy self-invocation, which nobody waits on (see the module docstring)."""
        return self._get(patient)[0]

    def bot_token(self) -> str:
        return self._get(False)[1]

    def _get(self, patient: bool) -> tuple[str, str]:
        values = self._values
        if values is not None:
            return values
        with self._lock:
            if self._values is None:
                if clock() < self._next_read and not patient:
                    raise SecretsUnavailable(
                        f"the Slack secrets in {self.secret_id} could not be read recently"
                    )
                self._values = self._read(patient)
            return self._values

    def refresh_after_failure(self, *, patient: bool = False) -> bool:
        """Read the secret again if it is due (at most once per REREAD_INTERVAL_SECONDS); True if the
        signing secret changed (a rotation), so that the signature is worth checking again."""
        if not self.from_secrets_manager:
            return False
        with self._lock:
            if clock() < self._next_read:
                return False
            before = self._values
            try:
                self._values = self._read(patient)
            except SecretsUnavailable as error:
                logger.warning("%s; keeping the secrets read before", error)
                return False
            changed = before is None or before[0] != self._values[0]
            if changed:
                logger.warning(
                    "the Slack signing secret in %s changed (rotated); using the new one", self.secret_id
                )
            return changed

    def _after_failure(self) -> float:
        """How long until the next read after a failed one: soon while the container has no secrets (it
        cannot answer anything until it has them), the re-read interval once it has, so that forged requests
        cannot drive a read every few seconds while Secrets Manager is failing."""
        return RETRY_INTERVAL_SECONDS if self._values is None else REREAD_INTERVAL_SECONDS

    def _read(self, patient: bool) -> tuple[str, str]:
        self.reads += 1
        try:
            answer = secrets_client(patient=patient).get_secret_value(SecretId=self.secret_id)
        except Exception as error:
            self._next_read = clock() + self._after_failure()
            # botocore's timeouts carry ``response = None`` (requests' exceptions do): only a ClientError has one.
            response = getattr(error, "response", None)
            code = (response.get("Error", {}).get("Code") if isinstance(response, dict) else None) or type(
                error
            ).__name__
            raise SecretsUnavailable(
                f"the Slack secrets in {self.secret_id} could not be read ({code})"
            ) from None
        values = _parse(answer.get("SecretString"))
        if values is None:
            self._next_read = clock() + self._after_failure()
            raise SecretsUnavailable(
                f"the secret {self.secret_id} must be JSON with the keys signing_secret and bot_token"
            )
        self._next_read = clock() + REREAD_INTERVAL_SECONDS
        return values


def _parse(text: Any) -> tuple[str, str] | None:
    try:
        data = json.loads(text) if isinstance(text, str) else None
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    signing, token = data.get("signing_secret"), data.get("bot_token")
    if isinstance(signing, str) and signing.strip() and isinstance(token, str) and token.strip():
        return signing, token
    return None
