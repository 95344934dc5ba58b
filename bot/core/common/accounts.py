"""The AWS accounts one opsbot serves (``OPSBOT_ACCOUNTS``), parsed and validated without any I/O.

The configuration is JSON, one entry per account name::

    {"prod":    {"roleArn": "arn:aws:iam::222222222222:role/opsbot-read",
                 "changeRoleArn": "arn:aws:iam::222222222222:role/opsbot-change",
                 "externalId": "opsbot-3f9c", "regions": ["us-east-1", "ap-southeast-1"], "default": true},
     "shared":  {"regions": ["us-east-1"]}}

An entry without ``roleArn`` is opsbot's own account (its functions' credentials). ``changeRoleArn`` is
the optional second role of ``member-account.yaml`` for commands and buttons that change something; the
read-only role serves everything else. ``regions`` limits where commands may run (absent: any, the first
one is the account's default region). Unset or empty: no accounts, and opsbot works exactly as before in
its own account and region.

Choosing the account of a request (``choose``): ``--account NAME``, else the channel's account in the
policy, else the entry marked ``default``, else opsbot's own account. A region outside the account's list
is refused before any AWS call.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass

from bot.errors import ConfigError, UsageError, echo
from bot.strict_json import RepeatedKey, loads_unique

_KEYS = {"roleArn", "changeRoleArn", "externalId", "regions", "default", "description"}
# Every pattern is ASCII and used with fullmatch: ``\d`` and ``\w`` otherwise take any script's digits
# and letters (a full-width "１" typed by an IME), which AWS refuses later, and ``$`` a trailing newline.
MAX_NAME = 40
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,39}", re.ASCII)  # MAX_NAME characters
ROLE_ARN = re.compile(r"arn:aws[a-z-]*:iam::(?P<account>[0-9]{12}):role/[\w+=,.@/-]{1,512}", re.ASCII)
REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-[0-9]{1,2}", re.ASCII)
# The longest region name accepted (AWS's are up to 14 characters, e.g. ap-southeast-5): bounds what a
# button's value spends on its region (bot.listeners.framework.accounts.ACCOUNT_ROOM).
MAX_REGION = 25
ACCOUNT_ID = re.compile(r"[0-9]{12}", re.ASCII)
# sts:AssumeRole's ExternalId: 2-1224 characters of [\w+=,.@:/-], \w being ASCII's (STS refuses "é").
_EXTERNAL_ID = re.compile(r"[\w+=,.@:/-]{2,1224}", re.ASCII)
# RoleSessionName and SourceIdentity: 2-64 characters of [\w+=,.@-], where \w is ASCII's (a login or an
# Identity Center user name may hold other letters, which STS refuses).
_SESSION_CHARS = re.compile(r"[^\w+=,.@-]", re.ASCII)

# The name shown for opsbot's own account when no entry of the configuration names it.
OWN = ""


def is_region(text: str) -> bool:
    """``text`` is shaped like an AWS region name (ASCII, at most MAX_REGION characters)."""
    return len(text) <= MAX_REGION and REGION.fullmatch(text) is not None


@dataclass(frozen=True)
class Account:
    name: str  # "" = opsbot's own account, not named in the configuration
    role_arn: str = ""  # "" = opsbot's own credentials
    change_role_arn: str = ""
    external_id: str = ""
    regions: tuple[str, ...] = ()  # () = any region
    default: bool = False
    description: str = ""

    @property
    def own(self) -> bool:
        return not self.role_arn

    @property
    def account_id(self) -> str:
        found = ROLE_ARN.fullmatch(self.role_arn)
        return found.group("account") if found else ""

    @property
    def label(self) -> str:
        return self.name or "opsbot's own account"

    def role_for(self, *, mutating: bool) -> str:
        """The role a request assumes: the change role for a change, when the account has one."""
        return (self.change_role_arn or self.role_arn) if mutating else self.role_arn

    def allows_region(self, region: str) -> bool:
        return not self.regions or region in self.regions

    def to_json(self) -> dict[str, object]:
        data: dict[str, object] = {"name": self.name or "(own)", "own": self.own}
        if self.role_arn:
            data["roleArn"] = self.role_arn
        if self.change_role_arn:
            data["changeRoleArn"] = self.change_role_arn
        data["externalId"] = "set" if self.external_id else "none"
        if self.regions:
            data["regions"] = list(self.regions)
        if self.default:
            data["default"] = True
        return data


OWN_ACCOUNT = Account(name=OWN)


@dataclass(frozen=True)
class Accounts:
    entries: tuple[Account, ...] = ()

    @property
    def configured(self) -> bool:
        return bool(self.entries)

    @property
    def several(self) -> bool:
        """Replies and audit records name the account and region only when there is a choice."""
        return len(self.entries) > 1

    def names(self) -> tuple[str, ...]:
        return tuple(a.name for a in self.entries)

    def get(self, name: str) -> Account | None:
        wanted = name.strip().lower()
        return next((a for a in self.entries if a.name.lower() == wanted), None)

    def default(self) -> Account:
        """The entry marked default, else the entry for opsbot's own account, else the own account."""
        marked = next((a for a in self.entries if a.default), None)
        if marked is not None:
            return marked
        return next((a for a in self.entries if a.own), OWN_ACCOUNT)

    def own(self) -> Account | None:
        """opsbot's own account as a request may be aimed at it: its entry (the one without roleArn), else
        the unnamed own account when that is where commands go by default (no entry is ``default``);
        None when no command can reach it (another entry is the default and none names it)."""
        entry = next((a for a in self.entries if a.own), None)
        if entry is not None:
            return entry
        return None if any(a.default for a in self.entries) else OWN_ACCOUNT

    def named(self, name: str) -> Account:
        """The account called ``name``; a UsageError listing the configured ones otherwise."""
        found = self.get(name)
        if found is not None:
            return found
        if not self.entries:
            raise UsageError(
                f"There is no account {echo(name)}: opsbot has no accounts configured (OPSBOT_ACCOUNTS), "
                "so it works in its own account only. Leave out --account, or see docs/accounts.md."
            )
        raise UsageError(
            f"There is no account {echo(name)}. The configured accounts are: "
            + ", ".join(f"`{n}`" for n in self.names())
            + "."
            + self._id_note(name.strip())
        )

    def _id_note(self, name: str) -> str:
        """For an account id given where a name is expected: which name, if any, is that account's."""
        if not ACCOUNT_ID.fullmatch(name):
            return ""
        holder = next((a for a in self.entries if a.account_id == name), None)
        named = f": `{holder.name}` is the one in {name}" if holder is not None else ""
        return f" ({name} is an AWS account id; --account takes an account's name{named}.)"

    def choose(
        self,
        *,
        asked: str = "",
        channel_account: str = "",
        region: str = "",
        own_region: str = "",
    ) -> tuple[Account, str]:
        """(account, region) for a request. ``asked``: ``--account``; ``channel_account``: the policy's
        binding of the channel; ``region``: ``--region``; ``own_region``: where opsbot runs.

        Raises UsageError for an unknown account, a malformed region or one outside the account's list:
        before any AWS call, so nothing is read or changed in a place nobody meant."""
        if asked:
            account = self.named(asked)
        elif channel_account and self.get(channel_account) is not None:
            account = self.named(channel_account)
        else:
            account = self.default()
        return account, self.region_in(account, region=region, own_region=own_region)

    @staticmethod
    def region_in(account: Account, *, region: str = "", own_region: str = "") -> str:
        """The region of a request to ``account``: ``region`` (``--region``, a button's) when it is a region
        name in the account's list, else opsbot's own region when the account allows it, else the account's
        first region. Raises UsageError for a malformed region or one outside the list."""
        if region:
            if not is_region(region):
                raise UsageError(
                    f"{echo(region)} is not an AWS region name (like us-east-1 or ap-southeast-1)."
                )
            if not account.allows_region(region):
                raise UsageError(
                    f"Account `{account.label}` is not configured for region `{region}`: its regions are "
                    + ", ".join(f"`{r}`" for r in account.regions)
                    + ". Add the region to its entry in OPSBOT_ACCOUNTS, or pick one of those."
                )
            return region
        if account.regions and own_region not in account.regions:
            return account.regions[0]
        return own_region


