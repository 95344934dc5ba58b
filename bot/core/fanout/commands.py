"""aws-lambda-fanout mappings: list them with their hook state, check them, toggle them.

The rules in ``check_target`` are those of the fan-out function's configuration loader
(``lib/configuration.js``) and of each target module's ``destinationRegex`` (``lib/post-*.js``): a target
that fails one of them is skipped by the function with only a log line, so its records silently go
nowhere. Where the original's own pattern is broken we use the fixed one and say so: its DynamoDB source
pattern allowed one-character table names only (fixed upstream to ``[A-Za-z0-9_.-]+``).

Tables: ``OPSBOT_FANOUT_TABLE`` lists one or more tables; an entry ``table=function`` names the fan-out
function whose event source mappings are that table's hooks. The CLI names a function's table
``<function>Targets`` (``TABLE_NAME=${FUNCTION_NAME}Targets``), so a bare ``xTargets`` belongs to function
``x``; any other bare name uses ``OPSBOT_FANOUT_FUNCTION`` (default ``fanout``, table ``fanoutTargets``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bot.aws import fanout as fanout_aws
from bot.config import Settings
from bot.errors import AwsError, NotFoundError, UsageError, echo

TARGET_TYPES = ("kinesis", "firehose", "sqs", "sns", "es", "iot", "lambda", "memcached", "redis")
COLLAPSE_VALUES = ("none", "JSON", "concat", "concat-b64")
FLAGS = ("parallel", "convertDDB", "deaggregate", "appendNewlines")

# The function's own patterns (lib/configuration.js), with upstream's fix to the DynamoDB table name.
ACCEPTED_SOURCE = re.compile(
    r"arn:aws:((kinesis:[a-z]+-[a-z]+-[0-9]:[0-9]{12}:stream/([a-zA-Z0-9_-]{1,128}))"
    r"|(dynamodb:[a-z]+-[a-z]+-[0-9]:[0-9]{12}:table/[A-Za-z0-9_.-]+/stream/[0-9A-Z_.:-]+))"
)
ROLE = re.compile(r"arn:aws:iam::[0-9]{12}:role/([a-zA-Z0-9+=,.@_-]{1,64})")
REGION = re.compile(r"[a-z]+-[a-z]+-[0-9]")
# STS AssumeRole's ExternalId constraint (the function passes it as is).
EXTERNAL_ID = re.compile(r"[a-zA-Z0-9_+=,.@:/-]{2,1024}")
# The function tests collapse with /^JSON|concat|none$/: "starts with JSON, contains concat or ends with
# none". Values outside the four known ones that pass it are accepted and then sent one record at a time.
LOOSE_COLLAPSE = re.compile(r"^JSON|concat|none$")

# type -> (the target module's destinationRegex, what it expects)
DESTINATIONS: dict[str, tuple[re.Pattern[str], str]] = {
    "kinesis": (re.compile(r"[a-zA-Z0-9_-]{1,128}"), "the stream name (letters, digits, - and _)"),
    "firehose": (
        re.compile(r"[a-zA-Z0-9_-]{1,64}"),
        "the delivery stream name (up to 64 letters, digits, - and _)",
    ),
    "lambda": (re.compile(r"[a-zA-Z0-9_-]{1,64}"), "the function name (no ARN, no qualifier)"),
    "sqs": (
        re.compile(
            r"https://((queue)|(sqs\.[a-z]+-[a-z]+-[0-9]))\.amazonaws\.com/[0-9]{12}/[a-zA-Z0-9_-]{1,80}"
        ),
        "the queue URL, e.g. https://sqs.us-east-1.amazonaws.com/123456789012/queue (no FIFO queues)",
    ),
    "sns": (
        re.compile(r"arn:aws:sns:[a-z]+-[a-z]+-[0-9]:[0-9]{12}:[a-zA-Z0-9_-][a-zA-Z0-9_-]{0,255}"),
        "the topic ARN, e.g. arn:aws:sns:us-east-1:123456789012:topic",
    ),
    "es": (
        re.compile(r"search-[a-z][a-z0-9-]{2,27}-[a-z0-9]+\.[a-z]+-[a-z]+-[0-9]\.es\.amazonaws\.com#.*"),
        "the domain endpoint, # and doctype/index, e.g. search-logs-abc123.us-east-1.es.amazonaws.com#doc/index",
    ),
    "iot": (
        re.compile(r"[a-zA-Z0-9-]+\.iot\.[a-z]+-[a-z]+-[0-9]\.amazonaws\.com#.*"),
        "the IoT endpoint, # and the MQTT topic, e.g. a1b2c3.iot.us-east-1.amazonaws.com#topic",
    ),
    "memcached": (
        re.compile(r"[a-zA-Z][a-zA-Z0-9-]{0,19}\.[a-z0-9]+\.cfg\.[a-z]+[0-9]\.cache\.amazonaws\.com:[0-9]+"),
        "the cluster's configuration endpoint and port, e.g. cache.abc123.cfg.use1.cache.amazonaws.com:11211",
    ),
    "redis": (
        re.compile(
            r"[a-zA-Z][a-zA-Z0-9-]{0,19}\.[a-z0-9]+\.ng\.[0-9]+\.[a-z]+[0-9]\.cache\.amazonaws\.com:[0-9]+"
        ),
        "the primary endpoint and port, e.g. redis.abc123.ng.0001.use1.cache.amazonaws.com:6379",
    ),
}
NAME_TYPES = {"kinesis", "firehose", "lambda"}
# The configuration loader's switch on the type has no ``break`` after the sqs/sns/iot case, so it falls
# through to ``default: collapse = null``: for these types too a collapse value changes nothing, and
# every record goes out as its own message. (kinesis, firehose, es use the batch API; lambda gets the
# whole event; memcached and redis fall through to the same default.)
COLLAPSE_RESET = {"sqs", "sns", "iot"}
# memcached and redis: the loader drops role and region before checking them.
CACHE_TYPES = {"memcached", "redis"}

_KINESIS = re.compile(
    r"arn:(?P<partition>aws[a-z-]*):kinesis:(?P<region>[^:]*):(?P<account>\d*):stream/(?P<name>.+)"
)
_DDB_STREAM = re.compile(
    r"arn:(?P<partition>aws[a-z-]*):dynamodb:(?P<region>[^:]*):(?P<account>\d*):table/(?P<name>[^/]+)"
    r"/stream/(?P<label>.+)"
)
_DDB_TABLE = re.compile(
    r"arn:(?P<partition>aws[a-z-]*):dynamodb:(?P<region>[^:]*):(?P<account>\d*):table/(?P<name>[^/]+)"
)


# -- sources ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SourceRef:
    arn: str
    kind: str  # kinesis | dynamodb | dynamodb-table | unknown
    name: str  # stream name, or table name for DynamoDB
    region: str = ""
    account: str = ""
    label: str = ""  # DynamoDB stream label

    @property
    def accepted(self) -> bool:
        """Whether the fan-out function accepts this source ARN."""
        return ACCEPTED_SOURCE.fullmatch(self.arn) is not None

    @property
    def display(self) -> str:
        if self.kind == "kinesis":
            return f"Kinesis stream {self.name}"
        if self.kind == "dynamodb":
            return f"DynamoDB stream of {self.name}"
        if self.kind == "dynamodb-table":
            return f"DynamoDB table {self.name}"
        return self.arn


def parse_source(arn: str) -> SourceRef:
    """What a source ARN names (leniently, for display); ``accepted`` says what the function accepts."""
    for kind, pattern in (("kinesis", _KINESIS), ("dynamodb", _DDB_STREAM), ("dynamodb-table", _DDB_TABLE)):
        found = pattern.fullmatch(arn)
        if found:
            groups = found.groupdict()
            return SourceRef(
                arn, kind, groups["name"], groups["region"], groups["account"], groups.get("label") or ""
            )
    return SourceRef(arn, "unknown", arn)


def source_matches(ref: SourceRef, text: str) -> bool:
    return text in (ref.arn, ref.name)


# -- targets and hooks -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    table: str
    source_arn: str
    id: str
    attributes: Mapping[str, Any] = field(repr=False)  # the item as stored (plain values)

    @classmethod
    def from_item(cls, item: Mapping[str, Any], *, table: str) -> Target:
        return cls(
            table=table,
            source_arn=str(item.get("sourceArn", "")),
            id=str(item.get("id", "")),
            attributes=item,
        )

    def text(self, name: str) -> str:
        value = self.attributes.get(name)
        return value if isinstance(value, str) else ""

    @property
    def type(self) -> str:
        return self.text("type")

    @property
    def destination(self) -> str:
        return self.text("destination")

    @property
    def active(self) -> bool:
        """Active as the function sees it: only a stored boolean true."""
        return self.attributes.get("active") is True

    @property
    def options(self) -> dict[str, Any]:
        """The optional flags that are present (absent means the function's default)."""
        return {name: self.attributes[name] for name in FLAGS if name in self.attributes}

    def to_json(self) -> dict[str, Any]:
        document: dict[str, Any] = {
            "id": self.id,
            "type": self.attributes.get("type"),
            "destination": self.attributes.get("destination"),
            "active": self.active,
        }
        stored_active = self.attributes.get("active")
        if not isinstance(stored_active, bool):
            document["activeStored"] = stored_active
        for name in ("collapse", "role", "region"):
            if name in self.attributes:
                document[name] = self.attributes[name]
        document["hasExternalId"] = "externalId" in self.attributes
        document["options"] = self.options
        return document


@dataclass(frozen=True)
class Hook:
    """One Lambda event source mapping from a source to the fan-out function (the CLI's hook/pause)."""

    uuid: str
    state: str
    batch_size: int | None
    starting_position: str
    last_processing_result: str
    state_transition_reason: str
    last_modified: str
    function_arn: str

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Any]) -> Hook:
        modified = mapping.get("LastModified")
        return cls(
            uuid=str(mapping.get("UUID", "")),
            state=str(mapping.get("State", "")),
            batch_size=mapping.get("BatchSize"),
            starting_position=str(mapping.get("StartingPosition", "")),
            last_processing_result=str(mapping.get("LastProcessingResult", "")),
            state_transition_reason=str(mapping.get("StateTransitionReason", "")),
            last_modified=modified.isoformat() if isinstance(modified, datetime) else str(modified or ""),
            function_arn=str(mapping.get("FunctionArn", "")),
        )

    @property
    def enabled(self) -> bool:
        return self.state in {"Enabled", "Enabling", "Updating", "Creating"}

    @property
    def problem(self) -> bool:
        return self.last_processing_result.upper().startswith("PROBLEM")

    def to_json(self) -> dict[str, Any]:
        return {
            "uuid": self.uuid,
            "state": self.state,
            "enabled": self.enabled,
            "batchSize": self.batch_size,
            "startingPosition": self.starting_position or None,
            "lastProcessingResult": self.last_processing_result or None,
            "stateTransitionReason": self.state_transition_reason or None,
            "lastModified": self.last_modified or None,
            "functionArn": self.function_arn,
        }


