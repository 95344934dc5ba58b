"""Fan-out wiring: each configured targets table exists, each hook (event source mapping of the fan-out
function) is enabled and processing, and the targets the function would skip, one finding each.

The hook verdicts are the doctor's (state, last processing result); the target rules are ``/fanout
check``'s (``bot.core.fanout.commands.check_target``), of which only the errors are repeated here,
pointing at ``/fanout check`` for the whole report.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any

from bot.aws import fanout as fanout_aws
from bot.aws.wiring import TableKeys
from bot.core.fanout import commands as fanout
from bot.core.ops.checks.tables import table_finding
from bot.core.ops.commands import DoctorContext
from bot.core.ops.doctor import Finding, Probe
from bot.errors import AwsError, UsageError

AREA = "fanout"
TARGET_KEYS = TableKeys("sourceArn", "id")
CHECK_HOOK = "hook"
CHECK_TARGET = "target"
# At most this many target errors are listed one by one; the rest are counted in one finding.
TARGET_ERRORS_SHOWN = 10


def hook_finding(function: str, mapping: Mapping[str, Any]) -> Finding:
    """One event source mapping's state and last processing result. Pure."""
    hook = fanout.Hook.from_mapping(mapping)
    source = fanout.parse_source(str(mapping.get("EventSourceArn", "")))
    target = f"{source.display} -> {function}"
    result = hook.last_processing_result
    if hook.problem:
        return Finding(
            AREA,
            CHECK_HOOK,
            target,
            "fail",
            f"the last batch failed: {result}",
            f"Fix what the result names (often the function's permission to read the source), then check the "
            f"function's log; `aws lambda get-event-source-mapping --uuid {hook.uuid}` shows the state.",
        )
    if hook.state in {"Disabled", "Disabling"}:
        reason = f" ({hook.state_transition_reason})" if hook.state_transition_reason else ""
        return Finding(
            AREA,
            CHECK_HOOK,
            target,
            "warn",
            f"the mapping is {hook.state}{reason}: no records are forwarded",
            f"aws lambda update-event-source-mapping --uuid {hook.uuid} --enabled",
        )
    processed = f", last result: {result}" if result else ""
    if hook.state in {"Creating", "Updating", "Enabling"}:
        return Finding(
            AREA,
            CHECK_HOOK,
            target,
            "ok",
            f"the mapping is {hook.state} (it will be Enabled shortly){processed}",
        )
    if hook.state == "Enabled":
        return Finding(AREA, CHECK_HOOK, target, "ok", f"enabled{processed}")
    return Finding(
        AREA,
        CHECK_HOOK,
        target,
        "warn",
        f"the mapping is {hook.state or 'in no known state'}",
        f"`aws lambda get-event-source-mapping --uuid {hook.uuid}` shows why.",
    )


def hook_findings(function: str, mappings: Sequence[Mapping[str, Any]]) -> list[Finding]:
    if not mappings:
        return [
            Finding(
                AREA,
                CHECK_HOOK,
                function,
                "warn",
                f"{function} has no event source mapping: no records reach it",
                "Hook the sources with the aws-lambda-fanout CLI (`./fanout hook`); `/fanout list` shows "
                "which sources have targets.",
            )
        ]
    return [hook_finding(function, mapping) for mapping in mappings]


def target_findings(table: str, items: Sequence[Mapping[str, Any]]) -> list[Finding]:
    """The targets the fan-out function skips or cannot deliver to (``/fanout check``'s errors). Pure."""
    errors = [
        finding
        for item in items
        for finding in fanout.check_target(fanout.Target.from_item(item, table=table))
        if finding.severity == fanout.ERROR
    ]
    if not errors:
        return [
            Finding(
                AREA, CHECK_TARGET, f"table {table}", "ok", f"the function accepts all {len(items)} targets"
            )
        ]
    found = [
        Finding(
            AREA,
            CHECK_TARGET,
            f"{fanout.parse_source(e.source_arn).display} / {e.target_id}",
            "fail",
            e.reason,
            "Correct the item with the aws-lambda-fanout CLI (`./fanout update`); `/fanout check` lists "
            "every problem.",
        )
        for e in errors[:TARGET_ERRORS_SHOWN]
    ]
    if len(errors) > TARGET_ERRORS_SHOWN:
        more = len(errors) - TARGET_ERRORS_SHOWN
        found.append(
            Finding(
                AREA,
                CHECK_TARGET,
                f"table {table}",
                "fail",
                f"{more} more target error{'s' if more != 1 else ''} not listed here",
                "Run `/fanout check` for the whole report.",
            )
        )
    return found


def _table(table: str) -> list[Finding]:
    found = table_finding(
        AREA,
        "targets table",
        table,
        TARGET_KEYS,
        missing_fix=f"Create it with the aws-lambda-fanout CLI (`./fanout deploy` creates {table}), or fix "
        "the template parameter FanoutTableNames (OPSBOT_FANOUT_TABLE).",
        setting="OPSBOT_FANOUT_TABLE (template parameter FanoutTableNames)",
    )
    if found.status == "fail":
        return [found]
    return [found, *target_findings(table, fanout_aws.scan_targets(table).items)]


def _hooks(function: str) -> list[Finding]:
    try:
        mappings = fanout_aws.list_hooks(function)
    except AwsError as error:
        if error.code != "ResourceNotFoundException":
            raise
        return [
            Finding(
                AREA,
                CHECK_HOOK,
                f"function {function}",
                "fail",
                f"there is no function {function} in this region",
                "Set the template parameter FanoutFunctionName (OPSBOT_FANOUT_FUNCTION), or the table=function "
                "form of FanoutTableNames (OPSBOT_FANOUT_TABLE), to the fan-out function's name.",
            )
        ]
    return hook_findings(function, mappings)


def probes(context: DoctorContext) -> list[Probe]:
    try:
        specs = fanout.table_specs(context.settings)
    except UsageError as error:
        bad = Finding(
            AREA,
            "configuration",
            "OPSBOT_FANOUT_TABLE",
            "fail",
            error.message,
            "Set the template parameter FanoutTableNames to table names, or table=function entries.",
        )
        return [Probe(AREA, "configuration", "OPSBOT_FANOUT_TABLE", lambda: [bad])]
    found: list[Probe] = []
    for spec in specs:
        found.append(
            Probe(AREA, "table", f"targets table {spec.table}", functools.partial(_table, spec.table))
        )
    for function in dict.fromkeys(spec.function for spec in specs):
        found.append(Probe(AREA, CHECK_HOOK, f"function {function}", functools.partial(_hooks, function)))
    return found
