"""/apilogs wiring: whether API Gateway writes the lines a lookup needs, and whether opsbot can read them.

A lookup correlates the API Gateway request id with the Lambda request id through the stage's execution
log (REST, at INFO) or its access log (``$context.integration.requestId``), then reads each function's log
group. Each link that is missing is a finding here, with the command that adds it.
"""

from __future__ import annotations

import contextlib
import json
import re
import time

from bot.aws import apigateway as gw
from bot.aws import logs as cw
from bot.aws.clients import client
from bot.aws.errors import ACCESS_DENIED_CODES, error_code, translate
from bot.core.apilogs.discovery import (
    discover,
    execution_log_group,
    group_from_arn,
    resolve_api,
    resolve_stage,
)
from bot.core.ops.commands import DoctorContext
from bot.core.ops.doctor import Finding, Probe, Status, in_parallel
from bot.errors import OpsbotError

AREA = "apilogs"
MAX_STAGES = 20  # with --all: more stages than this are named in a note, not checked (one answer's worth)

# What the access log's format must carry: the lookup needs the request id; errors and the correlated
# tail need the rest. REST names the route by method + resource path, HTTP APIs by route key.
NEEDED_FIELDS = ("$context.requestId",)
USEFUL_FIELDS = ("$context.status", "$context.httpMethod", "$context.integration.requestId")
ROUTE_FIELDS = {"REST": "$context.resourcePath", "HTTP": "$context.routeKey"}
ACCESS_FORMAT = (
    '{"requestId":"$context.requestId","status":"$context.status","httpMethod":"$context.httpMethod",'
    '"resourcePath":"$context.resourcePath","routeKey":"$context.routeKey",'
    '"integrationRequestId":"$context.integration.requestId","integrationStatus":"$context.integration.status",'
    '"integrationLatency":"$context.integration.latency","error":"$context.error.message",'
    '"requestTime":"$context.requestTimeEpoch"}'
)


def _has(fmt: str, variable: str) -> bool:
    # $context.status must not be satisfied by $context.statusOverride-like longer names.
    return re.search(re.escape(variable) + r"(?![\w.])", fmt) is not None


def caller_account() -> str:
    """The account of the credentials, for exact ARNs in fixes ("" when STS cannot say: a placeholder)."""
    try:
        return str(client("sts").get_caller_identity().get("Account", ""))
    except Exception:  # the identity check reports why
        return ""


def cloudwatch_role_fix(account: str) -> str:
    role = "APIGatewayPushToCloudWatchLogs"
    trust = (
        '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"apigateway.amazonaws.com"},'
        '"Action":"sts:AssumeRole"}]}'
    )
    return (
        f"`aws iam create-role --role-name {role} --assume-role-policy-document '{trust}' && "
        f"aws iam attach-role-policy --role-name {role} --policy-arn "
        "arn:aws:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs && "
        "aws apigateway update-account --patch-operations "
        f"op=replace,path=/cloudwatchRoleArn,value=arn:aws:iam::{account or '<account>'}:role/{role}` "
        "(or name an existing role with that policy)."
    )


def cloudwatch_role(context: DoctorContext) -> list[Finding]:
    target = f"API Gateway account ({context.region})"
    arn = gw.cloudwatch_role_arn()
    if not arn:
        return [
            Finding(
                AREA,
                "CloudWatch role",
                target,
                "fail",
                "no CloudWatch role is set: REST stages write no execution log, whatever their level",
                cloudwatch_role_fix(caller_account()),
            )
        ]
    return [Finding(AREA, "CloudWatch role", target, "ok", f"set ({arn})")]


def execution_logging(logging: gw.StageLogging, label: str) -> Finding:
    """REST only: INFO on every method is what carries the hop lines (request id -> Lambda request id)."""
    check = "execution logging"
    fix = (
        f"`aws apigateway update-stage --rest-api-id {logging.api_id} --stage-name {logging.stage} "
        "--patch-operations 'op=replace,path=/*/*/logging/loglevel,value=INFO'`"
    )
    default = logging.method_levels.get("*/*", "OFF")
    lower = sorted(k for k, v in logging.method_levels.items() if k != "*/*" and v != "INFO")
    if default == "INFO" and not lower:
        return Finding(AREA, check, label, "ok", "INFO on every method")
    if default == "INFO":
        return Finding(
            AREA,
            check,
            label,
            "warn",
            f"INFO by default, but {', '.join(lower[:5])} override it: their hops are not logged",
            "Remove those methods' logging overrides, or set them to INFO in the stage's Logs/Tracing tab.",
        )
    if default == "ERROR":
        return Finding(
            AREA,
            check,
            label,
            "warn",
            "the stage logs at ERROR: a successful request's hop to Lambda is not logged, so lookups of "
            "it rely on the access log",
            fix,
        )
    return Finding(
        AREA,
        check,
        label,
        "fail",
        "execution logging is off: lookups find nothing in API Gateway's own log",
        fix,
    )