@dataclass(frozen=True)
class TableSpec:
    table: str
    function: str


TABLE_SUFFIX = "Targets"


def function_of_table(table: str, default: str) -> str:
    """The fan-out function whose table the CLI names ``table``: ``x`` for ``xTargets``, else ``default``."""
    if table.endswith(TABLE_SUFFIX) and len(table) > len(TABLE_SUFFIX):
        return table[: -len(TABLE_SUFFIX)]
    return default


def table_specs(settings: Settings) -> list[TableSpec]:
    """``table`` or ``table=function`` entries of OPSBOT_FANOUT_TABLE."""
    specs: list[TableSpec] = []
    for entry in settings.fanout_tables:
        table, _, function = entry.partition("=")
        table, function = table.strip(), function.strip()
        if not table:
            raise UsageError(f"OPSBOT_FANOUT_TABLE has an entry without a table name: {entry!r}.")
        specs.append(TableSpec(table, function or function_of_table(table, settings.fanout_function)))
    return specs


@dataclass(frozen=True)
class SourceGroup:
    table: str
    function: str
    source: SourceRef
    targets: tuple[Target, ...]
    hooks: tuple[Hook, ...]  # every mapping from this source to the function (normally 0 or 1)
    hooks_known: bool

    @property
    def hook(self) -> Hook | None:
        return self.hooks[0] if self.hooks else None

    def to_json(self) -> dict[str, Any]:
        document: dict[str, Any] = {
            "sourceArn": self.source.arn,
            "kind": self.source.kind,
            "name": self.source.name,
            "table": self.table,
            "function": self.function,
            "hook": self.hook.to_json() if self.hook else None,
        }
        if len(self.hooks) > 1:
            document["otherHooks"] = [h.to_json() for h in self.hooks[1:]]
        if not self.hooks_known:
            document["hookKnown"] = False
        document["targets"] = [t.to_json() for t in self.targets]
        return document


