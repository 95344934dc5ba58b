"""Fixtures for the doctor's area checks: moto in-process, a way to deny one AWS read, and a runner."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from types import ModuleType

import pytest

from bot.config import Settings
from bot.core.ops.commands import DoctorContext
from bot.core.ops.doctor import Finding, run_probes
from tests.dns.conftest import start_master, zone_env  # noqa: F401 (fixtures of the dns checks' tests)
from tests.fanout.conftest import fanout  # noqa: F401 (the fan-out checks' tests)
from tests.ops.denial import denied


def settings_with(**env: str) -> Settings:
    return Settings.from_env({"AWS_REGION": "us-east-1", **env})


def run_area(module: ModuleType, settings: Settings) -> list[Finding]:
    """The area's probes through the doctor's frame (parallel, one deadline), findings in report order."""
    report = run_probes(module.probes(DoctorContext(settings, "us-east-1")), timeout=30)
    assert report.cut_short == []
    return report.ordered()


def only(findings: list[Finding], check: str) -> Finding:
    [found] = [f for f in findings if f.check == check]
    return found


@pytest.fixture
def deny() -> Iterator[Callable[..., list[str]]]:
    """``deny("DescribeTable", ...)``: those operations fail as IAM refuses them (after botocore's
    retries, as the caller sees it) until the test ends; returns the list of refused calls."""
    with ExitStack() as stack:
        yield lambda *operations: stack.enter_context(denied(*operations))
