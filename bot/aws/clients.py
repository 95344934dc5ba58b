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
from dataclasses import dataclass
from typing import Any

# (role ARN, external id, principal); ("", "", "") = the default credentials of the environment.
CredentialsKey = tuple[str, str, str]
OWN_CREDENTIALS: CredentialsKey = ("", "", "")

_lock = threading.RLock()
# (service, region, credentials key, attempts, connect timeout, read timeout) -> client
_clients: dict[tuple[str, str, CredentialsKey, int, float, float], Any] = {}
# credentials key -> (session, epoch seconds after which it must be renewed)
_sessions: dict[CredentialsKey, tuple[Any, float]] = {}
# credentials key -> the lock its first AssumeRole is made under: concurrent first uses by one person
# wait for one call, while other people's (and other accounts') calls are not held up by it.
_session_locks: dict[CredentialsKey, threading.Lock] = {}
# How many sts:AssumeRole calls this process made, per credentials key (for tests and /ops accounts).
assume_role_calls: dict[CredentialsKey, int] = {}

# Adaptive retry mode backs off client-side when AWS throttles (CloudWatch Logs' 5 requests/s quota),
# which turns throttling into slowness rather than failure.
RETRY_ATTEMPTS = 8
CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 30.0
# Assumed credentials are renewed this long before they expire, so no call runs on credentials about to
# end. Lambda runs a lazy command for at most 15 minutes; AssumeRole gives an hour by default.
RENEW_BEFORE_SECONDS = 300


def _now() -> float:
    """The clock of the credentials cache (tests replace it to reach an expiry without waiting)."""
    return time.time()


# A region other than the environment's for the code run inside ``region_override`` (the doctor's
# ``--region``). A context variable, not the environment: a concurrent command keeps its own region.
_region: ContextVar[str] = ContextVar("opsbot_region", default="")


@dataclass(frozen=True)
class Target:
    """Where the AWS calls of a request go and on whose behalf (``use_target``).

    ``role_arn`` empty: opsbot's own credentials. ``principal`` is the person (Slack user id) or function
    (``opsbot-<function>``) the assumed credentials name: RoleSessionName ``opsbot-<principal>`` and
    SourceIdentity ``<principal>``, so CloudTrail in the member account says who asked. Credentials are
    cached per (role, external id, principal): they are never shared between two people."""

    account: str = ""  # the account's name in OPSBOT_ACCOUNTS ("" = opsbot's own)
    role_arn: str = ""
    external_id: str = ""
    region: str = ""
    principal: str = ""
    # An AWS CLI profile whose credentials are used as they are (the CLI's --profile); no role is assumed.
    profile: str = ""
    # The CLI's: the identity (sts:GetCallerIdentity ARN) of the person at the terminal whose own
    # credentials assume the role. "" for opsbot's functions. Only what a refusal says depends on it.
    operator: str = ""

    @property
    def credentials_key(self) -> CredentialsKey:
        if self.profile:
            return ("profile", self.profile, "")
        if not self.role_arn:
            return OWN_CREDENTIALS
        return (self.role_arn, self.external_id, self.principal)


_target: ContextVar[Target | None] = ContextVar("opsbot_target", default=None)


def current_target() -> Target | None:
    return _target.get()


@contextmanager
def use_target(target: Target | None) -> Iterator[None]:
    """AWS calls made inside (and in threads started with a copy of this context) go to ``target``'s
    account and region, with credentials naming its principal. None: as outside (opsbot's own)."""
    token = _target.set(target)
    try:
        yield
    finally:
        _target.reset(token)


def default_region() -> str:
    """The region asked for (``region_override``), else the target's (``use_target``), else the
    environment's, else the profile's (boto3 reads ~/.aws/config for AWS_PROFILE), else us-east-1."""
    target = _target.get()
    return (
        _region.get()
        or (target.region if target is not None else "")
        or os.environ.get("AWS_REGION")
        or os.environ.get("AWS_DEFAULT_REGION")
        or _profile_region(target.profile if target is not None else "")
    )


@functools.cache
def _profile_region(profile: str = "") -> str:
    # Read once (it parses ~/.aws/config): default_region() is asked on every client lookup.
    import boto3

    session = boto3.session.Session(profile_name=profile) if profile else boto3.session.Session()
    return session.region_name or "us-east-1"


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


def _fresh(key: CredentialsKey) -> Any | None:
    cached = _sessions.get(key)
    if cached is not None and cached[1] > _now():
        return cached[0]
    return None


def _session(key: CredentialsKey, account: str = "", operator: str = "") -> Any:
    """The boto3 session for ``key``: the environment's, a profile's, or assumed-role credentials made
    at most once per credential lifetime (one AssumeRole per key even when many threads ask at once)."""
    import boto3

    found = _fresh(key)
    if found is not None:
        return found
    if key == OWN_CREDENTIALS or key[0] == "profile":
        with _lock:
            found = _fresh(key)
            if found is None:
                found = boto3.session.Session(profile_name=key[1]) if key[1] else boto3.session.Session()
                _sessions[key] = (found, float("inf"))
        return found
    with _lock:
        key_lock = _session_locks.setdefault(key, threading.Lock())
    with key_lock:
        found = _fresh(key)  # another thread may have assumed the role while this one waited
        if found is not None:
            return found
        creds = _assume_role(key, account, operator)
        session = boto3.session.Session(
            aws_access_key_id=creds["AccessKeyId"],
            aws_secret_access_key=creds["SecretAccessKey"],
            aws_session_token=creds["SessionToken"],
        )
        # Renew five minutes before the temporary credentials run out.
        renew_at = creds["Expiration"].timestamp() - RENEW_BEFORE_SECONDS
        with _lock:
            for stale in [k for k in _clients if k[2] == key]:
                del _clients[stale]
            _sessions[key] = (session, renew_at)
    return session


