"""A test double of how CloudWatch Logs pages FilterLogEvents, over moto's answer.

moto returns every match of a FilterLogEvents call in pages of ``limit`` events, stream after stream.
CloudWatch does not: it searches the group's stored events in time order across streams, a slice at a
time, and answers with what that slice held (possibly nothing) and a ``nextToken`` while there is more
to search. On a busy group a rare term therefore comes back after a run of EMPTY pages, sometimes
several in a row before the first match, and no page holds more than 10,000 events or 1 MB.

``CloudWatchPaging`` re-pages moto's answer that way. It answers FilterLogEvents itself from a botocore
``before-send`` handler on every logs client of ``bot.aws.clients``' cache (``add_client_hook``), so
the code under test (``bot.aws.logs.filter_events``, lookups, tails, the bench's baselines) runs
unchanged, with its own retries, parsing and ``before-call`` hooks. For the first page of a search it
asks moto (through a client of its own, outside the cache) for every event of the window and for the
matches of the pattern, then plans the pages:

- the window's events in CloudWatch's order (time, then ingestion), cut into slices of
  ``scan_events`` events, one slice scanned per page: the page holds that slice's matches, maybe none;
- before a slice, with probability ``empty_rate`` (seeded per search, so runs repeat exactly), up to
  ``max_empty_run`` extra empty pages: CloudWatch's search ran out of time before finding anything;
- a slice's matches split into pages of at most ``limit`` (10,000) events and 1 MB.

The last page carries no ``nextToken``. A token is valid only with the parameters of the search that
issued it, as CloudWatch requires. ``stats`` counts what was asked and answered.
"""

from __future__ import annotations

import json
import random
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import Any

MAX_PAGE_EVENTS = 10_000
MAX_PAGE_BYTES = 1_048_576
# Parameters that choose what a search reads; a token is valid only with the same ones.
_SEARCH_KEYS = (
    "logGroupName",
    "logGroupIdentifier",
    "logStreamNames",
    "logStreamNamePrefix",
    "startTime",
    "endTime",
    "filterPattern",
    "limit",
    "unmask",
)
# Plans kept for searches a caller may still continue (one that stops early leaves its plan behind).
_MAX_PLANS = 512


@dataclass
class PagingStats:
    """FilterLogEvents requests the double answered: ``searches`` began a search (no ``nextToken``),
    ``continued`` followed a token, ``empty`` pages carried no event but a token."""

    requests: int = 0
    searches: int = 0
    continued: int = 0
    empty: int = 0
    events: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, *, first: bool, events: int, empty: bool) -> None:
        with self._lock:
            self.requests += 1
            self.searches += first
            self.continued += not first
            self.empty += empty
            self.events += events

    def snapshot(self) -> PagingStats:
        with self._lock:
            return PagingStats(self.requests, self.searches, self.continued, self.empty, self.events)

    def since(self, before: PagingStats) -> PagingStats:
        now = self.snapshot()
        return PagingStats(
            now.requests - before.requests,
            now.searches - before.searches,
            now.continued - before.continued,
            now.empty - before.empty,
            now.events - before.events,
        )


@dataclass
class _Plan:
    key: str
    pages: list[list[dict[str, Any]]]


