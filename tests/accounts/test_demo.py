"""The demo's second account: prod's data is reached with --account prod through the real app."""

from __future__ import annotations

import io
import os
import re
import urllib.request
from collections.abc import Iterator

import pytest

from bot.aws import clients
from bot.local.console import Console
from bot.local.demo import DEMO_CHANNELS, DEMO_PEOPLE, LocalStack, start_local_stack

pytestmark = pytest.mark.slow  # the whole demo, seeded in process


@pytest.fixture
def demo_stack() -> Iterator[LocalStack]:
    saved = dict(os.environ)
    stack = start_local_stack(embedded_aws=True, seed=True)
    try:
        yield stack
    finally:
        reset = urllib.request.Request(f"{stack.aws.endpoint}/moto-api/reset", method="POST")
        urllib.request.urlopen(reset).close()
        stack.stop()
        os.environ.clear()
        os.environ.update(saved)
        clients.clear_caches()


def test_apilogs_and_dns_status_in_the_second_account(demo_stack: LocalStack) -> None:
    out = io.StringIO()
    console = Console(
        slack=demo_stack.slack,
        app_url=demo_stack.app_url,
        signing_secret=demo_stack.settings.slack_signing_secret,
        runner=demo_stack.runner,
        people=DEMO_PEOPLE,
        channels=dict(DEMO_CHANNELS),
        out=out,
        wait_seconds=120,
    )
    facts = demo_stack.facts
    prod_id = facts["accounts.prod_request_id"]
    own_id = facts["apilogs.request_id"]
    assert any("--account prod" in line for line in demo_stack.banner)

    def run(command: str) -> str:
        start = len(out.getvalue())
        console.handle(command)
        return out.getvalue()[start:]

    prod = run(f"/apilogs {prod_id} --account prod")
    assert "502" in prod and "Account `prod` (222222222222)" in prod, prod
    assert "Nothing found" not in prod and "NOTHING FOUND" not in prod
    # The own account's request is not in prod, and prod's is not in opsbot's own account.
    assert "NOTHING FOUND" in run(f"/apilogs {own_id} --account prod")
    assert "NOTHING FOUND" in run(f"/apilogs {prod_id}")
    # The banner's mention aimed at prod: prod's request, its answers naming prod.
    mentioned = run(f"mention --account prod what failed? {prod_id}")
    assert "KeyError" in mentioned and "Account `prod` (222222222222)" in mentioned, mentioned
    assert any(f"mention --account prod what failed? {prod_id}" in line for line in demo_stack.banner)
    errors = run("/apilogs errors --account prod --since 2h")
    assert "Account `prod` (222222222222)" in errors and "Something went wrong" not in errors, errors
    status = run("/dns status --account prod")
    assert facts["accounts.prod_zone_id"] in status and "in sync" in status, status
    own_status = run("/dns status")
    assert facts["accounts.prod_zone_id"] not in own_status and facts["dns.zone_id"] in own_status
    refused = run("/dns status --account prod --region eu-west-1")
    assert "Account `prod` is not configured for region `eu-west-1`" in refused
    # The doctor aimed at prod: its roles assumed, prod's API stage and zone read with the read role.
    doctor = run("/ops doctor --account prod --only aws,apilogs,dns")
    assert "in account prod (222222222222), us-east-1" in doctor, doctor
    # All green: prod's API Gateway account has its CloudWatch role, as opsbot's own does, and nothing is
    # refused by the member roles (skipped: Live Tail, which the demo's endpoint cannot stream, and the
    # TSIG key the demo's master does without).
    assert re.search(r"✓ Wired: \d+ ok, 2 skip in account prod", doctor), doctor
    # No Logs Insights probe in a member account: nothing runs a query there, the read role may not.
    assert "Live Tail permission" in doctor and "Logs Insights" not in doctor, doctor
    assert "ok (5): accounts, change role, identity, read role, table" in doctor, doctor
    assert re.search(r"execution\s+logging", doctor) and "could not be checked" not in doctor, doctor
    assert "hosted zone" in doctor and "last sync" in doctor, doctor
    assert demo_stack.slack.violations == []
