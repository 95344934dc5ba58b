"""``/ops doctor``: what of the wiring opsbot depends on is in place, and the exact fix for what is not.

A doctor run is a list of probes. Each probe reads (never changes) one piece of wiring and answers with
findings: a verdict ``ok`` / ``warn`` / ``fail`` / ``skip``, a one-line detail and the fix (an ``aws``
command, a template parameter or a console path). Probes run in parallel under one deadline: a probe that
has not answered by then is reported as cut short and the others still stand, so one slow or hanging
endpoint never costs the whole answer. A probe that raises is one finding, never the end of the run.

Which probes exist is decided per area in ``bot.core.ops.checks``; this module is the pure frame around
them (plus the thread pool), so tests can drive it with probes of their own.
"""

from __future__ import annotations

import contextvars
import functools
import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from bot.aws.errors import ACCESS_DENIED_CODES
from bot.errors import AwsError, OpsbotError

logger = logging.getLogger("opsbot.doctor")

T = TypeVar("T")
R = TypeVar("R")
Status = Literal["ok", "warn", "fail", "skip"]
STATUSES: tuple[Status, ...] = ("fail", "warn", "ok", "skip")  # the order answers list them in
AREAS: tuple[str, ...] = ("slack", "aws", "apilogs", "mail", "device", "dns", "fanout")

# Enough for a region's read calls to overlap without crossing the per-account API rates (CloudWatch Logs
# calls also pass through bot.aws.logs' limiter).
WORKERS = 8


@dataclass(frozen=True, slots=True)
class Finding:
    area: str  # one of AREAS
    check: str  # what was checked, e.g. "execution logging"
    target: str  # which resource, e.g. "api 1a2b3c/prod"
    status: Status
    detail: str  # one line: what was found
    fix: str = ""  # the exact fix, empty for ok

    def to_json(self) -> dict[str, str]:
        return {
            "area": self.area,
            "check": self.check,
            "target": self.target,
            "status": self.status,
            "detail": self.detail,
            # Without Slack's code spans: a script (or a terminal) takes the command as it is.
            "fix": self.fix.replace("`", ""),
        }


@dataclass(frozen=True, slots=True)
class Probe:
    """One read-only check; ``run`` returns its findings (one or several: one per stage, per identity)."""

    area: str
    check: str
    target: str
    run: Callable[[], Sequence[Finding]]
    # Reads opsbot's own resources (its state table, topic, Slack secret, credentials): in its own account
    # and region, whatever account the doctor is aimed at (bot.core.ops.commands.aim).
    own: bool = False


@dataclass
class DoctorReport:
    findings: list[Finding] = field(default_factory=list)
    cut_short: list[str] = field(default_factory=list)  # "area: check (target)" of probes not finished
    seconds: float = 0.0
    scope: str = ""  # "account 123456789012, us-east-1", when known

    def summary(self) -> dict[str, int]:
        counts = {status: 0 for status in ("ok", "warn", "fail", "skip")}
        for finding in self.findings:
            counts[finding.status] += 1
        return counts

    @property
    def failed(self) -> bool:
        return any(f.status == "fail" for f in self.findings)

    def ordered(self) -> list[Finding]:
        """Failing checks first, then warnings, then the rest; areas in their usual order within each."""
        return sorted(self.findings, key=_order)

    def by_area(self) -> list[tuple[str, list[Finding]]]:
        """Areas with their findings, the area holding the worst finding first."""
        grouped: dict[str, list[Finding]] = {}
        for finding in self.ordered():
            grouped.setdefault(finding.area, []).append(finding)
        return sorted(grouped.items(), key=lambda item: _order(item[1][0]))

    def to_json(self) -> dict[str, Any]:
        return {
            "checks": [f.to_json() for f in self.ordered()],
            "summary": self.summary(),
            "cut_short": list(self.cut_short),
            "scope": self.scope,
            "seconds": round(self.seconds, 3),
        }


def _order(finding: Finding) -> tuple[int, int, str, str]:
    area = AREAS.index(finding.area) if finding.area in AREAS else len(AREAS)
    return (STATUSES.index(finding.status), area, finding.check, finding.target)


