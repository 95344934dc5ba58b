"""Who may run what: the authorization policy, parsed and evaluated without any I/O.

The policy is JSON (from ``OPSBOT_POLICY`` or an SSM parameter named by ``OPSBOT_POLICY_PARAMETER``)::

    {
      "default_read": "allow",                 # or "deny": read-only commands need a rule too
      "rules": [
        {"allow": ["dns.apply", "dns.force"], "usergroups": ["S0ONCALL"], "channels": ["C0OPS"]},
        {"allow": ["device.*"], "users": ["U0ALICE"]},
        {"deny": ["*"], "channels": ["C0GENERAL"], "description": "keep #general quiet"}
      ],
      "read_scopes": [                         # optional: what /apilogs may read, per channel
        {"channels": ["C0SHOP"], "apis": ["shop-api"], "stages": ["prod", "staging"],
         "log_groups": ["API-Gateway-Execution-Logs_", "/aws/lambda/shop-"]},
        {"channels": ["C0PLATFORM"], "opsbot_logs": true},
        {"apis": []}                           # no channels: every other channel (here: nothing)
      ],
      "shared_channels": ["C0PARTNER"]         # optional: Slack Connect channels that may see log lines
    }

A rule applies to a caller when the caller is one of its ``users`` or a member of one of its
``usergroups`` (a rule with neither applies to everyone) and, when it lists ``channels``, the command was
run in one of them. Actions are ``<command>.<subcommand>`` names; ``*`` and ``dns.*`` patterns match as
globs. Evaluation: an applicable ``deny`` rule wins; then an applicable ``allow`` rule allows; otherwise
read-only actions follow ``default_read`` and mutating actions are denied.

What a read grant exposes: ``/apilogs`` reads any log group the bot's role can read that belongs to the
API stage asked for (its execution and access logs, every Lambda function behind it, including functions
named by its execution log), and shows the lines to the caller (a tail: to the whole channel). The
optional ``read_scopes`` narrow that per channel; they apply after the rules allowed the action. The
first scope whose ``channels`` include the channel applies (a scope without ``channels`` applies to
every channel, so put it last as the default); a channel no scope applies to may read nothing. In a
scope, ``apis`` are API ids or names, ``stages`` stage names (both may be globs such as ``shop-*``;
absent: any), ``log_groups`` log-group name prefixes (absent: any group of an allowed API stage; groups
outside them are never read, and the answer says which were skipped). opsbot's own function logs
(``/aws/lambda/<stack>-*``: its audit lines, who did what) are never read unless the scope says
``"opsbot_logs": true``. Without ``read_scopes``, every channel may read every API and stage (as before
scopes existed), opsbot's own function logs excepted.

Log lines are internal: opsbot never posts them in a channel shared with another organisation (Slack
Connect: ``is_ext_shared``, also while the invitation is pending), nor sends them to a person of another
organisation, unless that channel is listed in ``shared_channels``. Private answers to members of this
workspace stay possible everywhere (the request-id shortcut, ``@opsbot``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any

from bot.errors import ConfigError
from bot.strict_json import RepeatedKey, loads_unique

_RULE_KEYS = {"allow", "deny", "users", "usergroups", "channels", "accounts", "description"}
_TOP_KEYS = {
    "default_read",
    "rules",
    "description",
    "version",
    "read_scopes",
    "shared_channels",
    "channel_accounts",
}
_SCOPE_KEYS = {"channels", "apis", "stages", "log_groups", "opsbot_logs", "description"}
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
    # Account names (OPSBOT_ACCOUNTS, lower case): the rule applies only to requests aimed at them.
    accounts: frozenset[str] = frozenset()

    def matches_action(self, action: str) -> bool:
        return any(fnmatchcase(action, pattern) for pattern in self.actions)

    def in_account(self, account: str) -> bool:
        return not self.accounts or account.lower() in self.accounts

    def applies_to(self, user: str, groups: Collection[str], channel: str, account: str = "") -> bool:
        if not self.in_account(account):
            return False
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
        if self.accounts:
            noun = "account" if len(self.accounts) == 1 else "accounts"
            subject += f" ({noun} " + ", ".join(f"`{a}`" for a in sorted(self.accounts)) + ")"
        return subject


@dataclass(frozen=True)
class ReadScope:
    """What ``/apilogs`` may read in a channel. ``None``: any; an empty tuple: none."""

    apis: tuple[str, ...] | None = None  # API ids or names (globs)
    stages: tuple[str, ...] | None = None  # stage names (globs)
    log_groups: tuple[str, ...] | None = None  # log-group name prefixes
    opsbot_logs: bool = False  # opsbot's own function log groups
    channels: frozenset[str] = frozenset()  # where it applies (empty: every channel)
    description: str = ""
    # Set for the scope of a channel that no scope of the policy applies to.
    unlisted: bool = False

    @property
    def unrestricted(self) -> bool:
        return self.apis is None and self.stages is None and self.log_groups is None

    def allows_api(self, api_id: str, name: str = "") -> bool:
        if self.apis is None:
            return True
        # Ids exactly; names as API Gateway's console shows them, case aside (as --api reads them).
        return any(
            fnmatchcase(api_id, pattern) or (name and fnmatchcase(name.lower(), pattern.lower()))
            for pattern in self.apis
        )

    def allows_stage(self, stage: str) -> bool:
        return self.stages is None or any(fnmatchcase(stage, pattern) for pattern in self.stages)

    def allows_group(self, group: str, *, opsbot_prefixes: Iterable[str] = ()) -> bool:
        """Whether ``group`` may be read; ``opsbot_prefixes``: where opsbot's own function logs are."""
        if not group:
            return False
        if not self.opsbot_logs and any(group.startswith(p) for p in opsbot_prefixes if p):
            return False
        return self.log_groups is None or any(group.startswith(prefix) for prefix in self.log_groups)

    def only_api(self) -> str:
        """The one API this scope allows, when it names exactly one without a glob ("" otherwise)."""
        return _only(self.apis)

    def only_stage(self) -> str:
        return _only(self.stages)

    def allowed_words(self) -> str:
        """What may be read, in words (mrkdwn), for refusals: "only API `shop-api`, stage `prod`"."""
        if self.apis == () or self.stages == () or self.log_groups == ():
            return "no API logs"
        if self.unrestricted:
            return "any API's logs" + ("" if self.opsbot_logs else " except opsbot's own")
        parts = [
            f"{noun} {_listed(values)}"
            for noun, values in (
                ("API", self.apis),
                ("stage", self.stages),
                ("log groups starting with", self.log_groups),
            )
            if values is not None
        ]
        return "only " + ", ".join(parts)

    def refusal(self, what: str) -> str:
        """The sentence refusing a read of ``what`` (e.g. "API `x` (abc123)"), naming what is allowed."""
        if self.unlisted:
            return (
                f"Reading {what} is not allowed in this channel: opsbot's policy scopes reads per channel "
                "(read_scopes) and none applies here. Ask an admin, or use a channel where reads are allowed."
            )
        why = f" ({self.description})" if self.description else ""
        return f"Reading {what} is not allowed in this channel: here, /apilogs may read {self.allowed_words()}{why}."

    def to_json(self) -> dict[str, Any]:
        item: dict[str, Any] = {}
        if self.channels:
            item["channels"] = sorted(self.channels)
        for key in ("apis", "stages", "log_groups"):
            if getattr(self, key) is not None:
                item[key] = list(getattr(self, key))
        if self.opsbot_logs:
            item["opsbot_logs"] = True
        if self.description:
            item["description"] = self.description
        return item