def access_log_fix(logging: gw.StageLogging, destination: str, *, create_group: str = "") -> str:
    """The exact commands that give the stage an access log to ``destination`` (a log group ARN) in the
    format opsbot reads; ``create_group`` first creates that group. JSON forms, single-quoted: the format's
    quotes, commas and ``$context`` survive a shell (shorthand syntax would split it at the commas)."""
    fmt = json.dumps(ACCESS_FORMAT)  # the format as a JSON string value, its quotes escaped
    if logging.kind == "REST":
        operations = (
            f'[{{"op":"replace","path":"/accessLogSettings/destinationArn","value":"{destination}"}},'
            f'{{"op":"replace","path":"/accessLogSettings/format","value":{fmt}}}]'
        )
        command = (
            f"aws apigateway update-stage --rest-api-id {logging.api_id} --stage-name {logging.stage} "
            f"--patch-operations '{operations}'"
        )
    else:
        settings = f'{{"DestinationArn":"{destination}","Format":{fmt}}}'
        command = (
            f"aws apigatewayv2 update-stage --api-id {logging.api_id} --stage-name '{logging.stage}' "
            f"--access-log-settings '{settings}'"
        )
    if create_group:
        command = f"aws logs create-log-group --log-group-name {create_group} && {command}"
    return f"`{command}` (the format is in docs/ops.md, Access log format)."


def access_logging(logging: gw.StageLogging, label: str, *, account: str = "", region: str = "") -> Finding:
    check = "access log"
    if logging.access_destination:
        fix_command = access_log_fix(logging, logging.access_destination)
    else:
        group = f"/aws/apigateway/{logging.api_id}-{logging.stage.strip('$') or 'default'}-access"
        arn = f"arn:aws:logs:{region or '<region>'}:{account or '<account>'}:log-group:{group}"
        fix_command = access_log_fix(logging, arn, create_group=group)
    if not logging.access_destination:
        severity: Status = "fail" if logging.kind == "HTTP" else "warn"
        why = (
            "an HTTP API logs nothing else: lookups cannot find its requests"
            if logging.kind == "HTTP"
            else "failing requests cannot be listed without an id, and the Lambda id of a request is "
            "known only from the execution log"
        )
        return Finding(AREA, check, label, severity, f"no access log: {why}", fix_command)
    needed = [f for f in NEEDED_FIELDS if not _has(logging.access_format, f)]
    if needed:
        return Finding(
            AREA,
            check,
            label,
            "fail",
            f"the format lacks {', '.join(needed)}: no line can be matched to a request",
            fix_command,
        )
    useful = [*USEFUL_FIELDS, ROUTE_FIELDS[logging.kind]]
    missing = [f for f in useful if not _has(logging.access_format, f)]
    if missing:
        return Finding(
            AREA,
            check,
            label,
            "warn",
            f"the format lacks {', '.join(missing)} (status, route and Lambda id of each request)",
            fix_command,
        )
    return Finding(AREA, check, label, "ok", f"to {group_from_arn(logging.access_destination)}, every field")


def group_finding(group: str, purpose: str, label: str, info: cw.GroupInfo | None) -> Finding:
    """The stage's own execution or access log group. A group appears with its first line, so a missing
    one is a warning: no request since logging was turned on, or the account cannot write it."""
    check = f"{purpose} log group"
    if info is None:
        return Finding(
            AREA,
            check,
            group,
            "warn",
            f"does not exist yet ({label}): nothing has been logged there",
            "It appears with the first logged request; if requests were made, check the stage's logging "
            "settings and the account's CloudWatch role above.",
        )
    retention = f"kept {info.retention_days} days" if info.retention_days else "kept forever"
    return Finding(AREA, check, group, "ok", f"exists, {retention}")


