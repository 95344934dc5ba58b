"""Which API and stage a command is about, and every Lambda function (and log group) behind it.

The apilogs tool this replaces read only the first function's group and ignored stage variables and
authorizers. Here: every method/route integration of type AWS/AWS_PROXY with a Lambda URI, with
``${stageVariables.x}`` resolved from the stage; versions and aliases folded into their function
(they log to the same group); REST and HTTP API Lambda authorizers; and each function's own log group
from its ``LoggingConfig``. The AWS reads are cached (``bot.aws.apigateway``), so repeated lookups and
every poll of a tail reuse one discovery.
"""

from __future__ import annotations

import contextvars
import re
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from bot.aws import apigateway as gw
from bot.aws.errors import where_calls_go
from bot.core.apilogs.formats import FunctionArn, parse_function_arn
from bot.core.apilogs.model import ApiStage, Discovery, FunctionRef
from bot.core.apilogs.scope import ReadLimit
from bot.errors import NotAllowedError, OpsbotError, UsageError, echo

_STAGE_VARIABLE = re.compile(r"\$\{stageVariables\.([A-Za-z0-9_]+)\}")
_FUNCTIONS_PATH = re.compile(r":lambda:path/\d{4}-\d{2}-\d{2}/functions/(?P<arn>.+?)/invocations$")
_API_ID = re.compile(r"[a-z0-9]{6,20}")


def execution_log_group(api_id: str, stage: str) -> str:
    return f"API-Gateway-Execution-Logs_{api_id}/{stage}"


def group_from_arn(arn: str) -> str:
    """``arn:aws:logs:r:a:log-group:NAME[:*]`` -> NAME ('' when it is not a log group ARN)."""
    marker = ":log-group:"
    if marker not in arn:
        return ""
    return arn.split(marker, 1)[1].removesuffix(":*")


@dataclass(frozen=True)
class ResolvedUri:
    function: FunctionArn | None
    problem: str = ""


def function_from_uri(uri: str, variables: dict[str, str]) -> ResolvedUri:
    """The Lambda function an integration or authorizer URI invokes, stage variables substituted."""
    missing = [name for name in _STAGE_VARIABLE.findall(uri) if name not in variables]
    if missing:
        return ResolvedUri(None, f"stage variable {', '.join(sorted(set(missing)))} is not set")
    resolved = _STAGE_VARIABLE.sub(lambda m: variables[m.group(1)], uri.strip())
    inner = _FUNCTIONS_PATH.search(resolved)
    candidate = inner.group("arn") if inner else resolved
    function = parse_function_arn(candidate)
    if function is None and inner is None and not candidate.startswith("arn:"):
        return ResolvedUri(None, "")  # an HTTP URL or another service: not a Lambda integration
    if function is None:
        return ResolvedUri(None, f"cannot read the Lambda function in {resolved}")
    return ResolvedUri(function)


@dataclass(frozen=True)
class FunctionUse:
    name: str
    qualifier: str
    role: str  # integration | authorizer
    route: str  # "GET /orders" or "authorizer <name>"


def functions_of(
    integrations: Sequence[gw.IntegrationInfo],
    authorizers: Sequence[gw.AuthorizerInfo],
    variables: dict[str, str],
) -> tuple[list[FunctionUse], list[str]]:
    """Every Lambda function the API invokes, and notes about integrations we could not resolve."""
    uses: list[FunctionUse] = []
    notes: list[str] = []
    for integration in integrations:
        if integration.type not in {"AWS", "AWS_PROXY"} or not integration.uri:
            continue
        resolved = function_from_uri(integration.uri, variables)
        if resolved.function is not None:
            uses.append(
                FunctionUse(
                    resolved.function.name, resolved.function.qualifier, "integration", integration.route
                )
            )
        elif resolved.problem:
            notes.append(f"{integration.route or 'an integration'}: {resolved.problem}.")
    for authorizer in authorizers:
        if not authorizer.uri:
            continue
        resolved = function_from_uri(authorizer.uri, variables)
        if resolved.function is not None:
            uses.append(
                FunctionUse(
                    resolved.function.name,
                    resolved.function.qualifier,
                    "authorizer",
                    f"authorizer {authorizer.name}",
                )
            )
        elif resolved.problem:
            notes.append(f"authorizer {authorizer.name}: {resolved.problem}.")
    return uses, notes


