"""Fault injection: every AWS call of every mutating flow fails once, in every way it can.

The cases are generated from the calls a clean run of the flow makes (``tests/faults/injector.py``), so a
call added to a flow is covered without editing this file. After each injected fault:

- exactly one audit record was written for the interaction, and its outcome is the truth: the clean run's
  outcome if and only if the change was made;
- the user was told what happened in a sentence (a message that is not the "working…" line and not the
  catch-all "Something went wrong");
- a retry without the fault completes (the state is exactly where a clean run leaves it, so nothing was
  applied twice), or is refused in a sentence and changes nothing.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any

import pytest

from bot.aws import clients
from bot.local.slack_api import LocalSlack, Message
from tests.conftest import ONCALL_POLICY
from tests.faults.flows import FLOWS, Flow
from tests.faults.injector import FAULTS, Injector, faults_for, injector
from tests.support.slack import ALICE, SlackHarness, harness_settings, local_slack


class AuditLines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.records: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        with suppress(ValueError, KeyError, TypeError):
            self.records.append(json.loads(record.getMessage())["audit"])


@dataclass
class Run:
    before: Any
    after: Any
    audits: list[dict[str, Any]]
    told: list[str]
    injected: str = ""
    calls: list[Any] = field(default_factory=list)


@contextmanager
def world(flow: Flow) -> Iterator[SlackHarness]:
    """A fresh moto, state table and local Slack, with the app under the on-call policy."""
    from moto import mock_aws

    from bot.aws.state import create_state_table

    slack: LocalSlack = local_slack().start()
    try:
        with mock_aws(), ExitStack() as stack:
            clients.clear_caches()
            create_state_table("opsbot-state")
            env = {**flow.env, **(flow.prepare(stack) if flow.prepare else {})}
            settings = harness_settings(slack, OPSBOT_POLICY=json.dumps(ONCALL_POLICY), **env)
            yield SlackHarness(slack, settings)
    finally:
        clients.clear_caches()
        slack.stop()


def _snapshot(harness: SlackHarness) -> dict[tuple[str, str], tuple[int, str]]:
    return {(m.channel, m.ts): (m.revision, m.text) for m in harness.seen_by(ALICE)}


def _told(harness: SlackHarness, before: dict[tuple[str, str], tuple[int, str]]) -> list[str]:
    """What the user saw appear or change during the interaction."""
    seen: list[Message] = harness.seen_by(ALICE)
    return [m.text for m in seen if before.get((m.channel, m.ts)) != (m.revision, m.text)]


def run(
    flow: Flow, harness: SlackHarness, act: Any, faults: Injector, *, fail_at: int | None, fault: str
) -> Run:
    audit = AuditLines()
    logger = logging.getLogger("opsbot.audit")
    level = logger.level
    logger.setLevel(logging.INFO)
    logger.addHandler(audit)
    before_state = flow.observe(harness)
    seen = _snapshot(harness)
    faults.arm(fail_at=fail_at, fault=fault)
    try:
        act(harness)
    finally:
        faults.disarm()
        logger.removeHandler(audit)
        logger.setLevel(level)
    return Run(
        before_state,
        flow.observe(harness),
        audit.records,
        _told(harness, seen),
        str(faults.injected or ""),
        list(faults.calls),
    )


def violations(flow: Flow, clean: Run, faulted: Run, retried: Run) -> list[str]:
    found: list[str] = []
    outcome = clean.audits[0]["outcome"]
    if len(faulted.audits) != 1:
        found.append(f"{len(faulted.audits)} audit records: {[a.get('outcome') for a in faulted.audits]}")
    else:
        got = faulted.audits[0]["outcome"]
        if faulted.after == clean.after and got != outcome:
            found.append(f"the change was made but the audit says {got!r} (a clean run says {outcome!r})")
        if faulted.after == faulted.before and got == outcome:
            found.append(f"nothing changed but the audit says {got!r}")
    words = [t for t in faulted.told if t.strip() and not t.lstrip().startswith(("⏳", ":hourglass"))]
    if not words:
        found.append(f"the user was told nothing but {faulted.told!r}")
    elif any("Something went wrong" in t or "Traceback" in t for t in words):
        found.append(f"the user was not told in a sentence: {words[-1][:200]!r}")
    refused = (
        retried.after == faulted.after
        and all(a.get("outcome") != outcome for a in retried.audits)
        and any(t.strip() and "Something went wrong" not in t for t in retried.told)
    )
    if retried.after != clean.after and not refused:
        found.append(
            f"a retry left {retried.after!r} where a clean run leaves {clean.after!r}; the user was told "
            f"{[t[:160] for t in faulted.told]!r}, then {[t[:160] for t in retried.told]!r}"
        )
    return found


# One test per flow and fault, not per flow: the cases of one flow took up to 25 s in a row, one xdist
# worker's tail while the other waited. Each repeats the flow's clean run, a few percent more work.
# The whole matrix builds a fresh world (moto, the local Slack, the flow's data) per case: `make test-slow`
# runs it (CI runs both), the developer loop leaves it out.
pytestmark = pytest.mark.slow


@pytest.mark.parametrize("kind", list(FAULTS))
@pytest.mark.parametrize("flow", FLOWS, ids=[f.name for f in FLOWS])
def test_every_aws_call_of_a_mutating_flow_may_fail(flow: Flow, kind: str) -> None:
    with injector() as faults:
        with world(flow) as harness:
            act = flow.setup(harness)
            clean = run(flow, harness, act, faults, fail_at=None, fault="")
        assert clean.after != clean.before, f"{flow.name}: a clean run changed nothing"
        assert len(clean.audits) == 1, clean.audits
        assert clean.calls, f"{flow.name}: a clean run made no AWS call"
        cases = [
            (index, fault)
            for index, call in enumerate(clean.calls)
            for fault in faults_for(call)
            if fault == kind
        ]
        if not cases:
            pytest.skip(f"{flow.name} makes no AWS call that can meet {kind}")
        problems: list[str] = []
        for index, fault in cases:
            with world(flow) as harness:
                act = flow.setup(harness)
                faulted = run(flow, harness, act, faults, fail_at=index, fault=fault)
                retried = run(flow, harness, act, faults, fail_at=None, fault="")
            where = f"call {index + 1}/{len(clean.calls)} {faulted.injected or clean.calls[index]} {fault}"
            problems += [f"{where}: {v}" for v in violations(flow, clean, faulted, retried)]
    assert not problems, (
        f"{flow.name}: {len(problems)} of {len(cases)} cases broke an invariant:\n" + "\n".join(problems)
    )
