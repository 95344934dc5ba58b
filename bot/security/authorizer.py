"""Load the policy (environment or SSM, cached) and user-group memberships (Slack, cached); decide.

All I/O here happens in lazy listeners, never in the ack path: the SSM parameter and
``usergroups.users.list`` are fetched on first need and cached for ``OPSBOT_POLICY_CACHE_SECONDS``.
A malformed policy is reported once at start (``Authorizer.startup_error``) and then denies every
action with that reason, instead of failing each request differently.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from typing import Any

from bot.aws.clients import client, register_cache
from bot.aws.errors import aws_errors
from bot.config import Settings
from bot.security.policy import Decision, Policy, PolicyError, parse_policy

logger = logging.getLogger("opsbot.security")

_group_cache: dict[str, tuple[float, frozenset[str]]] = {}
_group_lock = threading.Lock()
GROUP_CACHE_SECONDS = 300


def _clear_groups() -> None:
    with _group_lock:
        _group_cache.clear()


register_cache(_clear_groups)


def parameter_name(name: str) -> str:
    """SSM wants hierarchical names with a leading slash; the template's IAM ARN wants none."""
    return name if name.startswith("/") or "/" not in name else "/" + name


class Authorizer:
    def __init__(self, settings: Settings, known_actions: Iterable[str]) -> None:
        self.settings = settings
        self.known_actions = tuple(sorted(set(known_actions)))
        self.startup_error: PolicyError | None = None
        self._static: Policy | None = None
        self._loaded: tuple[float, Policy] | None = None
        self._lock = threading.Lock()
        if settings.policy_json:
            try:
                self._static = parse_policy(settings.policy_json, known_actions=self.known_actions)
            except PolicyError as error:
                self.startup_error = error
                logger.error("opsbot policy rejected; every action is denied until it is fixed: %s", error)
        elif not settings.policy_parameter:
            self._static = Policy(source="default (no OPSBOT_POLICY set)")

    def policy(self) -> Policy:
        """The current policy. Raises PolicyError when it is malformed (the caller denies)."""
        if self.startup_error is not None:
            raise self.startup_error
        if self._static is not None:
            return self._static
        now = time.monotonic()
        with self._lock:
            if self._loaded and now - self._loaded[0] < self.settings.policy_cache_seconds:
                return self._loaded[1]
            name = parameter_name(self.settings.policy_parameter)
            with aws_errors(resource=f"SSM parameter {name}"):
                text = client("ssm").get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"]
            policy = parse_policy(text, known_actions=self.known_actions, source=f"SSM parameter {name}")
            self._loaded = (now, policy)
            return policy

    def groups_of(self, user: str, wanted: Iterable[str], slack: Any) -> frozenset[str]:
        """Which of the ``wanted`` user groups ``user`` belongs to (Slack usergroups.users.list)."""
        member_of: set[str] = set()
        now = time.monotonic()
        for group in wanted:
            with _group_lock:
                cached = _group_cache.get(group)
            if cached is None or now - cached[0] >= GROUP_CACHE_SECONDS:
                response = slack.usergroups_users_list(usergroup=group)
                members = frozenset(response.get("users", []) or [])
                with _group_lock:
                    _group_cache[group] = (now, members)
            else:
                members = cached[1]
            if user in members:
                member_of.add(group)
        return frozenset(member_of)

    def decide(self, action: str, *, mutating: bool, user: str, channel: str, slack: Any) -> Decision:
        try:
            policy = self.policy()
        except PolicyError as error:
            return Decision(
                False, action, f"opsbot's policy is malformed, so every action is denied: {error}"
            )
        groups = (
            self.groups_of(user, policy.usergroups_for(action), slack) if slack is not None else frozenset()
        )
        return policy.decide(action, mutating=mutating, user=user, channel=channel, groups=groups)
