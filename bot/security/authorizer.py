"""Load the policy (environment or SSM, cached) and user-group memberships (Slack, cached); decide.

All I/O here happens in lazy listeners, never in the ack path: the SSM parameter and
``usergroups.users.list`` are fetched on first need and cached for ``OPSBOT_POLICY_CACHE_SECONDS``.
A malformed policy is reported once at start (``Authorizer.startup_error``) and then denies every
action with that reason, instead of failing each request differently; a malformed policy in SSM is
logged once and its failure cached like a good policy, so it is not fetched again on every command.

User groups are looked up only when a membership could change the decision. When Slack will not say
who is in a group (a missing scope, a free plan, an outage), the decision fails closed for grants and
stays open for reading: a group's ``allow`` rule is not applied, read-only actions keep ``default_read``,
and a group's ``deny`` rule that cannot be checked still denies actions that change something.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from bot.aws.clients import own_client, register_cache
from bot.aws.errors import aws_errors
from bot.config import Settings
from bot.security.policy import Decision, Policy, PolicyError, parse_policy

logger = logging.getLogger("opsbot.security")

# group id -> (monotonic time of the lookup, members, or the error that kept Slack from saying)
_group_cache: dict[str, tuple[float, frozenset[str], str]] = {}
_group_lock = threading.Lock()
# A failed lookup is retried sooner than a good one expires: it is usually fixed by an admin meanwhile.
GROUP_FAILURE_SECONDS = 60


def _clear_groups() -> None:
    with _group_lock:
        _group_cache.clear()


register_cache(_clear_groups)


def parameter_name(name: str) -> str:
    """SSM wants hierarchical names with a leading slash; the template's IAM ARN wants none."""
    return name if name.startswith("/") or "/" not in name else "/" + name


@dataclass(frozen=True)
class GroupLookup:
    """Which of the wanted groups a user is in, and which groups Slack would not list (group -> why)."""

    member_of: frozenset[str] = frozenset()
    unknown: dict[str, str] = field(default_factory=dict)


def _lookup_error(error: Exception) -> str:
    response = getattr(error, "response", None)
    code = response.get("error") if response is not None and hasattr(response, "get") else None
    return str(code or type(error).__name__)