@dataclass(frozen=True)
class Snapshot:
    """Everything read from AWS for one listing or check."""

    groups: tuple[SourceGroup, ...]
    hook_errors: Mapping[str, str]  # function -> why its mappings could not be read
    pages: int  # DynamoDB pages read


def group(
    specs: Sequence[TableSpec],
    items_by_table: Mapping[str, Iterable[Mapping[str, Any]]],
    mappings_by_function: Mapping[str, Iterable[Mapping[str, Any]]],
) -> list[SourceGroup]:
    """Targets grouped by (table, source), with the hooks of the table's function; hooked sources that
    have no targets appear too. Sorted by table, source ARN, then target id."""
    groups: list[SourceGroup] = []
    for spec in specs:
        targets: dict[str, list[Target]] = {}
        for item in items_by_table.get(spec.table, ()):
            target = Target.from_item(item, table=spec.table)
            targets.setdefault(target.source_arn, []).append(target)
        known = spec.function in mappings_by_function
        hooks: dict[str, list[Hook]] = {}
        for mapping in mappings_by_function.get(spec.function, ()):
            hooks.setdefault(str(mapping.get("EventSourceArn", "")), []).append(Hook.from_mapping(mapping))
        for arn in sorted(set(targets) | set(hooks)):
            groups.append(
                SourceGroup(
                    table=spec.table,
                    function=spec.function,
                    source=parse_source(arn),
                    targets=tuple(sorted(targets.get(arn, []), key=lambda t: t.id)),
                    hooks=tuple(hooks.get(arn, [])),
                    hooks_known=known,
                )
            )
    return groups