class _Body:
    """What botocore reads an HTTP response's body from."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._data


class CloudWatchPaging:
    def __init__(
        self,
        *,
        seed: int = 12,
        scan_events: int = 5_000,
        empty_rate: float = 0.3,
        max_empty_run: int = 3,
        page_bytes: int = MAX_PAGE_BYTES,
        frozen: bool = False,
    ) -> None:
        if scan_events < 1 or not 0 <= empty_rate < 1 or max_empty_run < 0:
            raise ValueError("scan_events >= 1, 0 <= empty_rate < 1 and max_empty_run >= 0")
        self.seed = seed
        self.scan_events = scan_events
        self.empty_rate = empty_rate
        self.max_empty_run = max_empty_run
        self.page_bytes = page_bytes
        # The groups do not change while installed (a bench's seeded data): each group's events are
        # read from moto once and every window is cut from that copy, so that the double's own reads do
        # not weigh on the timings of what it serves (they would, as moto filters in Python).
        self.frozen = frozen
        self._copies: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self.stats = PagingStats()
        self.active = False
        self._lock = threading.Lock()
        self._plans: OrderedDict[str, _Plan] = OrderedDict()
        self._serial = 0
        self._raw: dict[str, Any] = {}
        self._attached: list[weakref.ref[Any]] = []
        self._remove_hook: Callable[[], None] | None = None

    # -- installing -------------------------------------------------------------------------------
    def install(self) -> CloudWatchPaging:
        """Answer FilterLogEvents on every logs client of the cache, present and future."""
        from bot.aws.clients import add_client_hook

        self.active = True
        self._remove_hook = add_client_hook(self._attach)
        return self

    def uninstall(self) -> None:
        self.active = False
        if self._remove_hook is not None:
            self._remove_hook()
            self._remove_hook = None
        for ref in self._attached:
            attached = ref()
            if attached is not None:
                attached.meta.events.unregister(
                    "before-send.cloudwatch-logs.FilterLogEvents", unique_id=self._unique_id
                )
        self._attached.clear()

    @property
    def _unique_id(self) -> str:
        return f"cloudwatch-paging-{id(self)}"

    def _attach(self, service: str, logs: Any) -> None:
        if service != "logs":
            return
        # First: ahead of moto's own before-send stub (in-process moto), which would answer otherwise.
        logs.meta.events.register_first(
            "before-send.cloudwatch-logs.FilterLogEvents",
            partial(self._answer, region=logs.meta.region_name),
            unique_id=self._unique_id,
        )
        self._attached.append(weakref.ref(logs))

    def _raw_client(self, region: str) -> Any:
        """A logs client outside the cache (so without this double), to read moto's answers."""
        with self._lock:
            found = self._raw.get(region)
            if found is None:
                import boto3

                found = self._raw[region] = boto3.session.Session().client("logs", region_name=region)
            return found

    # -- answering --------------------------------------------------------------------------------
    def _answer(self, request: Any, region: str = "", **_: Any) -> Any:
        if not self.active:
            return None
        from botocore.exceptions import ClientError

        body = request.body
        params: dict[str, Any] = json.loads(body.decode() if isinstance(body, bytes) else body or "{}")
        token = params.pop("nextToken", None)
        key = json.dumps({k: params[k] for k in _SEARCH_KEYS if k in params}, sort_keys=True)
        if token is None:
            try:
                plan = self._plan(self._raw_client(region), params, key)
            except ClientError as error:  # the group does not exist: CloudWatch's own error, as moto gave it
                info = error.response.get("Error", {})
                return _response(
                    request, 400, {"__type": info.get("Code", ""), "message": info.get("Message", "")}
                )
            plan_id, index = self._keep(plan), 0
        else:
            plan_id, _sep, number = str(token).rpartition("/")
            with self._lock:
                found = self._plans.get(plan_id)
            if found is None or found.key != key or not number.isdigit():
                message = "The specified nextToken is invalid for the parameters given."
                return _response(request, 400, {"__type": "InvalidParameterException", "message": message})
            plan, index = found, int(number)
        page = plan.pages[index] if index < len(plan.pages) else []
        answer: dict[str, Any] = {"events": page, "searchedLogStreams": []}
        last = index >= len(plan.pages) - 1
        if last:
            with self._lock:
                self._plans.pop(plan_id, None)
        else:
            answer["nextToken"] = f"{plan_id}/{index + 1}"
        self.stats.add(first=token is None, events=len(page), empty=not page and not last)
        return _response(request, 200, answer)

    def _keep(self, plan: _Plan) -> str:
        with self._lock:
            self._serial += 1
            plan_id = f"cwp{self.seed}-{self._serial}"
            self._plans[plan_id] = plan
            while len(self._plans) > _MAX_PLANS:
                self._plans.popitem(last=False)
            return plan_id

    def _plan(self, raw: Any, params: dict[str, Any], key: str) -> _Plan:
        window = {k: params[k] for k in _SEARCH_KEYS if k in params and k not in {"filterPattern", "limit"}}
        everything = self._window(raw, window)
        pattern = params.get("filterPattern")
        matching = (
            {e["eventId"] for e in _read_all(raw, {**window, "filterPattern": pattern})} if pattern else None
        )
        limit = min(int(params.get("limit") or MAX_PAGE_EVENTS), MAX_PAGE_EVENTS)
        rng = random.Random(f"{self.seed}|{key}")
        pages: list[list[dict[str, Any]]] = []
        for begin in range(0, max(1, len(everything)), self.scan_events):
            run = 0
            while run < self.max_empty_run and rng.random() < self.empty_rate:
                pages.append([])
                run += 1
            scanned = everything[begin : begin + self.scan_events]
            hits = [e for e in scanned if matching is None or e["eventId"] in matching]
            pages.extend(self._split(hits, limit) or [[]])
        return _Plan(key, pages)

    def _window(self, raw: Any, window: dict[str, Any]) -> list[dict[str, Any]]:
        """Every event of the search's window, in CloudWatch's order: time, then ingestion, across
        streams (moto answers stream after stream)."""
        group = str(window.get("logGroupName") or window.get("logGroupIdentifier", ""))
        simple = set(window) <= {
            "logGroupName",
            "logGroupIdentifier",
            "startTime",
            "endTime",
            "logStreamNames",
        }
        if not self.frozen or not simple:
            return sorted(_read_all(raw, window), key=_order)
        copy = self.preload(raw, group)
        start, end = window.get("startTime"), window.get("endTime")
        streams = set(window.get("logStreamNames") or ())
        return [
            e
            for e in copy
            if (start is None or e["timestamp"] >= start)
            and (end is None or e["timestamp"] <= end)
            and (not streams or e["logStreamName"] in streams)
        ]

    def preload(self, raw: Any, group: str) -> list[dict[str, Any]]:
        """The frozen copy of ``group`` (read now if not yet): a bench reads every group before timing."""
        region = str(raw.meta.region_name)
        with self._lock:
            copy = self._copies.get((region, group))
        if copy is None:
            copy = sorted(_read_all(raw, {"logGroupName": group}), key=_order)
            with self._lock:
                self._copies[(region, group)] = copy
        return copy

    def preload_groups(self, groups: list[str], region: str) -> None:
        for group in groups:
            try:
                self.preload(self._raw_client(region), group)
            except Exception as error:  # a group that does not exist is answered as moto answers it
                if "ResourceNotFound" not in type(error).__name__ + str(error):
                    raise

    def _split(self, events: list[dict[str, Any]], limit: int) -> list[list[dict[str, Any]]]:
        """Pages of at most ``limit`` events and ``page_bytes`` of JSON (the 1 MB of a response)."""
        pages: list[list[dict[str, Any]]] = []
        current: list[dict[str, Any]] = []
        size = 2  # the list's brackets
        for event in events:
            weight = len(json.dumps(event).encode()) + 2  # and its separator
            if current and (len(current) >= limit or size + weight > self.page_bytes):
                pages.append(current)
                current, size = [], 2
            current.append(event)
            size += weight
        if current:
            pages.append(current)
        return pages


def _order(event: dict[str, Any]) -> tuple[int, int]:
    return int(event.get("timestamp", 0)), int(event.get("ingestionTime", 0))


def _read_all(raw: Any, params: dict[str, Any]) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {**params, "limit": MAX_PAGE_EVENTS}
    while True:
        page = raw.filter_log_events(**kwargs)
        events.extend(page.get("events", []))
        token = page.get("nextToken")
        if not token or not page.get("events"):
            return events
        kwargs["nextToken"] = token


def _response(request: Any, status: int, answer: dict[str, Any]) -> Any:
    from botocore.awsrequest import AWSResponse
    from botocore.compat import HTTPHeaders

    headers = HTTPHeaders.from_dict(
        {"content-type": "application/x-amz-json-1.1", "x-amzn-requestid": "cloudwatch-paging"}
    )
    return AWSResponse(request.url, status, headers, _Body(json.dumps(answer).encode()))


@contextmanager
def cloudwatch_paging(**options: Any) -> Iterator[CloudWatchPaging]:
    """FilterLogEvents paged as CloudWatch pages it, for the duration of the block."""
    double = CloudWatchPaging(**options).install()
    try:
        yield double
    finally:
        double.uninstall()
