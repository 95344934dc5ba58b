"""Data shared by the apilogs modules: log events, the discovered API and its functions."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from bot.aws.logs import CallStats, LogEvent

__all__ = [
    "ApiStage",
    "CallStats",
    "Discovery",
    "FunctionRef",
    "LogEvent",
    "SearchRecord",
    "merge_events",
    "sort_key",
]

ApiKind = Literal["REST", "HTTP"]
FunctionRole = Literal["integration", "authorizer"]


def _id_order(event_id: str) -> tuple[int, str]:
    # CloudWatch event ids are long decimal strings; comparing length first orders them numerically.
    return (len(event_id), event_id)


def sort_key(event: LogEvent) -> tuple[int, int, str, str, tuple[int, str]]:
    """Time order across groups; ties by ingestion time, then a stable order within a stream."""
    return (event.timestamp, event.ingestion_time, event.group, event.stream, _id_order(event.event_id))


def merge_events(*sources: Iterable[LogEvent]) -> list[LogEvent]:
    """All events of ``sources`` once each (by group and event id), in time order."""
    seen: dict[tuple[str, str], LogEvent] = {}
    for source in sources:
        for event in source:
            seen.setdefault(event.key, event)
    return sorted(seen.values(), key=sort_key)


@dataclass(frozen=True)
class FunctionRef:
    """A Lambda function behind the API and where it logs."""

    name: str
    log_group: str
    arn: str = ""
    qualifiers: tuple[str, ...] = ()  # aliases/versions seen in integrations (they log to the same group)
    role: FunctionRole = "integration"
    routes: tuple[str, ...] = ()  # "GET /orders", "authorizer auth"
    log_format: str = "Text"
    # False when GetFunctionConfiguration failed (deleted function, other account, no permission):
    # the group is then the default /aws/lambda/<name>, a guess.
    resolved: bool = True


@dataclass(frozen=True)
class ApiStage:
    """The API and stage a lookup or tail is about, with what its stage says about logging."""

    api_id: str
    stage: str
    kind: ApiKind
    name: str = ""
    region: str = "us-east-1"
    execution_log_group: str = ""  # REST only
    access_log_group: str = ""
    logging_level: str = ""  # REST execution logging: OFF, ERROR, INFO ("" when unknown)
    variables: tuple[tuple[str, str], ...] = ()

    @property
    def label(self) -> str:
        return f"{self.name or self.api_id} ({self.api_id}) stage {self.stage}"

    def to_json(self) -> dict[str, Any]:
        return {
            "apiId": self.api_id,
            "name": self.name,
            "stage": self.stage,
            "kind": self.kind,
            "region": self.region,
            "executionLogGroup": self.execution_log_group,
            "accessLogGroup": self.access_log_group,
            "loggingLevel": self.logging_level,
        }


@dataclass(frozen=True)
class Discovery:
    """Everything behind one API stage: its log groups and the functions it invokes."""

    stage: ApiStage
    functions: tuple[FunctionRef, ...] = ()
    # "GET /orders" (REST: method + resource path; HTTP: route key) -> function name
    routes: tuple[tuple[str, str], ...] = ()
    notes: tuple[str, ...] = ()

    def function(self, name: str) -> FunctionRef | None:
        for ref in self.functions:
            if ref.name == name:
                return ref
        return None

    def function_for_route(self, route: str) -> FunctionRef | None:
        wanted = route.strip()
        for key, name in self.routes:
            if key == wanted:
                return self.function(name)
        return None

    @property
    def lambda_groups(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(ref.log_group for ref in self.functions))

    @property
    def api_groups(self) -> tuple[str, ...]:
        groups = [self.stage.execution_log_group, self.stage.access_log_group]
        return tuple(dict.fromkeys(g for g in groups if g))

    @property
    def all_groups(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys([*self.api_groups, *self.lambda_groups]))


@dataclass(frozen=True)
class SearchRecord:
    """One search we ran: for the not-found answer and the --json output."""

    group: str
    term: str  # the id searched for, "" for a time-window read
    start_ms: int
    end_ms: int
    found: int
    missing: bool = False  # the log group does not exist
    stream: str = ""
    purpose: str = ""
    # The lookup's time limit stopped this search with more to read: what it found is not all there is.
    cut_short: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "group": self.group,
            "term": self.term,
            "startMs": self.start_ms,
            "endMs": self.end_ms,
            "found": self.found,
            "missing": self.missing,
            "stream": self.stream,
            "purpose": self.purpose,
            "cutShort": self.cut_short,
        }