def snapshot(settings: Settings) -> Snapshot:
    specs = table_specs(settings)
    items: dict[str, list[dict[str, Any]]] = {}
    pages = 0
    for spec in specs:
        read = fanout_aws.scan_targets(spec.table)
        items[spec.table] = read.items
        pages += read.pages
    mappings: dict[str, list[dict[str, Any]]] = {}
    errors: dict[str, str] = {}
    for function in dict.fromkeys(spec.function for spec in specs):
        try:
            mappings[function] = fanout_aws.list_hooks(function)
        except AwsError as error:
            # The targets are still worth showing; the hook state is reported as unknown, with the reason.
            errors[function] = str(error)
    return Snapshot(tuple(group(specs, items, mappings)), errors, pages)


# -- list ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ListFilters:
    source: str | None = None
    type: str | None = None
    inactive: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"source": self.source, "type": self.type, "inactive": self.inactive}


@dataclass(frozen=True)
class Listing:
    groups: tuple[SourceGroup, ...]
    filters: ListFilters
    hook_errors: Mapping[str, str]

    @property
    def target_count(self) -> int:
        return sum(len(g.targets) for g in self.groups)

    def to_json(self) -> dict[str, Any]:
        document: dict[str, Any] = {"sources": [g.to_json() for g in self.groups]}
        if self.hook_errors:
            document["hookErrors"] = dict(self.hook_errors)
        return document


def validate_type(kind: str | None) -> str | None:
    if kind is None:
        return None
    if kind not in TARGET_TYPES:
        raise UsageError(
            f"Unknown target type {echo(kind)}; the fan-out function knows {', '.join(TARGET_TYPES)}."
        )
    return kind


