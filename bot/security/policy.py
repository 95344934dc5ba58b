"""Who may run what: the authorization policy, parsed and evaluated without any I/O.

The policy is JSON (from ``OPSBOT_POLICY`` or an SSM parameter named by ``OPSBOT_POLICY_PARAMETER``)::

    {
      "default_read": "allow",                 # or "deny": read-only commands need a rule too
      "rules": [
        {"allow": ["dns.apply", "dns.force"], "usergroups": ["S0ONCALL"], "channels": ["C0OPS"]},
        {"allow": ["device.*"], "users": ["U0ALICE"]},
        {"deny": ["*"], "channels": ["C0GENERAL"], "description": "keep #general quiet"}
      ]
    }

A rule applies to a caller when the caller is one of its ``users`` or a member of one of its
``usergroups`` (a rule with neither applies to everyone) and, when it lists ``channels``, the command was
run in one of them. Actions are ``<command>.<subcommand>`` names; ``*`` and ``dns.*`` patterns match as
globs. Evaluation: an applicable ``deny`` rule wins; then an applicable ``allow`` rule allows; otherwise
read-only actions follow ``default_read`` and mutating actions are denied.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any

from bot.errors import ConfigError

_RULE_KEYS = {"allow", "deny", "users", "usergroups", "channels", "description"}
_TOP_KEYS = {"default_read", "rules", "description", "version"}
_EXAMPLE_ID = {"users": "U0123ABCD", "usergroups": "S0123ABCD", "channels": "C0123ABCD"}
_ID = {
    "users": re.compile(r"^[UW][A-Z0-9]{2,}$"),
    "usergroups": re.compile(r"^S[A-Z0-9]{2,}$"),
    "channels": re.compile(r"^[CGD][A-Z0-9]{2,}$"),
}


class PolicyError(ConfigError):
    """The policy text is not a valid policy; the message says where and why."""


@dataclass(frozen=True)
class Rule:
    effect: str  # "allow" | "deny"
    actions: tuple[str, ...]
    users: frozenset[str] = frozenset()
    usergroups: frozenset[str] = frozenset()
    channels: frozenset[str] = frozenset()
    description: str = ""

    def matches_action(self, action: str) -> bool:
        return any(fnmatchcase(action, pattern) for pattern in self.actions)

    def applies_to(self, user: str, groups: Collection[str], channel: str) -> bool:
        if (self.users or self.usergroups) and user not in self.users and not (self.usergroups & set(groups)):
            return False
        return not self.channels or channel in self.channels

    def who(self) -> str:
        """Who the rule is for, in Slack mrkdwn (mentions render as names)."""
        parts = [f"<@{u}>" for u in sorted(self.users)]
        parts += [f"members of <!subteam^{g}>" for g in sorted(self.usergroups)]
        subject = ", ".join(parts) if parts else "everyone"
        if self.channels:
            subject += " in " + ", ".join(f"<#{c}>" for c in sorted(self.channels))
        return subject


@dataclass(frozen=True)
class Decision:
    allowed: bool
    action: str
    reason: str
    rule: Rule | None = None


@dataclass(frozen=True)
class Policy:
    rules: tuple[Rule, ...] = ()
    default_read: str = "allow"
    source: str = "default"  # where it came from, for /ops policy
    description: str = ""

    def usergroups_for(self, action: str) -> frozenset[str]:
        """User groups whose membership could change the decision on ``action``."""
        groups: set[str] = set()
        for rule in self.rules:
            if rule.matches_action(action):
                groups |= rule.usergroups
        return frozenset(groups)

    def groups_that_matter(self, action: str, *, mutating: bool, user: str, channel: str) -> frozenset[str]:
        """The user groups whose membership could change the decision for this caller (often none, so
        that a policy naming groups costs no Slack call where they cannot matter)."""

        def groups_of(effect: str) -> set[str]:
            found: set[str] = set()
            for rule in self.rules:
                if (
                    rule.effect == effect
                    and rule.usergroups
                    and rule.matches_action(action)
                    and user not in rule.users
                    and (not rule.channels or channel in rule.channels)
                ):
                    found |= rule.usergroups
            return found

        base = self.decide(action, mutating=mutating, user=user, channel=channel)
        if base.allowed:
            return frozenset(groups_of("deny"))  # only a group's deny rule could take it away
        if base.rule is not None:
            return frozenset()  # denied by a rule that applies whatever the groups
        grants = groups_of("allow")
        return frozenset(grants | groups_of("deny")) if grants else frozenset()

    def decide(
        self,
        action: str,
        *,
        mutating: bool,
        user: str,
        channel: str,
        groups: Collection[str] = (),
        assume_in: Collection[str] = (),
    ) -> Decision:
        """``assume_in``: groups whose deny rules apply as if the user were a member (their membership
        could not be checked); their allow rules do not."""
        deny_groups = set(groups) | set(assume_in)
        for rule in self.rules:
            if (
                rule.effect == "deny"
                and rule.matches_action(action)
                and rule.applies_to(user, deny_groups, channel)
            ):
                why = f" ({rule.description})" if rule.description else ""
                return Decision(False, action, f"the policy denies `{action}` to {rule.who()}{why}.", rule)
        for rule in self.rules:
            if (
                rule.effect == "allow"
                and rule.matches_action(action)
                and rule.applies_to(user, groups, channel)
            ):
                return Decision(True, action, f"allowed to {rule.who()}.", rule)
        if not mutating and self.default_read == "allow":
            return Decision(True, action, "read-only commands are open to everyone.")
        return Decision(False, action, self.who_may(action))

    def who_may(self, action: str) -> str:
        """A sentence naming who may run ``action``, for denial messages."""
        grants = [r.who() for r in self.rules if r.effect == "allow" and r.matches_action(action)]
        if not grants:
            return (
                f"no one may run `{action}`: the policy grants it to no one. "
                "An admin can add a rule to OPSBOT_POLICY (see README, Authorization)."
            )
        return f"only {'; '.join(grants)} may run `{action}`."

    def to_json(self) -> dict[str, Any]:
        rules = []
        for rule in self.rules:
            item: dict[str, Any] = {rule.effect: list(rule.actions)}
            for key in ("users", "usergroups", "channels"):
                if getattr(rule, key):
                    item[key] = sorted(getattr(rule, key))
            if rule.description:
                item["description"] = rule.description
            rules.append(item)
        return {"default_read": self.default_read, "rules": rules}


def _strings(value: Any, where: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise PolicyError(f"Policy {where} must be a list of non-empty strings.")
    return tuple(v.strip() for v in value)


def parse_policy(text: str, *, known_actions: Iterable[str] = (), source: str = "OPSBOT_POLICY") -> Policy:
    """Parse and validate policy JSON. Raises PolicyError saying exactly what is wrong."""
    if not text.strip():
        return Policy(source="default")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise PolicyError(
            f"The policy in {source} is not valid JSON: {error.msg} "
            f"at line {error.lineno} column {error.colno}."
        ) from None
    if not isinstance(data, dict):
        raise PolicyError(f'The policy in {source} must be a JSON object with a "rules" list.')
    unknown = set(data) - _TOP_KEYS
    if unknown:
        raise PolicyError(f"The policy in {source} has unknown keys: {', '.join(sorted(unknown))}.")
    default_read = data.get("default_read", "allow")
    if default_read not in {"allow", "deny"}:
        raise PolicyError(f'Policy default_read must be "allow" or "deny", not {default_read!r}.')
    raw_rules = data.get("rules", [])
    if not isinstance(raw_rules, list):
        raise PolicyError('Policy "rules" must be a list.')
    known = sorted(set(known_actions))
    rules = []
    for index, raw in enumerate(raw_rules, start=1):
        where = f"rule {index}"
        if not isinstance(raw, dict):
            raise PolicyError(f"Policy {where} must be an object.")
        unknown = set(raw) - _RULE_KEYS
        if unknown:
            raise PolicyError(f"Policy {where} has unknown keys: {', '.join(sorted(unknown))}.")
        effects = [key for key in ("allow", "deny") if key in raw]
        if len(effects) != 1:
            raise PolicyError(f'Policy {where} must have exactly one of "allow" or "deny".')
        effect = effects[0]
        actions = _strings(raw[effect], f"{where} {effect}")
        for pattern in actions:
            if known and not any(fnmatchcase(action, pattern) for action in known):
                raise PolicyError(
                    f"Policy {where} names {pattern!r}, which matches no action. "
                    f"Actions are: {', '.join(known)}."
                )
        ids: dict[str, frozenset[str]] = {}
        for key in ("users", "usergroups", "channels"):
            values = _strings(raw.get(key, []), f"{where} {key}") if key in raw else ()
            for value in values:
                if not _ID[key].match(value):
                    raise PolicyError(
                        f"Policy {where} {key} has {value!r}, which is not a Slack {key[:-1]} id "
                        f"(ids look like {_EXAMPLE_ID[key]})."
                    )
            ids[key] = frozenset(values)
        description = raw.get("description", "")
        if not isinstance(description, str):
            raise PolicyError(f"Policy {where} description must be a string.")
        rules.append(Rule(effect, actions, ids["users"], ids["usergroups"], ids["channels"], description))
    description = data.get("description", "")
    return Policy(tuple(rules), default_read, source, description if isinstance(description, str) else "")


@dataclass(frozen=True)
class Caller:
    """Who is asking, from the Slack payload."""

    user_id: str
    team_id: str = ""
    channel_id: str = ""
    user_name: str = ""
    groups: frozenset[str] = field(default_factory=frozenset)
