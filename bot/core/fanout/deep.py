"""``fanout check --deep``: cross-account targets proven, not only well-formed.

For each target with a ``role`` (memcached and redis ignore theirs), assume the role with the target's
``externalId`` as the fan-out function does, then describe the destination in the target's account and
region with those credentials: the stream, delivery stream, queue, topic, function, search domain or IoT
endpoint. Read-only. A failure is reported with AWS's reason; describing proves the role can be assumed
and reaches the destination, while the write itself is only proven by the function's own traffic.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from bot.aws import fanout as fanout_aws
from bot.config import Settings
from bot.core.fanout.commands import (
    CACHE_TYPES,
    ERROR,
    EXTERNAL_ID,
    ROLE,
    TARGET_TYPES,
    Finding,
    Target,
    parse_source,
)
from bot.errors import AwsError

SESSION_NAME = "opsbot-fanout-check"
WORKERS = 4


@dataclass(frozen=True)
class DeepResult:
    table: str
    source_arn: str
    target_id: str
    type: str
    destination: str
    role: str
    region: str
    ok: bool
    detail: str  # what was found, or why it failed (a sentence)

    @property
    def account(self) -> str:
        found = ROLE.fullmatch(self.role)
        return self.role.split(":")[4] if found else ""

    def to_json(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "sourceArn": self.source_arn,
            "id": self.target_id,
            "type": self.type,
            "destination": self.destination,
            "role": self.role,
            "account": self.account,
            "region": self.region,
            "ok": self.ok,
            "detail": self.detail,
        }

    def finding(self) -> Finding:
        return Finding(ERROR, "deep", self.detail, self.table, self.source_arn, self.target_id)


def candidates(targets: Iterable[Target]) -> list[Target]:
    """Targets whose role the function would assume (a well-formed role, a type that uses it)."""
    return [
        t
        for t in targets
        if isinstance(t.attributes.get("role"), str)
        and ROLE.fullmatch(t.attributes["role"])
        and t.type in TARGET_TYPES
        and t.type not in CACHE_TYPES
    ]


def check_one(target: Target, default_region: str) -> DeepResult:
    role = str(target.attributes["role"])
    external_id = target.attributes.get("externalId")
    region = target.text("region") or parse_source(target.source_arn).region or default_region
    account = role.split(":")[4]

    def result(ok: bool, detail: str) -> DeepResult:
        return DeepResult(
            target.table,
            target.source_arn,
            target.id,
            target.type,
            target.destination,
            role,
            region,
            ok,
            detail,
        )

    secret = external_id if isinstance(external_id, str) else None

    def reason(error: AwsError) -> str:
        # The externalId is a shared secret: AWS echoes a value it rejects ("Value '...' at 'externalId'
        # failed to satisfy constraint"), and the detail goes to Slack and the audit.
        message = error.message.rstrip(".")
        return message.replace(secret, "<externalId>") if secret else message

    if secret is not None and not EXTERNAL_ID.fullmatch(secret):
        # STS would refuse it (and echo it): the shallow check already names the fault.
        return result(
            False, f"Not assumed: the externalId of {role} is not one STS accepts (see the finding)."
        )
    try:
        credentials = fanout_aws.assume_target_role(role, secret, session_name=SESSION_NAME)
    except AwsError as error:
        from bot.aws.errors import ACCESS_DENIED_CODES

        with_id = " with its externalId" if secret is not None else " (no externalId)"
        if error.code in ACCESS_DENIED_CODES:
            # AWS answers AccessDenied alike for each of these; naming only opsbot's own permission (the
            # generic translation) sent people to the wrong account.
            condition = (
                " or its externalId condition does not match this target's" if secret is not None else ""
            )
            return result(
                False,
                f"Could not assume {role}{with_id}: AWS refused (AccessDenied). The role's trust policy does "
                f"not name opsbot's function role{condition}, the role does not exist, or opsbot's own role "
                "is not granted sts:AssumeRole on it (template parameter FanoutTargetRoleArns).",
            )
        return result(False, f"Could not assume {role}{with_id}: {reason(error)}.")
    try:
        found = fanout_aws.describe_destination(
            target.type, target.destination, region=region, credentials=credentials, account=account
        )
    except AwsError as error:
        return result(
            False,
            f"The {target.type} destination {target.destination} could not be described in account {account} "
            f"({region}) as {role}: {reason(error)}.",
        )
    return result(True, f"{found} in account {account} ({region}) as {role}")


def deep_check(settings: Settings, targets: Iterable[Target]) -> list[DeepResult]:
    chosen = candidates(targets)
    if not chosen:
        return []
    context = contextvars.copy_context()  # the caller's --region override, in every worker
    with ThreadPoolExecutor(max_workers=min(WORKERS, len(chosen))) as pool:
        return list(pool.map(lambda t: context.copy().run(check_one, t, settings.region), chosen))