def filter_groups(groups: Iterable[SourceGroup], filters: ListFilters) -> list[SourceGroup]:
    kept: list[SourceGroup] = []
    narrowing = filters.type is not None or filters.inactive
    for source_group in groups:
        if filters.source and not source_matches(source_group.source, filters.source):
            continue
        targets = tuple(
            t
            for t in source_group.targets
            if (filters.type is None or t.type == filters.type) and (not filters.inactive or not t.active)
        )
        if narrowing and not targets:
            continue
        kept.append(
            SourceGroup(
                source_group.table,
                source_group.function,
                source_group.source,
                targets,
                source_group.hooks,
                source_group.hooks_known,
            )
        )
    return kept


def list_mappings(settings: Settings, filters: ListFilters | None = None) -> Listing:
    filters = filters or ListFilters()
    validate_type(filters.type)
    snap = snapshot(settings)
    groups = filter_groups(snap.groups, filters)
    if (
        filters.source
        and not groups
        and not any(source_matches(g.source, filters.source) for g in snap.groups)
    ):
        raise NotFoundError(
            f"No source {echo(filters.source)} in {', '.join(s.table for s in table_specs(settings))}; give a stream "
            "or table name, or a source ARN, as `/fanout list` shows them."
        )
    return Listing(tuple(groups), filters, snap.hook_errors)


# -- check -----------------------------------------------------------------------------------------

ERROR = "error"  # the function skips the target (or cannot deliver to it): records go nowhere
WARNING = "warning"  # records flow, but not as configured, or the setup is risky


@dataclass(frozen=True)
class Finding:
    severity: str
    rule: str
    reason: str
    table: str
    source_arn: str
    target_id: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "severity": self.severity,
            "rule": self.rule,
            "table": self.table,
            "sourceArn": self.source_arn,
            "id": self.target_id,
            "reason": self.reason,
        }


def _kind_of(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, str):
        return f"the string {value!r}"
    if isinstance(value, int | float):
        return f"the number {value}"
    return f"a {type(value).__name__}"


def _source_reason(ref: SourceRef) -> str:
    if ref.kind == "dynamodb-table":
        return "is a DynamoDB table ARN; the source must be the table's stream ARN (…/table/T/stream/LABEL)"
    if ref.kind != "unknown" and not ref.arn.startswith("arn:aws:"):
        return "is outside the aws partition; the function only accepts arn:aws: sources"
    if ref.kind == "kinesis" and not re.fullmatch(r"[a-zA-Z0-9_-]{1,128}", ref.name):
        return "names a stream the function's pattern rejects (letters, digits, - and _ only)"
    if ref.kind != "unknown" and not REGION.fullmatch(ref.region):
        return f"has a region ({ref.region or 'empty'}) the function's pattern rejects"
    if ref.kind != "unknown" and not re.fullmatch(r"[0-9]{12}", ref.account):
        return "has no 12-digit account id"
    return "is neither a Kinesis stream ARN nor a DynamoDB stream ARN"


