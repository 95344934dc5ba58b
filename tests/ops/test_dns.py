"""The doctor's DNS checks, against local masters (in-process and NSD), moto's Route 53 and the state
table, read in this process and through the mirror function (the worker's ``doctor`` op)."""

from __future__ import annotations

import base64
import json
import os
import socket
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.aws.functions import serve_locally
from bot.config import Settings
from bot.core.dns import worker
from bot.core.dns.commands import mirror_handler
from bot.core.dns.config import MasterAddress
from bot.core.dns.tsig import TsigKey
from bot.core.ops.checks import dns as dns_checks
from bot.core.ops.doctor import Finding
from bot.local.dns_master import free_port, zone_text
from tests.dns.conftest import BASE_RECORDS, DOMAIN, ZoneEnv
from tests.dns.support import run_nsd
from tests.ops.conftest import run_area

MIRROR = "opsbot-dns-mirror"


def zones(zone_env: ZoneEnv, *, master: str | None = None, zone_id: str | None = None, tsig: str = "") -> str:
    entry = {
        "domain": "example.com",
        "master": master or str(zone_env.zone.master),
        "zone_id": zone_id or zone_env.zone.zone_id,
        "timeout": 1,
    }
    return json.dumps([entry | ({"tsig": tsig} if tsig else {})])


def settings(zones_json: str, **extra: str) -> Settings:
    return Settings(
        state_table="opsbot-state", dns_zones_json=zones_json, dns_function=extra.get("function", "")
    )


def by_check(findings: list[Finding]) -> dict[str, Finding]:
    return {f.check: f for f in findings}


@pytest.fixture
def mirror() -> Iterator[Callable[[str], None]]:
    """The mirror function in this process, with its own OPSBOT_DNS_ZONES (the master it can reach)."""

    def serve(zones_json: str) -> None:
        serve_locally(MIRROR, mirror_handler(settings(zones_json)))

    yield serve
    serve_locally(MIRROR, None)


def test_a_zone_never_synced_in_this_process(zone_env: ZoneEnv) -> None:
    found = by_check(run_area(dns_checks, settings(zones(zone_env))))
    assert found["master answers"].status == "ok" and "SOA serial 100" in found["master answers"].detail
    assert found["TSIG"].status == "skip"
    assert found["zone transfer"].status == "ok"
    assert found["hosted zone"].status == "ok" and "example.com" in found["hosted zone"].detail
    assert found["last sync"].status == "warn" and found["last sync"].detail == "never synced"
    assert zone_env.master.counters.transfers == 1  # started, and dropped after its first message


def test_through_the_mirror_function_where_only_it_reaches_the_master(
    zone_env: ZoneEnv,
    mirror: Callable[[str], None],
) -> None:
    mirror(zones(zone_env))
    closed = str(MasterAddress("127.0.0.1", free_port()))
    slack_side = settings(zones(zone_env, master=closed), function=MIRROR)
    found = by_check(run_area(dns_checks, slack_side))
    assert found["master answers"].status == "ok"
    assert f"the mirror function {MIRROR}" in found["master answers"].detail
    # and the same request answered in this process: the Slack side's own route is closed
    here = by_check(run_area(dns_checks, settings(zones(zone_env, master=closed))))
    assert here["master answers"].status == "fail"


def test_a_master_that_refuses_or_does_not_answer(zone_env: ZoneEnv) -> None:
    closed = by_check(run_area(dns_checks, settings(zones(zone_env, master=f"127.0.0.1:{free_port()}"))))
    answer = closed["master answers"]
    assert answer.status == "fail" and "refused the TCP connection" in answer.detail
    assert "DnsMasterAddress" in answer.fix and "DnsSecurityGroupIds" in answer.fix
    assert "zone transfer" not in closed
    with socket.socket() as silent:  # accepts connections (the backlog) and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        started = datetime.now(UTC)
        found = by_check(run_area(dns_checks, settings(zones(zone_env, master=f"127.0.0.1:{port}"))))
        assert (datetime.now(UTC) - started).total_seconds() < 5
    assert found["master answers"].status == "fail" and "did not answer" in found["master answers"].detail


@pytest.mark.slow  # zone transfers from a real nsd
def test_nsd_with_tsig_right_and_wrong_key_and_no_key(tmp_path: Path, zone_env: ZoneEnv) -> None:
    key = TsigKey("opsbot-xfer.", "hmac-sha256", base64.b64encode(os.urandom(32)).decode())
    good, wrong = tmp_path / "good.key", tmp_path / "wrong.key"
    good.write_text(json.dumps({"name": key.name, "algorithm": key.algorithm, "secret": key.secret}))
    wrong.write_text(
        json.dumps(
            {
                "name": key.name,
                "algorithm": key.algorithm,
                "secret": base64.b64encode(os.urandom(32)).decode(),
            }
        )
    )
    with run_nsd(tmp_path, {DOMAIN: zone_text(DOMAIN, 300, BASE_RECORDS)}, key=key) as address:
        ok = by_check(
            run_area(dns_checks, settings(zones(zone_env, master=str(address), tsig=f"file:{good}")))
        )
        assert ok["TSIG"].status == "ok" and "opsbot-xfer." in ok["TSIG"].detail
        assert ok["zone transfer"].status == "ok" and "serial 300" in ok["master answers"].detail
        bad = by_check(
            run_area(dns_checks, settings(zones(zone_env, master=str(address), tsig=f"file:{wrong}")))
        )
        assert bad["TSIG"].status == "fail" and "refused the key" in bad["TSIG"].detail
        assert bad["master answers"].status == "ok"  # it answered: with a TSIG error
        unsigned = by_check(run_area(dns_checks, settings(zones(zone_env, master=str(address)))))
        assert unsigned["zone transfer"].status == "fail" and "REFUSED" in unsigned["zone transfer"].detail
        assert "provide-xfr" in unsigned["zone transfer"].fix
        unreadable = by_check(
            run_area(dns_checks, settings(zones(zone_env, master=str(address), tsig=f"file:{tmp_path}/none")))
        )
        assert unreadable["TSIG"].status == "fail" and "cannot be read" in unreadable["TSIG"].detail
        assert unreadable["master answers"].status == "ok"