@dataclass
class _Uses:
    role: str
    qualifiers: list[str] = field(default_factory=list)
    routes: list[str] = field(default_factory=list)


def build_discovery(
    stage: ApiStage, uses: Sequence[FunctionUse], logging: dict[str, gw.FunctionLogging], notes: Sequence[str]
) -> Discovery:
    """Fold function uses (one per route) into one FunctionRef per function."""
    by_name: dict[str, _Uses] = {}
    routes: list[tuple[str, str]] = []
    for use in uses:
        entry = by_name.setdefault(use.name, _Uses(use.role))
        if use.qualifier and use.qualifier not in entry.qualifiers:
            entry.qualifiers.append(use.qualifier)
        entry.routes.append(use.route)
        if use.role == "integration":
            # A function used both ways is listed as the integration: that is what most lines are about.
            entry.role = "integration"
            if use.route:
                routes.append((use.route, use.name))
    functions: list[FunctionRef] = []
    all_notes = list(notes)
    for name, entry in by_name.items():
        info = logging.get(name) or gw.FunctionLogging(name, "", f"/aws/lambda/{name}", "Text", False)
        if not info.resolved and info.problem:
            all_notes.append(f"function {name}: {info.problem} Searching {info.log_group}.")
        functions.append(
            FunctionRef(
                name=name,
                log_group=info.log_group,
                arn=info.arn,
                qualifiers=tuple(entry.qualifiers),
                role="integration" if entry.role == "integration" else "authorizer",
                routes=tuple(entry.routes),
                log_format=info.log_format,
                resolved=info.resolved,
            )
        )
    return Discovery(stage=stage, functions=tuple(functions), routes=tuple(routes), notes=tuple(all_notes))


# -- AWS-backed -----------------------------------------------------------------------------------


def resolve_stage(api: str, stage: str, *, region: str, limit: ReadLimit | None = None) -> ApiStage:
    """The API (id or name) and stage to use; defaults when the account has exactly one of each.

    ``limit``: the caller's read scope. An API or stage outside it is refused (NotAllowedError) before
    anything about it is read; the defaults and the choices offered are those inside it."""
    summary = resolve_api(api.strip(), limit)
    if limit is not None:
        limit.check_api(summary.api_id, summary.name)
    stage_name = stage.strip()
    if not stage_name:
        names = gw.list_stage_names(summary)
        if limit is not None:
            readable = [name for name in names if limit.allows_stage(name)]
            if names and not readable:
                raise NotAllowedError(limit.scope.refusal(f"any stage of {summary.name or summary.api_id}"))
            names = readable
        if len(names) == 1:
            stage_name = names[0]
        elif not names:
            raise UsageError(f"API {summary.name or summary.api_id} ({summary.api_id}) has no stages yet.")
        else:
            raise UsageError(
                f"Which stage of {summary.name or summary.api_id}? Add --stage with one of: "
                f"{', '.join(names)} (or set OPSBOT_DEFAULT_STAGE)."
            )
    elif limit is not None and not limit.allows_stage(stage_name):
        raise NotAllowedError(
            limit.scope.refusal(f"stage `{stage_name}` of {summary.name or summary.api_id}")
        )
    info = gw.get_stage(summary, stage_name)
    if info is None:
        names = gw.list_stage_names(summary)
        raise UsageError(
            f"API {summary.name or summary.api_id} ({summary.api_id}) has no stage `{stage_name}`"
            + (f"; its stages are: {', '.join(names)}." if names else ".")
        )
    found = ApiStage(
        api_id=summary.api_id,
        stage=stage_name,
        kind=summary.kind,
        name=summary.name,
        region=region,
        execution_log_group=execution_log_group(summary.api_id, stage_name) if summary.kind == "REST" else "",
        access_log_group=group_from_arn(info.access_log_arn),
        logging_level=(info.logging_level or "OFF").upper() if summary.kind == "REST" else "",
        variables=tuple(sorted(info.variables.items())),
    )
    if limit is not None:
        limit.check_stage(found)
    return found