def finding_from_error(probe: Probe, error: BaseException) -> Finding:
    """A probe that raised: the check could not be made. Its sentence (a translated AWS error names the
    missing permission) is the detail; the doctor's own read permissions are the fix."""
    if isinstance(error, OpsbotError):
        if error.hint:
            fix = error.hint
        elif isinstance(error, AwsError) and error.code in ACCESS_DENIED_CODES:
            fix = "Grant the read permission named above to the role opsbot runs as, then run it again."
        elif isinstance(error, AwsError):
            fix = "Run it again; if it persists, see opsbot's log."
        else:
            fix = ""
        return Finding(
            probe.area, probe.check, probe.target, "warn", f"could not be checked: {error.message}", fix
        )
    # INFO, not ERROR: the finding says it; the trace is for the log (Lambda's), not a terminal's stderr.
    logger.info("doctor probe %s (%s) failed", probe.check, probe.target, exc_info=error)
    return Finding(
        probe.area,
        probe.check,
        probe.target,
        "warn",
        f"could not be checked: {type(error).__name__}: {error}"[:300],
        "See opsbot's log for the trace.",
    )


def _daemon_map(
    functions: Sequence[Callable[[], Any]], workers: int
) -> tuple[list[tuple[bool, Any]], threading.Event, list[bool]]:
    """Start ``functions`` on at most ``workers`` daemon threads, each in a copy of the caller's context
    (a region override of bot.aws.clients holds there too). Returns the outcome slots ((True, result) or
    (False, exception)), an event set when all are done, and a done flag per function.

    Daemon threads, not ThreadPoolExecutor: the interpreter joins an executor's workers at exit, so a call
    stuck on a black-holed endpoint would keep `opsbot doctor` from exiting long after it answered."""
    outcomes: list[tuple[bool, Any]] = [(False, None)] * len(functions)
    finished = [False] * len(functions)
    all_done = threading.Event()
    lock = threading.Lock()
    queue = list(enumerate(functions))
    remaining = len(functions)

    def work(context: contextvars.Context) -> None:
        nonlocal remaining
        while True:
            with lock:
                if not queue:
                    return
                index, function = queue.pop(0)
            try:
                outcomes[index] = (True, context.copy().run(function))
            except BaseException as error:  # reported as the probe's finding
                outcomes[index] = (False, error)
            with lock:
                finished[index] = True
                remaining -= 1
                if remaining == 0:
                    all_done.set()

    if not functions:
        all_done.set()
    for _ in range(max(1, min(workers, len(functions)))):
        threading.Thread(target=work, args=(contextvars.copy_context(),), daemon=True, name="doctor").start()
    return outcomes, all_done, finished


def in_parallel(function: Callable[[T], R], items: Sequence[T], *, workers: int = 4) -> list[R]:
    """``[function(item) for item in items]`` on daemon threads in the caller's context (for a probe's own
    fan-out, e.g. one read per stage); the first exception is raised."""
    outcomes, all_done, _ = _daemon_map([functools.partial(function, item) for item in items], workers)
    all_done.wait()
    results: list[R] = []
    for ok, value in outcomes:
        if not ok:
            raise value
        results.append(value)
    return results


def run_probes(
    probes: Iterable[Probe],
    *,
    timeout: float,
    workers: int = WORKERS,
    clock: Callable[[], float] = time.monotonic,
) -> DoctorReport:
    """Run every probe in parallel; those not done ``timeout`` seconds after the start are cut short and
    left running on their daemon threads: a probe stuck on a black-holed endpoint holds neither the answer
    nor the process."""
    probes = list(probes)
    started = clock()
    report = DoctorReport()
    if not probes:
        return report
    outcomes, all_done, finished = _daemon_map([p.run for p in probes], workers)
    all_done.wait(max(0.0, timeout - (clock() - started)))
    for index, probe in enumerate(probes):
        if not finished[index]:
            report.cut_short.append(f"{probe.area}: {probe.check} ({probe.target})")
            report.findings.append(
                Finding(
                    probe.area,
                    probe.check,
                    probe.target,
                    "warn",
                    f"cut short: no answer within {timeout:g} s, so it was not checked",
                    "Run it again when the endpoint answers, or with more time (`opsbot doctor --timeout 300`).",
                )
            )
            continue
        ok, value = outcomes[index]
        if not ok:
            report.findings.append(finding_from_error(probe, value))
        else:
            report.findings.extend(value)
    report.seconds = clock() - started
    return report
