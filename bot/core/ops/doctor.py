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
import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Literal

from bot.errors import AwsError, OpsbotError

logger = logging.getLogger("opsbot.doctor")

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
            "fix": self.fix,
        }


@dataclass(frozen=True, slots=True)
class Probe:
    """One read-only check; ``run`` returns its findings (one or several: one per stage, per identity)."""

    area: str
    check: str
    target: str
    run: Callable[[], Sequence[Finding]]


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
    if isinstance(error, AwsError):
        return Finding(
            probe.area,
            probe.check,
            probe.target,
            "warn",
            f"could not be checked: {error.message}",
            error.hint
            or "Grant the read permission named above to the role opsbot runs as, then run it again.",
        )
    if isinstance(error, OpsbotError):
        return Finding(
            probe.area,
            probe.check,
            probe.target,
            "warn",
            f"could not be checked: {error.message}",
            error.hint or "",
        )
    logger.exception("doctor probe %s (%s) failed", probe.check, probe.target, exc_info=error)
    return Finding(
        probe.area,
        probe.check,
        probe.target,
        "warn",
        f"could not be checked: {type(error).__name__}: {error}"[:300],
        "See opsbot's log for the trace.",
    )


def run_probes(
    probes: Iterable[Probe],
    *,
    timeout: float,
    workers: int = WORKERS,
    clock: Callable[[], float] = time.monotonic,
) -> DoctorReport:
    """Run every probe in parallel; those not done ``timeout`` seconds after the start are cut short.

    The pool's threads are daemons of their own (not ``ThreadPoolExecutor.shutdown(wait=True)``): a probe
    stuck on a black-holed endpoint must not hold the answer past the deadline.
    """
    probes = list(probes)
    started = clock()
    report = DoctorReport()
    if not probes:
        return report
    pool = ThreadPoolExecutor(max_workers=max(1, min(workers, len(probes))), thread_name_prefix="doctor")
    # Each probe runs in a copy of the caller's context: a region override (bot.aws.clients) holds there too.
    futures: list[tuple[Probe, Future[Sequence[Finding]]]] = [
        (p, pool.submit(contextvars.copy_context().run, p.run)) for p in probes
    ]
    done = threading.Event()
    remaining = len(futures)
    lock = threading.Lock()

    def finished(_: Future[Sequence[Finding]]) -> None:
        nonlocal remaining
        with lock:
            remaining -= 1
            if remaining == 0:
                done.set()

    for _, future in futures:
        future.add_done_callback(finished)
    done.wait(max(0.0, timeout - (clock() - started)))
    for probe, future in futures:
        if not future.done():
            future.cancel()
            report.cut_short.append(f"{probe.area}: {probe.check} ({probe.target})")
            report.findings.append(
                Finding(
                    probe.area,
                    probe.check,
                    probe.target,
                    "skip",
                    f"cut short: no answer within {timeout:g} s",
                    "Run `opsbot doctor` from a terminal (no time limit), or again when the endpoint answers.",
                )
            )
            continue
        error = future.exception()
        if error is not None:
            report.findings.append(finding_from_error(probe, error))
        else:
            report.findings.extend(future.result())
    pool.shutdown(wait=False, cancel_futures=True)
    report.seconds = clock() - started
    return report