def resolve_api(api: str, limit: ReadLimit | None = None) -> gw.ApiSummary:
    if api and _API_ID.fullmatch(api):
        found = gw.get_api(api)
        if found is not None:
            return found
    apis = gw.list_apis()
    if not api and limit is not None:
        # Offered and defaulted: only the APIs this channel may read (the others are not even named).
        readable = [a for a in apis if limit.allows_api(a.api_id, a.name)]
        if apis and not readable:
            raise NotAllowedError(limit.scope.refusal("API logs"))
        apis = readable
    if not api:
        if len(apis) == 1:
            return apis[0]
        if not apis:
            where = where_calls_go()
            raise UsageError(
                f"There are no API Gateway APIs in {where or 'this region'}.",
                hint="Check the region (--region, else AWS_REGION)"
                + (" and the account (--account)" if where.startswith("account") else "")
                + ", or pass --api.",
            )
        listed = ", ".join(f"{a.name} ({a.api_id})" for a in apis[:10])
        raise UsageError(f"Which API? Add --api with an id or name: {listed} (or set OPSBOT_DEFAULT_API).")
    named = [a for a in apis if a.name == api] or [a for a in apis if a.name.lower() == api.lower()]
    if len(named) == 1:
        return named[0]
    if len(named) > 1:
        listed = ", ".join(f"{a.api_id} ({a.kind})" for a in named)
        raise UsageError(f"Several APIs are named {echo(api)}: {listed}. Pass the id with --api.")
    where = where_calls_go()
    raise UsageError(
        f"There is no API {echo(api)} (by id or name) in {where or 'this region'}.",
        hint="Check --api and the region (--region, else AWS_REGION)"
        + (" and the account (--account)." if where.startswith("account") else "."),
    )


def discover(stage: ApiStage) -> Discovery:
    """Every function behind ``stage`` with its log group (cached reads; safe to call per command)."""
    variables = dict(stage.variables)
    read_authorizers = gw.rest_authorizers if stage.kind == "REST" else gw.http_authorizers
    integrations = (
        gw.rest_integrations(stage.api_id) if stage.kind == "REST" else gw.http_integrations(stage.api_id)
    )
    authorizer_note = ""
    try:
        authorizers = read_authorizers(stage.api_id)
    except Exception as error:  # lookups and tails still work without the authorizers' groups
        authorizers = []
        reason = error.message if isinstance(error, OpsbotError) else type(error).__name__
        authorizer_note = (
            f"The authorizers of {stage.api_id} could not be read ({reason}); their logs are not searched."
        )
    uses, notes = functions_of(integrations, authorizers, variables)
    if authorizer_note:
        notes.append(authorizer_note)
    names = list(dict.fromkeys(u.name for u in uses))
    # Each read in a copy of the caller's context: a ``region_override`` (an alarm of another region) holds
    # in the workers too.
    contexts = [contextvars.copy_context() for _ in names]
    with ThreadPoolExecutor(max_workers=8) as pool:
        found = pool.map(
            lambda pair: pair[0].run(gw.function_logging, pair[1]), zip(contexts, names, strict=True)
        )
        logging = dict(zip(names, found, strict=True))
    return build_discovery(stage, uses, logging, notes)


def function_ref(name: str, discovery: Discovery | None = None, *, role: str = "integration") -> FunctionRef:
    """A function named by an execution log: from discovery when known, else read on its own."""
    if discovery is not None:
        known = discovery.function(name)
        if known is not None:
            return known
    info = gw.function_logging(name)
    return FunctionRef(
        name=name,
        log_group=info.log_group,
        arn=info.arn,
        role="authorizer" if role == "authorizer" else "integration",
        log_format=info.log_format,
        resolved=info.resolved,
    )