def _only(values: tuple[str, ...] | None) -> str:
    if values is None or len(values) != 1 or any(c in values[0] for c in "*?["):
        return ""
    return values[0]


def _listed(values: tuple[str, ...]) -> str:
    return " or ".join(f"`{v}`" for v in values)


# The scope of a channel that the policy's read_scopes do not mention.
UNLISTED = ReadScope(apis=(), unlisted=True)


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
    # None: no read_scopes (every channel reads everything, opsbot's own logs excepted).
    read_scopes: tuple[ReadScope, ...] | None = None
    # Channels shared with another organisation (Slack Connect) where log lines may be posted all the same.
    shared_channels: frozenset[str] = frozenset()

    def allows_shared(self, channel: str) -> bool:
        """Whether log lines may be posted in ``channel`` although it is shared with another organisation."""
        return channel in self.shared_channels

    # channel id -> the account its commands go to unless --account says otherwise (docs/accounts.md).
    channel_accounts: tuple[tuple[str, str], ...] = ()

    def channel_account(self, channel: str) -> str:
        """The account ``channel`` is bound to ("" when none)."""
        return next((account for bound, account in self.channel_accounts if bound == channel), "")

    def read_scope(self, channel: str) -> ReadScope:
        """What ``/apilogs`` may read in ``channel``: the first read scope that applies to it."""
        if self.read_scopes is None:
            return ReadScope()
        for scope in self.read_scopes:
            if not scope.channels or channel in scope.channels:
                return scope
        return UNLISTED

    def usergroups_for(self, action: str) -> frozenset[str]:
        """User groups whose membership could change the decision on ``action``."""
        groups: set[str] = set()
        for rule in self.rules:
            if rule.matches_action(action):
                groups |= rule.usergroups
        return frozenset(groups)

    def groups_that_matter(
        self, action: str, *, mutating: bool, user: str, channel: str, account: str = ""
    ) -> frozenset[str]:
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
                    and rule.in_account(account)
                ):
                    found |= rule.usergroups
            return found

        base = self.decide(action, mutating=mutating, user=user, channel=channel, account=account)
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
        account: str = "",
    ) -> Decision:
        """``assume_in``: groups whose deny rules apply as if the user were a member (their membership
        could not be checked); their allow rules do not. ``account``: the account the request is aimed at
        (its name in OPSBOT_ACCOUNTS; rules limited to other accounts do not apply)."""
        deny_groups = set(groups) | set(assume_in)
        for rule in self.rules:
            if (
                rule.effect == "deny"
                and rule.matches_action(action)
                and rule.applies_to(user, deny_groups, channel, account)
            ):
                why = f" ({rule.description})" if rule.description else ""
                return Decision(False, action, f"the policy denies `{action}` to {rule.who()}{why}.", rule)
        for rule in self.rules:
            if (
                rule.effect == "allow"
                and rule.matches_action(action)
                and rule.applies_to(user, groups, channel, account)
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
                "An admin can add a rule to OPSBOT_POLICY (see docs/authorization.md)."
            )
        return f"only {'; '.join(grants)} may run `{action}`."

    def to_json(self) -> dict[str, Any]:
        rules = []
        for rule in self.rules:
            item: dict[str, Any] = {rule.effect: list(rule.actions)}
            for key in ("users", "usergroups", "channels", "accounts"):
                if getattr(rule, key):
                    item[key] = sorted(getattr(rule, key))
            if rule.description:
                item["description"] = rule.description
            rules.append(item)
        data: dict[str, Any] = {"default_read": self.default_read, "rules": rules}
        if self.read_scopes is not None:
            data["read_scopes"] = [scope.to_json() for scope in self.read_scopes]
        if self.shared_channels:
            data["shared_channels"] = sorted(self.shared_channels)
        if self.channel_accounts:
            data["channel_accounts"] = dict(self.channel_accounts)
        return data