def function_groups(label: str, functions: int, missing: list[str]) -> Finding:
    """One finding for all the functions behind a stage: a group appears with a function's first log
    line, so a missing one is a warning (not run yet, or logging elsewhere), named so it can be checked."""
    check = "function log groups"
    if not functions:
        return Finding(AREA, check, label, "warn", "no Lambda function was found behind the stage")
    if missing:
        return Finding(
            AREA,
            check,
            label,
            "warn",
            f"{len(missing)} of {functions} have no log group yet: {', '.join(missing[:5])}"
            + (" …" if len(missing) > 5 else ""),
            "Invoke each once, or check its LoggingConfig.LogGroup (`aws lambda get-function-configuration`).",
        )
    return Finding(AREA, check, label, "ok", f"all {functions} functions behind the stage have their group")


def permission_probes(group: cw.GroupInfo, *, insights: bool = True) -> list[Finding]:
    """Logs Insights and Live Tail are asked for in a way that starts nothing: a query whose time range
    is empty, a tail whose filter pattern is malformed. AWS checks the permission first, so an access
    denial is the answer we want to see; any other refusal means the call itself is allowed.

    ``insights=False`` (a member account): no command runs a Logs Insights query there (the answers'
    Insights button opens the console with the reader's own credentials), so member-account.yaml's read
    role does not grant logs:StartQuery, and probing it would only report that least privilege as a
    failure."""
    logs = client("logs", attempts=1)
    found: list[Finding] = []
    if insights:
        now = int(time.time())
        try:
            started = logs.start_query(
                logGroupNames=[group.name],
                startTime=now,
                endTime=now - 60,
                queryString="fields @message | limit 1",
            )
            # AWS refuses the empty range after the permission check; an emulator may run it (a no-op).
            del started
            found.append(
                Finding(AREA, "Logs Insights permission", group.name, "ok", "logs:StartQuery is allowed")
            )
        except Exception as error:
            found.append(_permission_finding("Logs Insights permission", "logs:StartQuery", group, error))
    if not cw.endpoint_supports_live_tail():
        found.append(
            Finding(AREA, "Live Tail permission", group.name, "skip", "this endpoint cannot stream Live Tail")
        )
        return found
    try:
        stream = logs.start_live_tail(logGroupIdentifiers=[group.arn], logEventFilterPattern='"')
        with contextlib.suppress(Exception):
            stream["responseStream"].close()
        found.append(Finding(AREA, "Live Tail permission", group.name, "ok", "logs:StartLiveTail is allowed"))
    except Exception as error:
        found.append(_permission_finding("Live Tail permission", "logs:StartLiveTail", group, error))
    return found


# What AWS answers a probe it let through: the permission held, the request itself was refused.
PROBE_REFUSALS = {"InvalidParameterException", "MalformedQueryException", "ValidationException"}


def _permission_finding(check: str, action: str, group: cw.GroupInfo, error: Exception) -> Finding:
    code = error_code(error)
    if code not in ACCESS_DENIED_CODES and code not in PROBE_REFUSALS:
        # No connection, throttling, a quota: the permission is unknown, not granted.
        return Finding(
            AREA,
            check,
            group.name,
            "warn",
            f"could not be checked: {translate(error, resource=f'log group {group.name}').message}",
            "Run the doctor again; a function in a VPC needs a route to CloudWatch Logs.",
        )
    if code in ACCESS_DENIED_CODES:
        return Finding(
            AREA,
            check,
            group.name,
            "fail",
            translate(error, resource=f"log group {group.name}").message,
            f"Allow {action} on {group.arn} for opsbot's role (template.yaml grants it for the stack's "
            "API log groups: check ApilogsDefaultApi).",
        )
    return Finding(
        AREA, check, group.name, "ok", f"{action} is allowed (the probe was refused only as malformed)"
    )


