"""Fixtures for the doctor's area checks: moto in-process, a way to deny one AWS read, and a runner."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import ModuleType
from typing import Any

import pytest
from botocore.client import BaseClient
from botocore.exceptions import ClientError

from bot.config import Settings
from bot.core.ops.commands import DoctorContext
from bot.core.ops.doctor import Finding, run_probes
from tests.dns.conftest import start_master, zone_env  # noqa: F401 (fixtures of the dns checks' tests)
from tests.fanout.conftest import fanout  # noqa: F401 (the fan-out checks' tests)


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
def deny(monkeypatch: pytest.MonkeyPatch) -> Callable[..., list[str]]:
    """``deny("DescribeTable", ...)``: those operations fail as IAM refuses them (after botocore's
    retries, as the caller sees it); returns the list of refused calls."""
    refused: list[str] = []
    real = BaseClient._make_api_call

    def arm(*operations: str) -> list[str]:
        def make_api_call(self: Any, operation_name: str, api_params: Mapping[str, Any]) -> Any:
            if operation_name in operations:
                refused.append(operation_name)
                prefix = self.meta.service_model.signing_name
                raise ClientError(
                    {
                        "Error": {
                            "Code": "AccessDeniedException",
                            "Message": "User: arn:aws:sts::123456789012:assumed-role/opsbot/x is not "
                            f"authorized to perform: {prefix}:{operation_name}",
                        },
                        "ResponseMetadata": {"HTTPStatusCode": 400},
                    },
                    operation_name,
                )
            return real(self, operation_name, api_params)

        monkeypatch.setattr(BaseClient, "_make_api_call", make_api_call)
        return refused

    return arm