def with_account_id_hint(error: UsageError, account: str, hint: str) -> UsageError:
    """``error`` (the refusal of ``--account``) with ``hint`` added when ``account`` is an AWS account id
    (12 digits); ``{id}`` in ``hint`` stands for it. For a command whose flag once took an account id."""
    if not hint or not ACCOUNT_ID.fullmatch(account.strip()):
        return error
    return UsageError(f"{error.message} {hint.format(id=account.strip())}", hint=error.hint)


def parse_accounts(text: str, *, source: str = "OPSBOT_ACCOUNTS") -> Accounts:
    """Parse and validate the configuration. Raises ConfigError saying exactly what is wrong."""
    if not text or not text.strip():
        return Accounts()
    try:
        data = loads_unique(text)
    except json.JSONDecodeError as error:
        raise ConfigError(
            f"{source} is not valid JSON: {error.msg} at line {error.lineno} column {error.colno}."
        ) from None
    except RepeatedKey as repeated:
        # json.loads would keep the last of the two silently: a copy-pasted account drops the first.
        raise ConfigError(
            f"{source} names {repeated.key!r} twice in one object (JSON keeps only the last one): "
            "remove or rename one of them."
        ) from None
    if not isinstance(data, dict):
        raise ConfigError(
            f'{source} must be a JSON object of accounts, like {{"prod": {{"roleArn": "arn:aws:iam::'
            '123456789012:role/opsbot-read", "externalId": "...", "regions": ["us-east-1"]}}.'
        )
    entries = [_entry(name, raw, source) for name, raw in data.items()]
    defaults = [a.name for a in entries if a.default]
    if len(defaults) > 1:
        raise ConfigError(
            f"{source} marks several accounts as default ({', '.join(defaults)}): mark at most one."
        )
    owns = [a.name for a in entries if a.own]
    if len(owns) > 1:
        raise ConfigError(
            f"{source} has several entries without roleArn ({', '.join(owns)}): only opsbot's own account "
            "may leave it out, and only once."
        )
    lowered = [a.name.lower() for a in entries]
    if len(set(lowered)) != len(lowered):
        raise ConfigError(f"{source} names an account twice (names are not case-sensitive).")
    return Accounts(tuple(entries))