def stage_findings(
    api: str, stage: str, region: str, *, permissions: bool = True, account: str = "", insights: bool = True
) -> list[Finding]:
    """The stage's logging, its groups and (``permissions``) whether Logs Insights (``insights``) and Live
    Tail may read them: the permission is the role's, so one stage's groups answer it for all."""
    try:
        resolved = resolve_stage(api, stage, region=region)
    except OpsbotError as error:
        return [
            Finding(
                AREA,
                "stage",
                f"{api or '?'}/{stage or '?'}",
                "fail",
                error.message,
                "Set OPSBOT_DEFAULT_API and OPSBOT_DEFAULT_STAGE (template parameters ApilogsDefaultApi, "
                "ApilogsDefaultStage) to an existing API and stage.",
            )
        ]
    label = f"{resolved.name or resolved.api_id} ({resolved.api_id}) stage {resolved.stage}"
    summary = gw.get_api(resolved.api_id)
    assert summary is not None  # resolve_stage found it
    logging = gw.stage_logging(summary, resolved.stage)
    if logging is None:
        return [Finding(AREA, "stage", label, "fail", "the stage disappeared while being checked")]
    found: list[Finding] = []
    if logging.kind == "REST":
        found.append(execution_logging(logging, label))
    found.append(access_logging(logging, label, account=account, region=region))
    groups: list[tuple[str, str]] = []
    if logging.kind == "REST" and logging.method_levels.get("*/*", "OFF") != "OFF":
        groups.append((execution_log_group(resolved.api_id, resolved.stage), "execution"))
    if logging.access_destination:
        groups.append((group_from_arn(logging.access_destination), "access"))
    discovery = discover(resolved)
    groups += [(ref.log_group, "function") for ref in discovery.functions]
    infos = in_parallel(lambda pair: cw.describe_group(pair[0]), groups)
    missing_functions: list[str] = []
    for (group, purpose), info in zip(groups, infos, strict=True):
        if purpose == "function":
            if info is None:
                missing_functions.append(group)
            continue
        found.append(group_finding(group, purpose, label, info))
    found.append(function_groups(label, len(discovery.functions), missing_functions))
    for note in discovery.notes:
        found.append(Finding(AREA, "discovery", label, "warn", note))
    readable = next((info for info in infos if info is not None), None)
    if readable is not None and permissions:
        found += permission_probes(readable, insights=insights)
    return found


def stages_of(context: DoctorContext, api: str = "") -> list[Finding]:
    """Every stage of ``api`` (id or name), or of every API of the region when ``api`` is empty.

    The default API's other stages are checked too: a team that looks up `--stage staging` depends on
    that stage's logging as much as on the default's."""
    if api:
        try:
            apis = [resolve_api(api)]
        except OpsbotError as error:
            return [
                Finding(
                    AREA,
                    "stage",
                    api,
                    "fail",
                    error.message,
                    "Set OPSBOT_DEFAULT_API (template parameter ApilogsDefaultApi) to an existing API's id or name.",
                )
            ]
    else:
        apis = gw.list_apis()
    pairs = [(a.api_id, stage) for a in apis for stage in gw.list_stage_names(a)]
    if not pairs:
        return [
            Finding(AREA, "stages", f"region {context.region}", "skip", "no API Gateway API in this region")
        ]
    found: list[Finding] = []
    if len(pairs) > MAX_STAGES:
        found.append(
            Finding(
                AREA,
                "stages",
                f"region {context.region}",
                "skip",
                f"{len(pairs)} stages; the first {MAX_STAGES} are checked",
                "Check the others one API at a time: `opsbot doctor --only apilogs` with OPSBOT_DEFAULT_API set.",
            )
        )
    account = caller_account()
    checked = in_parallel(
        lambda n: stage_findings(
            *pairs[n], context.region, permissions=n == 0, account=account, insights=context.member is None
        ),
        range(min(len(pairs), MAX_STAGES)),
    )
    for stage_found in checked:
        found += stage_found
    return found


def probes(context: DoctorContext) -> list[Probe]:
    settings = context.settings
    target = f"API Gateway account ({context.region})"
    found = [Probe(AREA, "CloudWatch role", target, lambda: cloudwatch_role(context))]
    if context.all_stages:
        found.append(Probe(AREA, "stages", f"every stage of {context.region}", lambda: stages_of(context)))
    elif settings.default_api:
        found.append(
            Probe(
                AREA,
                "stages",
                f"stages of {settings.default_api}",
                lambda: stages_of(context, settings.default_api),
            )
        )
    else:
        found.append(
            Probe(
                AREA,
                "stage",
                "default API",
                lambda: [
                    Finding(
                        AREA,
                        "stage",
                        "default API",
                        "skip",
                        "no default API is configured, so no stage was checked",
                        "Run `/ops doctor --all` (`opsbot doctor --all`) for every stage of the region, or set the template "
                        "parameters ApilogsDefaultApi and ApilogsDefaultStage.",
                    )
                ],
            )
        )
    return found