class Authorizer:
    def __init__(self, settings: Settings, known_actions: Iterable[str]) -> None:
        self.settings = settings
        self.known_actions = tuple(sorted(set(known_actions)))
        self.startup_error: PolicyError | None = None
        self._static: Policy | None = None
        # (monotonic time of the fetch, the policy or why the fetched text is not one)
        self._loaded: tuple[float, Policy | PolicyError] | None = None
        self._logged_error = ""
        self._lock = threading.Lock()
        if settings.policy_json:
            try:
                self._static = parse_policy(
                    settings.policy_json, known_actions=self.known_actions, known_accounts=self._accounts()
                )
            except PolicyError as error:
                self.startup_error = error
                logger.error("opsbot policy rejected; every action is denied until it is fixed: %s", error)
        elif not settings.policy_parameter:
            self._static = Policy(source="default (no OPSBOT_POLICY set)")

    def _accounts(self) -> tuple[str, ...] | None:
        """The account names a policy may name; None when OPSBOT_ACCOUNTS is malformed: then nothing can
        be aimed at an account (every command refuses with that error) and the policy's account names
        cannot be checked, but the doctor, which reports the error, must still be allowed to run."""
        from bot.errors import ConfigError

        try:
            return self.settings.accounts().names()
        except ConfigError:
            return None

    def policy_now(self) -> Policy | None:
        """The policy when it is at hand without I/O (None when it would have to be fetched)."""
        return self._policy_at_hand()

    @property
    def cache_seconds(self) -> float:
        return max(0, self.settings.policy_cache_seconds)

    def policy(self) -> Policy:
        """The current policy. Raises PolicyError when it is malformed (the caller denies)."""
        if self.startup_error is not None:
            raise self.startup_error
        if self._static is not None:
            return self._static
        now = time.monotonic()
        with self._lock:
            if self._loaded and now - self._loaded[0] < self.cache_seconds:
                loaded = self._loaded[1]
            else:
                name = parameter_name(self.settings.policy_parameter)
                with aws_errors(resource=f"SSM parameter {name}"):
                    text = own_client("ssm").get_parameter(Name=name, WithDecryption=True)["Parameter"][
                        "Value"
                    ]
                try:
                    loaded = parse_policy(
                        text,
                        known_actions=self.known_actions,
                        source=f"SSM parameter {name}",
                        known_accounts=self._accounts(),
                    )
                except PolicyError as error:
                    loaded = error
                self._loaded = (now, loaded)
                self._log_change(loaded)
        if isinstance(loaded, PolicyError):
            raise loaded
        return loaded

    def _log_change(self, loaded: Policy | PolicyError) -> None:
        """Log a malformed policy once, not on every command; and once more when it is fixed."""
        message = str(loaded) if isinstance(loaded, PolicyError) else ""
        if message and message != self._logged_error:
            logger.error("opsbot policy rejected; every action is denied until it is fixed: %s", message)
        elif not message and self._logged_error:
            logger.warning("opsbot policy fixed: %s is valid again", self.settings.policy_parameter)
        self._logged_error = message

    def lookup_groups(self, user: str, wanted: Iterable[str], slack: Any) -> GroupLookup:
        """Which of the ``wanted`` user groups ``user`` belongs to (Slack usergroups.users.list, cached).

        Never raises: a group Slack would not list is in ``unknown`` with the reason."""
        member_of: set[str] = set()
        unknown: dict[str, str] = {}
        for group in sorted(set(wanted)):
            now = time.monotonic()
            with _group_lock:
                cached = _group_cache.get(group)
            fresh_for = self.cache_seconds if cached is None or not cached[2] else GROUP_FAILURE_SECONDS
            if cached is None or now - cached[0] >= min(fresh_for, self.cache_seconds):
                try:
                    response = slack.usergroups_users_list(usergroup=group)
                    cached = (now, frozenset(response.get("users", []) or []), "")
                except Exception as error:
                    cached = (now, frozenset(), _lookup_error(error))
                    logger.warning(
                        "could not list the members of user group %s (%s): its allow rules are not "
                        "applied and its deny rules deny every action that changes something",
                        group,
                        cached[2],
                    )
                with _group_lock:
                    _group_cache[group] = cached
            if cached[2]:
                unknown[group] = cached[2]
            elif user in cached[1]:
                member_of.add(group)
        return GroupLookup(frozenset(member_of), unknown)

    def _policy_at_hand(self) -> Policy | None:
        """The policy without any I/O: from the environment, or the SSM copy while the cache keeps it;
        None when it would have to be fetched. Raises PolicyError when it is malformed."""
        if self.startup_error is not None:
            raise self.startup_error
        if self._static is not None:
            return self._static
        with self._lock:
            loaded = self._loaded
        if loaded is None or time.monotonic() - loaded[0] >= self.cache_seconds:
            return None
        if isinstance(loaded[1], PolicyError):
            raise loaded[1]
        return loaded[1]

    def decide_now(
        self, action: str, *, mutating: bool, user: str, channel: str, account: str = ""
    ) -> Decision | None:
        """The decision when it needs no network call, for the ack path (Slack waits 3 seconds): the
        policy is at hand, and no user group's membership could change the decision for this caller or
        the memberships that could are still cached from an earlier lookup. None when only ``decide`` can
        tell (an SSM fetch or a Slack user-group lookup)."""
        try:
            policy = self._policy_at_hand()
        except PolicyError as error:
            return Decision(
                False, action, f"opsbot's policy is malformed, so every action is denied: {error}"
            )
        if policy is None:
            return None
        wanted = policy.groups_that_matter(
            action, mutating=mutating, user=user, channel=channel, account=account
        )
        member_of = self._cached_membership(user, wanted)
        if member_of is None:
            return None
        return policy.decide(
            action, mutating=mutating, user=user, channel=channel, groups=member_of, account=account
        )

    def _cached_membership(self, user: str, groups: Iterable[str]) -> frozenset[str] | None:
        """Which of ``groups`` ``user`` is in, from lookups still fresh in the cache; None when any of
        them would have to be asked of Slack (never looked up, expired, or a failed lookup)."""
        now = time.monotonic()
        member_of: set[str] = set()
        with _group_lock:
            for group in groups:
                cached = _group_cache.get(group)
                if cached is None or cached[2] or now - cached[0] >= self.cache_seconds:
                    return None
                if user in cached[1]:
                    member_of.add(group)
        return frozenset(member_of)

    def decide(
        self, action: str, *, mutating: bool, user: str, channel: str, slack: Any, account: str = ""
    ) -> Decision:
        try:
            policy = self.policy()
        except PolicyError as error:
            return Decision(
                False, action, f"opsbot's policy is malformed, so every action is denied: {error}"
            )
        wanted = policy.groups_that_matter(
            action, mutating=mutating, user=user, channel=channel, account=account
        )
        if not wanted or slack is None:
            return policy.decide(action, mutating=mutating, user=user, channel=channel, account=account)
        found = self.lookup_groups(user, wanted, slack)
        # A deny rule of a group that could not be checked is assumed to apply to actions that change
        # something, and not to read-only ones; an allow rule of such a group is never applied.
        assumed = frozenset(found.unknown) if mutating else frozenset()
        decision = policy.decide(
            action,
            mutating=mutating,
            user=user,
            channel=channel,
            groups=found.member_of,
            assume_in=assumed,
            account=account,
        )
        if not found.unknown or decision.allowed:
            return decision
        why = ", ".join(f"<!subteam^{g}> ({reason})" for g, reason in sorted(found.unknown.items()))
        note = (
            f" opsbot could not check your membership of {why}, so grants to those groups were not "
            "applied" + (" and their deny rules were." if assumed else ".")
        )
        return Decision(False, action, decision.reason + note, decision.rule)
