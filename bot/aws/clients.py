"""One lazy cache of boto3 clients.

Clients are created on first use, never at import, so that tests can start moto (or the demo can point
``AWS_ENDPOINT_URL`` at its embedded server) before any client exists; ``clear_caches()`` forgets them all.
boto3 honours ``AWS_ENDPOINT_URL``, ``AWS_REGION`` and profiles by itself; we add retries and timeouts
that suit an interactive bot, and assume-role for cross-account access.
"""

from __future__ import annotations

import functools
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

_lock = threading.RLock()
# (service, region, role ARN, attempts, connect timeout, read timeout) -> client
_clients: dict[tuple[str, str, str, int, float, float], Any] = {}
# role ARN ("" for the default credentials) -> (session, epoch seconds after which it must be renewed)
_sessions: dict[str, tuple[Any, float]] = {}

# Adaptive retry mode backs off client-side when AWS throttles (CloudWatch Logs' 5 requests/s quota),
# which turns throttling into slowness rather than failure.
RETRY_ATTEMPTS = 8
CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 30.0


# A region other than the environment's for the code run inside ``region_override`` (the doctor's
# ``--region``). A context variable, not the environment: a concurrent command keeps its own region.
_region: ContextVar[str] = ContextVar("opsbot_region", default="")


def default_region() -> str:
    """The region asked for (``region_override``), else the environment's, else the profile's (boto3 reads
    ~/.aws/config for AWS_PROFILE), else us-east-1."""
    return (
        _region.get()
        or os.environ.get("AWS_REGION")
        or os.environ.get("AWS_DEFAULT_REGION")
        or _profile_region()
    )


@functools.cache
def _profile_region() -> str:
    # Read once (it parses ~/.aws/config): default_region() is asked on every client lookup.
    import boto3

    return boto3.session.Session().region_name or "us-east-1"


@contextmanager
def region_override(region: str) -> Iterator[None]:
    """Clients created or looked up inside (and in threads started with a copy of this context) use
    ``region`` unless they name one."""
    token = _region.set(region)
    try:
        yield
    finally:
        _region.reset(token)


def _config(attempts: int, connect_timeout: float, read_timeout: float, max_pool: int = 20) -> Any:
    from botocore.config import Config

    return Config(
        retries={"total_max_attempts": attempts, "mode": "adaptive"},  # the first request included
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        max_pool_connections=max_pool,
        user_agent_extra="opsbot",
    )


def _session(role_arn: str) -> Any:
    import boto3

    cached = _sessions.get(role_arn)
    if cached is not None and cached[1] > time.time():
        return cached[0]
    if not role_arn:
        session, renew_at = boto3.session.Session(), float("inf")
    else:
        sts = client("sts")
        creds = sts.assume_role(RoleArn=role_arn, RoleSessionName="opsbot")["Credentials"]
        session = boto3.session.Session(
            aws_access_key_id=creds["AccessKeyId"],
            aws_secret_access_key=creds["SecretAccessKey"],
            aws_session_token=creds["SessionToken"],
        )
        # Renew five minutes before the temporary credentials run out.
        renew_at = creds["Expiration"].timestamp() - 300
        for key in [k for k in _clients if k[2] == role_arn]:
            del _clients[key]
    _sessions[role_arn] = (session, renew_at)
    return session


def client(
    service: str,
    *,
    region: str | None = None,
    role_arn: str = "",
    attempts: int = RETRY_ATTEMPTS,
    connect_timeout: float = CONNECT_TIMEOUT,
    read_timeout: float = READ_TIMEOUT,
) -> Any:
    """Return the cached client for ``service`` (created on first use; thread-safe).

    ``attempts=1`` is for a caller that retries by itself: botocore's retries underneath would multiply
    its attempts and, for a request that is not idempotent, resend one that may already have been applied.
    Short timeouts are for calls made while Slack waits for an answer (its limit is 3 seconds).
    """
    key = (
        service,
        region or default_region(),
        role_arn,
        attempts,
        float(connect_timeout),
        float(read_timeout),
    )
    found = _clients.get(key)
    if found is not None:
        if not role_arn:
            return found
        cached = _sessions.get(role_arn)
        if cached is not None and cached[1] > time.time():
            return found
    with _lock:
        session = _session(role_arn)
        found = _clients.get(key)
        if found is None:
            # boto3 sessions are not thread-safe, so creation happens under the lock; clients are.
            found = session.client(service, region_name=key[1], config=_config(attempts, key[4], key[5]))
            for hook in _client_hooks:
                hook(service, found)
            _clients[key] = found
    return found


def client_with_credentials(service: str, *, region: str, credentials: dict[str, Any]) -> Any:
    """An uncached client on temporary credentials from the caller's own AssumeRole (e.g. a role with an
    external id that belongs to one target, not to an account opsbot operates). Short timeouts, few retries:
    it answers a check, not a long job."""
    import boto3

    session: Any = boto3.session.Session(
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
    )
    found = session.client(service, region_name=region, config=_config(3, CONNECT_TIMEOUT, 10.0))
    # Marks calls made with someone else's grant (tests/foundation/test_iam_coverage.py leaves them out of
    # what this function's own policy must allow).
    found.opsbot_foreign_credentials = True
    return found


# Called with (service, client) for every client created: test doubles of AWS behaviour that moto lacks
# (CloudWatch's FilterLogEvents paging, bot/local/cloudwatch_paging.py) attach their botocore handlers here.
_client_hooks: list[Callable[[str, Any], None]] = []


def add_client_hook(hook: Callable[[str, Any], None]) -> Callable[[], None]:
    """Run ``hook(service, client)`` on every cached client and every one created later; returns its removal."""
    with _lock:
        _client_hooks.append(hook)
        for key, existing in _clients.items():
            hook(key[0], existing)

    def remove() -> None:
        with _lock:
            if hook in _client_hooks:
                _client_hooks.remove(hook)

    return remove


_other_caches: list[Callable[[], None]] = []


def register_cache(clear: Callable[[], None]) -> None:
    """Let a module's own cache (discovery, policy, user groups) be cleared with the clients."""
    _other_caches.append(clear)


def clear_caches() -> None:
    """Forget every client, session and registered cache (tests call this after starting moto)."""
    with _lock:
        _clients.clear()
        _sessions.clear()
    _profile_region.cache_clear()
    for clear in _other_caches:
        clear()