def check_target(target: Target) -> list[Finding]:
    """Every reason the fan-out function would skip or mis-handle this target. Pure."""
    findings: list[Finding] = []
    a = target.attributes

    def add(severity: str, rule: str, reason: str) -> None:
        findings.append(Finding(severity, rule, reason, target.table, target.source_arn, target.id))

    ref = parse_source(target.source_arn)
    if not ref.accepted:
        add(ERROR, "source-arn", f"The source ARN {_source_reason(ref)}; the function ignores its targets.")

    kind = a.get("type")
    if not isinstance(kind, str) or kind not in TARGET_TYPES:
        add(
            ERROR,
            "type",
            f"type is {_kind_of(kind)}, not one of {', '.join(TARGET_TYPES)}; the target is ignored.",
        )
    else:
        destination = a.get("destination")
        pattern, expected = DESTINATIONS[kind]
        if not isinstance(destination, str) or not destination:
            add(
                ERROR,
                "destination",
                f"destination is {_kind_of(destination)}; a {kind} target needs {expected}.",
            )
        elif not pattern.fullmatch(destination):
            if kind in NAME_TYPES and destination.startswith("arn:"):
                reason = (
                    f"destination {destination!r} is an ARN, but a {kind} target needs {expected}: "
                    "the CLI stores only the name part of an ARN."
                )
            else:
                reason = f"destination {destination!r} is not {expected}; the target is ignored."
            add(ERROR, "destination", reason)

    active = a.get("active")
    if not isinstance(active, bool):
        add(
            ERROR,
            "active",
            f"active is {_kind_of(active)}, not a boolean; the function ignores the target "
            "(the CLI writes BOOL true/false).",
        )

    collapse = a.get("collapse")
    if collapse is None:
        add(
            ERROR,
            "collapse-missing",
            "collapse is missing; the function requires a string and ignores the target (the CLI writes 'none').",
        )
    elif not isinstance(collapse, str) or collapse not in COLLAPSE_VALUES:
        if isinstance(collapse, str) and LOOSE_COLLAPSE.search(collapse):
            add(
                WARNING,
                "collapse",
                f"collapse {collapse!r} is not one of {', '.join(COLLAPSE_VALUES)}; the function's loose check "
                "lets it through and then sends records one at a time.",
            )
        else:
            add(
                ERROR,
                "collapse",
                f"collapse is {_kind_of(collapse)}, not one of {', '.join(COLLAPSE_VALUES)}; the target is ignored.",
            )
    elif isinstance(kind, str) and kind in TARGET_TYPES and collapse != "none":
        if kind in COLLAPSE_RESET:
            reason = (
                f"collapse {collapse!r} has no effect: the function's configuration loader resets collapse "
                "for sqs, sns and iot targets (a switch case without break in lib/configuration.js), so each "
                "record is sent as its own message."
            )
        else:
            reason = f"collapse {collapse!r} has no effect on {kind} targets."
        add(WARNING, "collapse-unused", reason)

    if "parallel" in a and not isinstance(a["parallel"], bool):
        add(
            ERROR, "parallel", f"parallel is {_kind_of(a['parallel'])}, not a boolean; the target is ignored."
        )
    for flag in ("convertDDB", "deaggregate", "appendNewlines"):
        if flag in a and not isinstance(a[flag], bool):
            add(
                WARNING,
                "flag-type",
                f"{flag} is {_kind_of(a[flag])}, not a boolean; the function treats any non-empty string, "
                "'false' included, as true.",
            )
    if a.get("convertDDB") is True and ref.kind == "kinesis":
        add(
            WARNING, "flag-source", "convertDDB only applies to DynamoDB stream sources; this one is Kinesis."
        )
    if a.get("deaggregate") is True and ref.kind == "dynamodb":
        add(
            WARNING,
            "flag-source",
            "deaggregate only applies to Kinesis (KPL) sources; this one is a DynamoDB stream.",
        )

    role = a.get("role")
    external_id = a.get("externalId")
    region = a.get("region")
    cache = isinstance(kind, str) and kind in CACHE_TYPES
    if cache and (role is not None or region is not None):
        add(
            WARNING,
            "cache-cross-account",
            f"{kind} targets must be in the function's VPC; the function ignores their role and region.",
        )
    if role is not None and not cache:
        if not isinstance(role, str) or not ROLE.fullmatch(role):
            add(ERROR, "role", f"role {role!r} is not an IAM role ARN (arn:aws:iam::ACCOUNT:role/NAME).")
        elif external_id is None:
            add(
                WARNING,
                "role-without-external-id",
                f"cross-account role {role} is assumed without an externalId; the target account cannot tell "
                "this function from any other principal it trusts (confused deputy).",
            )
    if external_id is not None:
        if not isinstance(external_id, str):
            add(
                ERROR,
                "external-id",
                f"externalId is {_kind_of(external_id)}, not a string; the function ignores the target.",
            )
        elif role is None or cache:
            add(WARNING, "external-id-without-role", "externalId is set without a role; it is never used.")
        elif not EXTERNAL_ID.fullmatch(external_id):
            add(
                ERROR,
                "external-id",
                "externalId is not 2 to 1024 of the characters STS allows; every AssumeRole for this target fails.",
            )
    if region is not None and not cache and (not isinstance(region, str) or not REGION.fullmatch(region)):
        add(
            ERROR,
            "region",
            f"region {region!r} is not a region name such as us-east-1; the target is ignored.",
        )
    return findings


def _active_targets(count: int) -> str:
    return f"{count} active target{'' if count == 1 else 's'}"