def _assume_role(key: CredentialsKey, account: str, operator: str = "") -> Any:
    """sts:AssumeRole with opsbot's own credentials (a person's at a terminal: ``operator``); a refusal
    becomes a sentence naming the fix."""
    from botocore.exceptions import BotoCoreError, ClientError

    from bot.core.common.accounts import session_name, source_identity

    role_arn, external_id, principal = key
    request: dict[str, Any] = {"RoleArn": role_arn}
    if principal:
        request["RoleSessionName"] = session_name(principal)
        request["SourceIdentity"] = source_identity(principal)
    else:
        request["RoleSessionName"] = "opsbot"
    if external_id:
        request["ExternalId"] = external_id
    with use_target(None):  # the call itself is made with opsbot's own credentials, in its own region
        sts = client("sts")
    with _lock:
        assume_role_calls[key] = assume_role_calls.get(key, 0) + 1
    try:
        return sts.assume_role(**request)["Credentials"]
    except (ClientError, BotoCoreError) as error:
        from bot.aws.errors import translate_assume_role

        raise translate_assume_role(
            error, role_arn=role_arn, account=account, external_id=external_id, operator=operator
        ) from error


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

    The account and principal come from ``use_target`` (opsbot's own credentials outside one); an explicit
    ``role_arn`` (a fan-out target's cross-account role) is assumed with opsbot's own credentials.
    ``attempts=1`` is for a caller that retries by itself: botocore's retries underneath would multiply
    its attempts and, for a request that is not idempotent, resend one that may already have been applied.
    Short timeouts are for calls made while Slack waits for an answer (its limit is 3 seconds).
    """
    target = _target.get()
    operator = ""
    if role_arn:
        creds: CredentialsKey = (role_arn, "", "")
        account = ""
    elif target is not None:
        creds, account, operator = target.credentials_key, target.account, target.operator
    else:
        creds, account = OWN_CREDENTIALS, ""
    key = (
        service,
        region or default_region(),
        creds,
        attempts,
        float(connect_timeout),
        float(read_timeout),
    )
    found = _clients.get(key)
    if found is not None and (creds == OWN_CREDENTIALS or _fresh(creds) is not None):
        return found
    session = _session(creds, account, operator)
    with _lock:
        found = _clients.get(key)
        if found is None:
            # boto3 sessions are not thread-safe, so creation happens under the lock; clients are.
            found = session.client(service, region_name=key[1], config=_config(attempts, key[4], key[5]))
            if creds != OWN_CREDENTIALS:
                # Which role's credentials the client signs with (the IAM coverage test reads it).
                found.opsbot_role = "" if creds[0] == "profile" else creds[0]
                if service == "dynamodb":
                    _keep_own_tables_home(found, attempts, key[4], key[5])
            for hook in _client_hooks:
                hook(service, found)
            _clients[key] = found
    return found


# opsbot's own tables (the state table): whatever account a request is aimed at, they are in opsbot's
# account, and a DynamoDB call on one made with a member account's client goes there instead
# (``_keep_own_tables_home``). Registered by whoever knows the name (bot.aws.state.StateTable).
_own_tables: set[str] = set()


def own_tables() -> frozenset[str]:
    return frozenset(_own_tables)


def own_table(name: str) -> None:
    if name:
        _own_tables.add(name)


def _tables_in(params: dict[str, Any]) -> set[str]:
    found = {params["TableName"]} if isinstance(params.get("TableName"), str) else set()
    found |= set(params.get("RequestItems") or {})
    for entry in params.get("TransactItems") or []:
        found |= {str(part.get("TableName", "")) for part in entry.values() if isinstance(part, dict)}
    return found


def _keep_own_tables_home(member: Any, attempts: int, connect_timeout: float, read_timeout: float) -> None:
    """Send a member-account DynamoDB client's calls on opsbot's own tables with opsbot's own client: one
    rule for every module that keeps something in the state table (locks, rate reservations, digests),
    rather than each of them remembering it."""
    from botocore.awsrequest import AWSResponse
    from botocore.compat import HTTPHeaders

    def remember(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        if _own_tables & _tables_in(params):
            context["opsbot_own_params"] = dict(params)

    def redirect(model: Any, context: dict[str, Any], **_: Any) -> Any:
        own_params = context.get("opsbot_own_params")
        if own_params is None:
            return None
        own = own_client(
            "dynamodb", attempts=attempts, connect_timeout=connect_timeout, read_timeout=read_timeout
        )
        parsed = own._make_api_call(model.name, own_params)
        return AWSResponse("", 200, HTTPHeaders(), None), parsed

    member.meta.events.register("before-parameter-build.dynamodb", remember)
    member.meta.events.register("before-call.dynamodb", redirect)


def scope() -> tuple[str, str]:
    """(account, region) the calls made here go to: the key of any cache of what AWS answered, so that
    one account's answers are never served for another's."""
    target = _target.get()
    account = (target.profile or target.account or target.role_arn) if target is not None else ""
    return account, default_region()


def own_client(service: str, **options: Any) -> Any:
    """A client with opsbot's own credentials in opsbot's own region, whatever account the request is
    aimed at: for opsbot's own resources (the state table, its Lambda functions, its secrets and policy)."""
    with use_target(None):
        return client(service, **options)


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
        _session_locks.clear()
        assume_role_calls.clear()
    _profile_region.cache_clear()
    for clear in _other_caches:
        clear()
