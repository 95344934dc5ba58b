"""The table check shared by the mail, device and fan-out areas: it exists, with the key opsbot uses.

DescribeTable answers both. When it is denied, the capability's own read (a GetItem of a key never
stored) still tells whether opsbot can use the table: that read is what the capability needs, so its
refusal is a failure, not a check that could not be made.
"""

from __future__ import annotations

from bot.aws import wiring
from bot.aws.errors import ACCESS_DENIED_CODES
from bot.aws.wiring import TableKeys
from bot.core.ops.doctor import Finding
from bot.errors import AwsError

CHECK = "table"
# A table being created or changed still serves opsbot's reads.
SERVING = {"ACTIVE", "UPDATING"}


def _probe_key(keys: TableKeys) -> dict[str, str]:
    key = {keys.hash: "opsbot-doctor-probe"}
    if keys.range:
        key[keys.range] = "opsbot-doctor-probe"
    return key


def table_finding(
    area: str, purpose: str, table: str, expected: TableKeys, *, missing_fix: str, setting: str
) -> Finding:
    """``purpose`` names the table in sentences ("mailing table"); ``setting`` is the environment variable
    naming it, for the fixes."""
    target = f"{purpose} {table}"
    try:
        read = wiring.describe_table(table)
    except AwsError as error:
        if error.code not in ACCESS_DENIED_CODES:
            raise
        return _without_describe(area, target, table, expected, missing_fix=missing_fix, setting=setting)
    if not read.exists:
        return Finding(area, CHECK, target, "fail", f"there is no table {table} in this region", missing_fix)
    if read.keys != expected:
        return Finding(
            area,
            CHECK,
            target,
            "fail",
            f"its key is {read.keys}, opsbot reads it by {expected}",
            f"Point {setting} at a table keyed {expected}, or create one (the stack does when the "
            'table-exists parameter is "false") and copy the items over.',
        )
    if read.status not in SERVING:
        return Finding(
            area,
            CHECK,
            target,
            "warn",
            f"the table is {read.status}",
            "Wait for it to become ACTIVE; if it is being deleted, redeploy the stack to create it again.",
        )
    return Finding(area, CHECK, target, "ok", f"exists, keyed {expected}")


def _without_describe(
    area: str, target: str, table: str, expected: TableKeys, *, missing_fix: str, setting: str
) -> Finding:
    code = wiring.probe_item(table, _probe_key(expected))
    if not code:
        return Finding(
            area,
            CHECK,
            target,
            "warn",
            f"opsbot can read it, but its key schema was not checked (dynamodb:DescribeTable on {table} is denied)",
            f"Grant dynamodb:DescribeTable on table/{table} to the role opsbot runs as, then run the doctor again.",
        )
    if code in ACCESS_DENIED_CODES:
        return Finding(
            area,
            CHECK,
            target,
            "fail",
            f"opsbot may not read it: dynamodb:GetItem on {table} is denied",
            f"Grant dynamodb:GetItem (and the other actions template.yaml lists for {table}) to the role "
            "opsbot runs as, and redeploy.",
        )
    if code == "ResourceNotFoundException":
        return Finding(area, CHECK, target, "fail", f"there is no table {table} in this region", missing_fix)
    if code == "ValidationException":
        return Finding(
            area,
            CHECK,
            target,
            "fail",
            f"its key is not {expected}, which opsbot reads it by",
            f"Point {setting} at a table keyed {expected}.",
        )
    raise AwsError(f"AWS `GetItem` failed on {table}: {code}.", code=code, operation="GetItem")