def test_hosted_zone_missing_or_for_another_domain(zone_env: ZoneEnv) -> None:
    missing = by_check(run_area(dns_checks, settings(zones(zone_env, zone_id="Z0000000NOPE"))))["hosted zone"]
    assert missing.status == "fail" and "DnsHostedZoneId" in missing.fix
    from tests.dns.support import create_hosted_zone

    other = create_hosted_zone("example.org.")
    wrong = by_check(run_area(dns_checks, settings(zones(zone_env, zone_id=other))))["hosted zone"]
    assert wrong.status == "fail" and "example.org" in wrong.detail


def test_the_last_sync_ok_failed_and_far_behind(zone_env: ZoneEnv) -> None:
    state_key = zone_env.zone.state_key
    recent = (datetime.now(UTC) - timedelta(minutes=5)).isoformat(timespec="seconds")
    zone_env.state.put_sync_state(state_key, {"serial": 100, "synced_at": recent, "status": "ok"})
    assert by_check(run_area(dns_checks, settings(zones(zone_env))))["last sync"].status == "ok"
    old = (datetime.now(UTC) - timedelta(hours=5)).isoformat(timespec="seconds")
    zone_env.state.put_sync_state(state_key, {"serial": 90, "synced_at": old, "status": "ok"})
    behind = by_check(run_area(dns_checks, settings(zones(zone_env))))["last sync"]
    assert behind.status == "warn" and "serial 100" in behind.detail and "5.0 h ago" in behind.detail
    zone_env.state.put_sync_state(
        state_key,
        {"serial": 90, "synced_at": old, "status": "failed", "failed_at": recent, "error": "batch 2 refused"},
    )
    failed = by_check(run_area(dns_checks, settings(zones(zone_env))))["last sync"]
    assert (
        failed.status == "fail"
        and "batch 2 refused" in failed.detail
        and "/dns resync example.com" in failed.fix
    )


def test_no_zone_configured_is_one_skip(aws: None) -> None:
    [finding] = run_area(dns_checks, settings(""))
    assert finding.status == "skip" and "DnsDomain" in finding.fix


def test_the_mirror_function_missing_or_of_an_older_build(
    zone_env: ZoneEnv, mirror: Callable[[str], None]
) -> None:
    [missing] = run_area(dns_checks, settings(zones(zone_env), function="no-such-mirror"))
    assert missing.status == "fail" and "DnsMirrorFunctionName" in missing.fix

    def older(event: object, context: object) -> dict[str, object]:
        request = dict(event)[worker.REQUEST_KEY]  # type: ignore[call-overload]
        assert request["op"] == "doctor"
        return {
            "ok": False,
            "stage": "prepare",
            "kind": "usage",
            "error": "A DNS request is a JSON object with op one of status, preview, apply.",
            "hint": None,
        }

    serve_locally(MIRROR, older)
    [stale] = run_area(dns_checks, settings(zones(zone_env), function=MIRROR))
    assert stale.status == "warn" and "Redeploy" in stale.fix


def test_route53_denied_warns_here_and_fails_in_the_mirror(
    zone_env: ZoneEnv,
    mirror: Callable[[str], None],
    deny: Callable[..., list[str]],
) -> None:
    deny("GetHostedZone")
    here = by_check(run_area(dns_checks, settings(zones(zone_env))))["hosted zone"]
    assert here.status == "warn" and "route53:GetHostedZone" in here.detail
    mirror(zones(zone_env))
    there = by_check(run_area(dns_checks, settings(zones(zone_env), function=MIRROR)))["hosted zone"]
    assert there.status == "fail" and "route53:GetHostedZone" in there.detail


def test_the_doctor_op_is_json_in_json_out_and_writes_nothing(zone_env: ZoneEnv) -> None:
    answer = worker.handle({"op": "doctor"}, settings(zones(zone_env)))
    assert answer["ok"] is True
    [doc] = json.loads(json.dumps(answer))["zones"]
    assert doc["serial"] == 100 and doc["soa"]["kind"] == "ok" and doc["hosted_zone"]["kind"] == "ok"
    assert zone_env.state.get_sync_state(zone_env.zone.state_key) is None