def check_group(source_group: SourceGroup) -> list[Finding]:
    """Hook problems of one source (the CLI's hook/pause state)."""
    findings: list[Finding] = []
    table, arn = source_group.table, source_group.source.arn

    def add(severity: str, rule: str, reason: str) -> None:
        findings.append(Finding(severity, rule, reason, table, arn))

    if not source_group.hooks_known:
        return findings
    active = [t for t in source_group.targets if t.active]
    hook = source_group.hook
    function = source_group.function
    if hook is None:
        if active:
            add(
                WARNING,
                "not-hooked",
                f"{_active_targets(len(active))} but no event source mapping from this source to {function}: "
                f"no records reach them (hook it with the aws-lambda-fanout CLI: `./fanout hook`).",
            )
        return findings
    if len(source_group.hooks) > 1:
        add(
            WARNING,
            "duplicate-hooks",
            f"{len(source_group.hooks)} event source mappings from this source to {function}: every record is "
            "forwarded that many times.",
        )
    if not source_group.targets:
        add(
            WARNING,
            "hooked-without-targets",
            f"hooked to {function} but has no targets: its records are dropped.",
        )
    if not hook.enabled and active:
        add(
            WARNING,
            "hook-disabled",
            f"the mapping to {function} is {hook.state} (paused): {_active_targets(len(active))} receive nothing.",
        )
    if hook.problem:
        add(
            WARNING,
            "hook-problem",
            f"the mapping's last processing result is {hook.last_processing_result!r}.",
        )
    return findings


@dataclass(frozen=True)
class CheckReport:
    findings: tuple[Finding, ...]
    targets_checked: int
    sources_checked: int
    hook_errors: Mapping[str, str]
    # --deep: each cross-account target's role assumed and destination described (None: not asked).
    deep: tuple[Any, ...] | None = None

    @property
    def deep_failed(self) -> int:
        return sum(1 for result in self.deep or () if not result.ok)

    @property
    def errors(self) -> int:
        return sum(f.severity == ERROR for f in self.findings)

    @property
    def warnings(self) -> int:
        return sum(f.severity == WARNING for f in self.findings)

    def to_json(self) -> dict[str, Any]:
        document: dict[str, Any] = {
            "targetsChecked": self.targets_checked,
            "sourcesChecked": self.sources_checked,
            "errors": self.errors,
            "warnings": self.warnings,
            "findings": [f.to_json() for f in self.findings],
        }
        if self.hook_errors:
            document["hookErrors"] = dict(self.hook_errors)
        if self.deep is not None:
            document["deep"] = [result.to_json() for result in self.deep]
        return document


def check_groups(groups: Iterable[SourceGroup], hook_errors: Mapping[str, str] | None = None) -> CheckReport:
    findings: list[Finding] = []
    targets = sources = 0
    for source_group in groups:
        sources += 1
        findings.extend(check_group(source_group))
        for target in source_group.targets:
            targets += 1
            findings.extend(check_target(target))
    findings.sort(key=_finding_order)
    return CheckReport(tuple(findings), targets, sources, dict(hook_errors or {}))


def _finding_order(finding: Finding) -> tuple[int, str, str, str]:
    """Errors first, then by table, source and target."""
    return (0 if finding.severity == ERROR else 1, finding.table, finding.source_arn, finding.target_id or "")


def beyond_first_page(source_group: SourceGroup, loaded_ids: set[str]) -> list[Finding]:
    """Active targets the function never loads because they are not on its first page. Pure."""
    missing = [t.id for t in source_group.targets if t.active and t.id not in loaded_ids]
    if not missing:
        return []
    shown = ", ".join(missing[:10]) + (f" and {len(missing) - 10} more" if len(missing) > 10 else "")
    return [
        Finding(
            ERROR,
            "beyond-first-page",
            f"{_active_targets(len(missing))} {'is' if len(missing) == 1 else 'are'} beyond the first page of this source's items, which is all "
            f"the fan-out function reads: {shown}.",
            source_group.table,
            source_group.source.arn,
        )
    ]