def _entry(name: object, raw: object, source: str) -> Account:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ConfigError(
            f"{source}: {name!r} is not a usable account name (letters, digits, '-', '_' or '.', up to 40)."
        )
    where = f"{source} account {name!r}"
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where} must be an object with roleArn, externalId and regions.")
    unknown = set(raw) - _KEYS
    if unknown:
        raise ConfigError(
            f"{where} has unknown keys: {', '.join(sorted(unknown))} (an account has {', '.join(sorted(_KEYS))})."
        )
    role = _string(raw, "roleArn", where)
    change = _string(raw, "changeRoleArn", where)
    for key, value in (("roleArn", role), ("changeRoleArn", change)):
        if value and not ROLE_ARN.fullmatch(value):
            raise ConfigError(
                f"{where} {key} {value!r} is not an IAM role ARN (arn:aws:iam::123456789012:role/name)."
            )
    if change and not role:
        raise ConfigError(f"{where} has changeRoleArn without roleArn: name the read-only role too.")
    if change and ROLE_ARN.fullmatch(change).group("account") != ROLE_ARN.fullmatch(role).group("account"):  # type: ignore[union-attr]
        raise ConfigError(f"{where}: roleArn and changeRoleArn are in different accounts.")
    external = _string(raw, "externalId", where)
    if external and not _EXTERNAL_ID.fullmatch(external):
        raise ConfigError(
            f"{where} externalId must be 2 to 1224 characters of ASCII letters, digits and +=,.@:/-_ "
            "(STS refuses any other)."
        )
    if external and not role:
        raise ConfigError(f"{where} has externalId but no roleArn: an external id is for an assumed role.")
    regions_raw = raw.get("regions", [])
    if isinstance(regions_raw, str):
        regions_raw = [regions_raw]
    if not isinstance(regions_raw, list) or not all(isinstance(r, str) for r in regions_raw):
        raise ConfigError(f'{where} regions must be a list of region names, like ["us-east-1"].')
    regions = tuple(r.strip() for r in regions_raw if r.strip())
    for region in regions:
        if not is_region(region):
            raise ConfigError(f"{where} regions has {region!r}, which is not an AWS region name.")
    default = raw.get("default", False)
    if not isinstance(default, bool):
        raise ConfigError(f"{where} default must be true or false.")
    description = raw.get("description", "")
    if not isinstance(description, str):
        raise ConfigError(f"{where} description must be a string.")
    return Account(name, role, change, external, regions, default, description)


def _string(raw: Mapping[str, object], key: str, where: str) -> str:
    value = raw.get(key, "")
    if not isinstance(value, str):
        raise ConfigError(f"{where} {key} must be a string.")
    return value.strip()


def session_name(principal: str) -> str:
    """``opsbot-<principal>`` as sts:AssumeRole's RoleSessionName allows it (2-64 of [\\w+=,.@-])."""
    cleaned = _SESSION_CHARS.sub("-", principal) or "unknown"
    name = cleaned if cleaned.startswith("opsbot-") else f"opsbot-{cleaned}"
    return name[:64]


def source_identity(principal: str) -> str:
    """The SourceIdentity CloudTrail shows in the member account: the Slack user id itself (or
    ``opsbot-<function>`` for the scheduled and event-driven functions)."""
    cleaned = _SESSION_CHARS.sub("-", principal) or "unknown"
    return (cleaned if len(cleaned) >= 2 else f"{cleaned}-")[:64]


def person_of(identity_arn: str) -> str:
    """Who an sts:GetCallerIdentity ARN names, for RoleSessionName and SourceIdentity: an assumed role's
    session name (an IAM Identity Center user's, e.g. ``jane@example.com``), an IAM user's or a federated
    user's name; "" for an account's root user or any other form."""
    parts = identity_arn.split(":", 5)
    if len(parts) < 6 or parts[0] != "arn":
        return ""
    kind, _, rest = parts[5].partition("/")
    if kind == "assumed-role":
        return rest.split("/", 1)[1] if "/" in rest else ""
    if kind in ("user", "federated-user"):
        return rest.rsplit("/", 1)[-1]
    return ""


def role_name_of(identity_arn: str) -> str:
    """The role an assumed-role ARN's session belongs to (``arn:aws:sts::1:assumed-role/NAME/session``);
    "" for any other identity."""
    parts = identity_arn.split(":", 5)
    if len(parts) < 6 or not parts[5].startswith("assumed-role/"):
        return ""
    return parts[5].split("/")[1]
