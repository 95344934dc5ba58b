"""The doctor's frame: parallel probes under one deadline, errors as findings, failing checks first."""

from __future__ import annotations

import threading
import time

from bot.aws.clients import default_region, region_override
from bot.core.ops.doctor import Finding, Probe, run_probes
from bot.errors import AwsError


def ok(area: str, check: str) -> Probe:
    return Probe(area, check, "t", lambda: [Finding(area, check, "t", "ok", "fine")])


def test_findings_are_ordered_fail_warn_ok_skip_and_counted() -> None:
    probes = [
        ok("aws", "identity"),
        Probe("mail", "identity", "a.org", lambda: [Finding("mail", "identity", "a.org", "skip", "n/a")]),
        Probe("dns", "master", "z", lambda: [Finding("dns", "master", "z", "fail", "down", "start it")]),
        Probe("slack", "scopes", "T", lambda: [Finding("slack", "scopes", "T", "warn", "partial", "add")]),
    ]
    report = run_probes(probes, timeout=5)
    assert [f.status for f in report.ordered()] == ["fail", "warn", "ok", "skip"]
    assert report.summary() == {"ok": 1, "warn": 1, "fail": 1, "skip": 1}
    assert report.failed
    assert [area for area, _ in report.by_area()] == ["dns", "slack", "aws", "mail"]
    document = report.to_json()
    assert set(document) >= {"checks", "summary"}
    assert set(document["checks"][0]) == {"area", "check", "target", "status", "detail", "fix"}


def test_a_probe_that_hangs_is_cut_short_and_the_others_stand() -> None:
    release = threading.Event()

    def hang() -> list[Finding]:
        release.wait(30)
        return [Finding("dns", "master", "z", "ok", "late")]

    probes = [Probe("dns", "master", "z", hang), ok("aws", "identity"), ok("slack", "token")]
    started = time.monotonic()
    try:
        report = run_probes(probes, timeout=0.5)
    finally:
        release.set()
    assert time.monotonic() - started < 5
    assert report.cut_short == ["dns: master (z)"]
    statuses = {(f.area, f.status) for f in report.findings}
    assert statuses == {("dns", "warn"), ("aws", "ok"), ("slack", "ok")}
    assert "cut short" in next(f.detail for f in report.findings if f.area == "dns")
    assert not report.failed


def test_a_probe_that_raises_is_one_warning_with_the_sentence() -> None:
    def refused() -> list[Finding]:
        raise AwsError("opsbot's role may not call apigateway:GetAccount.", hint="Grant apigateway:GET.")

    def broken() -> list[Finding]:
        raise KeyError("Table")

    report = run_probes(
        [
            Probe("apilogs", "CloudWatch role", "acct", refused),
            Probe("mail", "x", "y", broken),
            ok("aws", "id"),
        ],
        timeout=5,
    )
    by_area = {f.area: f for f in report.findings}
    assert by_area["apilogs"].status == "warn"
    assert (
        by_area["apilogs"].detail == "could not be checked: opsbot's role may not call apigateway:GetAccount."
    )
    assert by_area["apilogs"].fix == "Grant apigateway:GET."
    assert by_area["mail"].status == "warn" and "KeyError" in by_area["mail"].detail
    assert by_area["aws"].status == "ok"


def test_the_region_override_holds_inside_the_probes_threads() -> None:
    seen: list[str] = []

    def where() -> list[Finding]:
        seen.append(default_region())
        return []

    with region_override("eu-west-3"):
        run_probes([Probe("aws", "r", "t", where), Probe("aws", "r2", "t", where)], timeout=5)
    assert seen == ["eu-west-3", "eu-west-3"]
    assert default_region() == "us-east-1"


def test_no_probes_is_an_empty_report() -> None:
    report = run_probes([], timeout=1)
    assert report.findings == [] and report.summary() == {"ok": 0, "warn": 0, "fail": 0, "skip": 0}


def test_a_stuck_probe_does_not_keep_the_cli_process_alive() -> None:
    """The interpreter joins a ThreadPoolExecutor's workers at exit; the doctor's threads are daemons, so
    `opsbot doctor` exits as soon as it has answered."""
    import subprocess
    import sys

    code = (
        "import time\n"
        "from bot.core.ops.doctor import Probe, run_probes\n"
        "report = run_probes([Probe('aws', 'hang', 'x', lambda: (time.sleep(30), [])[1])], timeout=0.5)\n"
        "print(report.cut_short)\n"
    )
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert "aws: hang (x)" in done.stdout
    assert time.monotonic() - started < 15