def check(settings: Settings, *, deep: bool = False) -> CheckReport:
    """The rules of ``check_target``/``check_group``; with ``deep``, also every cross-account target's role
    and destination (``bot.core.fanout.deep``), whose failures are findings too."""
    snap = snapshot(settings)
    report = check_groups(snap.groups, snap.hook_errors)
    if deep:
        from dataclasses import replace

        from bot.core.fanout.deep import deep_check

        results = tuple(deep_check(settings, (t for g in snap.groups for t in g.targets)))
        failed = [r.finding() for r in results if not r.ok]
        findings = sorted((*report.findings, *failed), key=_finding_order)
        report = replace(report, findings=tuple(findings), deep=results)
    extra: list[Finding] = []
    for source_group in snap.groups:
        if any(t.active for t in source_group.targets):
            loaded, more = fanout_aws.first_page_as_the_function_reads_it(
                source_group.table, source_group.source.arn
            )
            if more:
                extra.extend(beyond_first_page(source_group, loaded))
    if not extra:
        return report
    findings = sorted((*extra, *report.findings), key=_finding_order)
    return CheckReport(
        tuple(findings), report.targets_checked, report.sources_checked, report.hook_errors, report.deep
    )


# -- activate / deactivate -------------------------------------------------------------------------


@dataclass(frozen=True)
class ToggleResult:
    table: str
    source_arn: str
    target_id: str
    active: bool
    changed: bool  # False: it already was in that state (nothing written that matters)

    @property
    def message(self) -> str:
        state = "active" if self.active else "inactive"
        ref = parse_source(self.source_arn)
        where = f"target {self.target_id} of {ref.display}"
        if not self.changed:
            return f"The {where} was already {state}; nothing changed."
        return (
            f"The {where} is now {state}. The fan-out function caches its configuration, so this takes "
            "effect within a few minutes."
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": True,
            "table": self.table,
            "sourceArn": self.source_arn,
            "id": self.target_id,
            "active": self.active,
            "changed": self.changed,
            "message": self.message,
        }


def resolve_target(
    settings: Settings, source: str, target_id: str, *, table: str | None = None
) -> tuple[str, str]:
    """(table, source ARN) holding ``target_id`` for ``source`` (an ARN, stream name or table name).

    UsageError names what was not found or what is ambiguous; nothing is ever written here.
    """
    source, target_id = source.strip(), target_id.strip()
    if not source or not target_id:
        raise UsageError("Give the source (ARN, stream name or table name) and the target id.")
    specs = table_specs(settings)
    if table is not None:
        specs = [s for s in specs if s.table == table]
        if not specs:
            known = ", ".join(s.table for s in table_specs(settings))
            raise UsageError(f"{echo(table)} is not one of the configured fan-out tables ({known}).")
    if source.startswith("arn:"):
        candidates = [(spec.table, source) for spec in specs]
    else:
        candidates = []
        for spec in specs:
            arns = {str(item.get("sourceArn", "")) for item in fanout_aws.scan_targets(spec.table).items}
            candidates += [
                (spec.table, arn) for arn in sorted(arns) if source_matches(parse_source(arn), source)
            ]
        if not candidates:
            raise NotFoundError(
                f"No source named {echo(source)} in {', '.join(s.table for s in specs)}; nothing was changed."
            )
    holders = [(t, arn) for t, arn in candidates if fanout_aws.get_target(t, arn, target_id) is not None]
    if not holders:
        where = candidates[0][1] if len({arn for _, arn in candidates}) == 1 else source
        raise NotFoundError(f"No target {echo(target_id)} for source {where}; nothing was changed.")
    if len(holders) > 1:
        listed = "; ".join(f"{arn} in {t}" for t, arn in holders)
        raise UsageError(
            f"Target {echo(target_id)} exists for more than one source ({listed}); give the source ARN or the table."
        )
    return holders[0]


def set_active(
    settings: Settings, source: str, target_id: str, active: bool, *, table: str | None = None
) -> ToggleResult:
    """``fanout activate|deactivate``: conditional on the item existing, like the CLI; idempotent."""
    holder_table, arn = resolve_target(settings, source, target_id, table=table)
    change = fanout_aws.set_active(holder_table, arn, target_id.strip(), active)
    if not change.found:  # deleted between the lookup and the update
        raise NotFoundError(f"No target {echo(target_id)} for source {echo(arn)}; nothing was changed.")
    return ToggleResult(holder_table, arn, target_id.strip(), active, changed=change.previous is not active)
