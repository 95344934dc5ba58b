"""One audit record per command or button click: a JSON log line and an item in the state table.

Secrets never reach the record: arguments declared secret are replaced before it is built, and
``redact`` also masks anything that looks like a token or an activation code, as a second line of defence.
"""

from __future__ import annotations

import getpass
import json
import logging
import re
import time
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bot.config import Settings

logger = logging.getLogger("opsbot.audit")

MASK = "[redacted]"
# The arguments kept in a record (the log line and the item): enough to see what was asked.
MAX_ARGS = 500
_SECRET_VALUES = [
    re.compile(r"\bxox[abposr]-[A-Za-z0-9-]+"),  # Slack tokens
    re.compile(r"\bxapp-[A-Za-z0-9-]+"),
    re.compile(r"\bAC-[0-9a-fA-F]{8,}\b"),  # IoT activation codes (AC- + hex)
    re.compile(r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b"),  # AWS access key ids
]
_SECRET_ASSIGNMENT = re.compile(r"(?i)\b(secret|password|token|code)=\S+")


def redact(text: str) -> str:
    for pattern in _SECRET_VALUES:
        text = pattern.sub(MASK, text)
    return _SECRET_ASSIGNMENT.sub(lambda m: f"{m.group(1)}={MASK}", text)


def new_ref() -> str:
    """A short reference id users can quote; the same id is in the log and the audit record, and on every
    log line of the request from here on (bot.observability)."""
    from bot import observability

    ref = uuid.uuid4().hex[:10]
    observability.bind(ref=ref)
    return ref


@dataclass(frozen=True)
class AuditRecord:
    ref: str
    time: str
    user: str
    team: str
    channel: str
    kind: str  # "command" | "action" | "view" | "handler"
    command: str  # "/device activate" or "button mail:reenable"
    action: str  # policy action, e.g. "device.activate"
    args: str  # redacted
    outcome: str  # ok | denied | usage | error | failed | duplicate | help | <domain outcome>
    duration_ms: int
    user_name: str = ""
    detail: str = ""
    # Where the command went, when opsbot serves several accounts (docs/accounts.md).
    account: str = ""
    region: str = ""

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v not in ("", None)}


def build_record(
    *,
    ref: str,
    started: float,
    ended: float,
    user: str,
    team: str,
    channel: str,
    kind: str,
    command: str,
    action: str,
    args: str,
    outcome: str,
    user_name: str = "",
    detail: str = "",
    account: str = "",
    region: str = "",
) -> AuditRecord:
    return AuditRecord(
        ref=ref,
        time=datetime.fromtimestamp(started, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        user=user,
        team=team,
        channel=channel,
        kind=kind,
        command=command,
        action=action,
        # What was typed can be anything a person pasted: capped like the detail, after redaction.
        args=redact(args)[:MAX_ARGS],
        outcome=outcome,
        duration_ms=max(0, round((ended - started) * 1000)),
        user_name=user_name,
        detail=redact(detail)[:500],
        account=account,
        region=region,
    )


def write(record: AuditRecord, *, state_table: str, ttl_days: int) -> bool:
    """Log the record and store it. Never raises: a lost audit item is logged as an error."""
    data = record.to_json()
    logger.info(json.dumps({"audit": data}, sort_keys=True))
    try:
        from bot.aws.state import StateTable

        StateTable(state_table).put_audit(data, ttl_days=ttl_days)
        return True
    except Exception as error:
        logger.error("audit record %s could not be stored in %s: %s", record.ref, state_table, error)
        return False


def cli_login() -> str:
    """The terminal's login, as ``cli:<login>``."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no passwd entry (containers)
        return "cli:unknown"


def cli_actor() -> str:
    """Who runs the CLI, as audit records (and the changes' "by") name them: with a role assumed in the
    person's name (``--account``, or a default account with a role), exactly what the member account's
    CloudTrail names them by, the SourceIdentity ``cli-<name>`` (``<name>`` from sts:GetCallerIdentity,
    asked once when the role is assumed); else ``cli:<login>``, with no STS call."""
    from bot.aws.clients import current_target

    target = current_target()
    if target is not None and target.role_arn and target.principal:
        from bot.core.common.accounts import source_identity

        return source_identity(target.principal)
    return cli_login()


def write_cli(
    settings: Settings,
    *,
    action: str,
    args: str,
    outcome: str,
    started: float,
    actor: str = "",
    detail: str = "",
) -> bool:
    """One audit record for a change made from the terminal (in Slack the command framework writes it)."""
    from bot.aws.clients import current_target

    target = current_target()
    user, login = actor or cli_actor(), cli_login()
    record = build_record(
        ref=new_ref(),
        started=started,
        ended=time.time(),
        account=(target.account or "own") if target is not None else "",
        region=target.region if target is not None else "",
        user=user,
        # The login too, when the actor is the name CloudTrail shows: which terminal account it was.
        user_name=login if user != login else "",
        team="",
        channel="cli",
        kind="cli",
        command=f"opsbot {action.replace('.', ' ')}",
        action=action,
        args=args,
        outcome=outcome,
        detail=detail,
    )
    return write(record, state_table=settings.state_table, ttl_days=settings.audit_ttl_days)