def _strings(value: Any, where: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise PolicyError(f"Policy {where} must be a list of non-empty strings.")
    return tuple(v.strip() for v in value)


def parse_policy(
    text: str,
    *,
    known_actions: Iterable[str] = (),
    source: str = "OPSBOT_POLICY",
    known_accounts: Iterable[str] | None = (),
) -> Policy:
    """Parse and validate policy JSON. Raises PolicyError saying exactly what is wrong.
    ``known_accounts``: the account names of OPSBOT_ACCOUNTS, which ``accounts`` and
    ``channel_accounts`` may name; None when OPSBOT_ACCOUNTS is malformed: the names are not checked
    (no command can be aimed at an account then, and the doctor, which runs all the same, says why)."""
    accounts_known = None if known_accounts is None else {name.lower(): name for name in known_accounts}
    if not text.strip():
        return Policy(source="default")
    try:
        data = loads_unique(text)
    except json.JSONDecodeError as error:
        raise PolicyError(
            f"The policy in {source} is not valid JSON: {error.msg} "
            f"at line {error.lineno} column {error.colno}."
        ) from None
    except RepeatedKey as repeated:
        # json.loads would keep the last silently: a second "grants" would drop the first, unseen.
        raise PolicyError(
            f"The policy in {source} names {repeated.key!r} twice in one object (JSON keeps only the last "
            "one): merge them or remove one."
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
        accounts = _strings(raw["accounts"], f"{where} accounts") if "accounts" in raw else ()
        for name in accounts:
            _check_account(name, accounts_known, f"{where} accounts")
        rules.append(
            Rule(
                effect,
                actions,
                ids["users"],
                ids["usergroups"],
                ids["channels"],
                description,
                frozenset(a.lower() for a in accounts),
            )
        )
    description = data.get("description", "")
    scopes = _read_scopes(data["read_scopes"]) if "read_scopes" in data else None
    shared = _strings(data["shared_channels"], "shared_channels") if "shared_channels" in data else ()
    for value in shared:
        if not _ID["channels"].match(value):
            raise PolicyError(
                f"Policy shared_channels has {value!r}, which is not a Slack channel id "
                f"(ids look like {_EXAMPLE_ID['channels']})."
            )
    bound = _channel_accounts(data.get("channel_accounts", {}), accounts_known)
    return Policy(
        tuple(rules),
        default_read,
        source,
        description if isinstance(description, str) else "",
        scopes,
        frozenset(shared),
        bound,
    )


def _check_account(name: str, known: dict[str, str] | None, where: str) -> None:
    if known is None or name.lower() in known:
        return
    if not known:
        raise PolicyError(
            f"Policy {where} names the account {name!r}, but OPSBOT_ACCOUNTS configures no accounts."
        )
    raise PolicyError(
        f"Policy {where} names the account {name!r}, which OPSBOT_ACCOUNTS does not configure. "
        f"Accounts are: {', '.join(sorted(known.values()))}."
    )


def _channel_accounts(raw: Any, known: dict[str, str] | None) -> tuple[tuple[str, str], ...]:
    """``{"C0PROD": "prod"}``: the account each channel's commands go to by default."""
    if not isinstance(raw, dict):
        raise PolicyError('Policy "channel_accounts" must be an object of channel id -> account name.')
    bound = []
    for channel, account in raw.items():
        if not _ID["channels"].match(str(channel)):
            raise PolicyError(
                f"Policy channel_accounts has {channel!r}, which is not a Slack channel id "
                f"(ids look like {_EXAMPLE_ID['channels']})."
            )
        if not isinstance(account, str) or not account.strip():
            raise PolicyError(f"Policy channel_accounts {channel} must name an account.")
        _check_account(account.strip(), known, f"channel_accounts {channel}")
        name = account.strip()
        bound.append((str(channel), name if known is None else known[name.lower()]))
    return tuple(bound)


def _read_scopes(raw_scopes: Any) -> tuple[ReadScope, ...]:
    if not isinstance(raw_scopes, list):
        raise PolicyError('Policy "read_scopes" must be a list of objects.')
    scopes = []
    for index, raw in enumerate(raw_scopes, start=1):
        where = f"read scope {index}"
        if not isinstance(raw, dict):
            raise PolicyError(f"Policy {where} must be an object.")
        unknown = set(raw) - _SCOPE_KEYS
        if unknown:
            raise PolicyError(
                f"Policy {where} has unknown keys: {', '.join(sorted(unknown))} "
                f"(a read scope has {', '.join(sorted(_SCOPE_KEYS))})."
            )
        channels = _strings(raw["channels"], f"{where} channels") if "channels" in raw else ()
        for value in channels:
            if not _ID["channels"].match(value):
                raise PolicyError(
                    f"Policy {where} channels has {value!r}, which is not a Slack channel id "
                    f"(ids look like {_EXAMPLE_ID['channels']})."
                )
        lists: dict[str, tuple[str, ...] | None] = {}
        for key in ("apis", "stages", "log_groups"):
            # An empty list means none (e.g. a last, default scope that reads nothing); absent means any.
            lists[key] = _strings(raw[key], f"{where} {key}") if key in raw else None
        opsbot_logs = raw.get("opsbot_logs", False)
        if not isinstance(opsbot_logs, bool):
            raise PolicyError(f"Policy {where} opsbot_logs must be true or false.")
        description = raw.get("description", "")
        if not isinstance(description, str):
            raise PolicyError(f"Policy {where} description must be a string.")
        scopes.append(
            ReadScope(
                apis=lists["apis"],
                stages=lists["stages"],
                log_groups=lists["log_groups"],
                opsbot_logs=opsbot_logs,
                channels=frozenset(channels),
                description=description,
            )
        )
    return tuple(scopes)


@dataclass(frozen=True)
class Caller:
    """Who is asking, from the Slack payload."""

    user_id: str
    team_id: str = ""
    channel_id: str = ""
    user_name: str = ""
    groups: frozenset[str] = field(default_factory=frozenset)
