"""Integration with a real authoritative server: Debian's nsd on 127.0.0.1, started and stopped here.

Skipped when nsd is missing, except where OPSBOT_REQUIRE_NSD=1 (CI), where a missing nsd fails.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest

from bot.core.dns.commands import mirror, prepare
from bot.core.dns.plan import make_plan, validate
from bot.core.dns.records import hosted_zone, master_zone_from_text
from bot.core.dns.transfer import TransferError, query_serial, transfer
from bot.core.dns.tsig import TsigKey, load_key
from bot.local.dns_master import zone_text
from tests.dns.conftest import BASE_RECORDS, DOMAIN, ZoneEnv
from tests.dns.support import FakeRoute53, run_nsd

pytestmark = pytest.mark.slow  # zone transfers from a real nsd


def big_zone(count: int) -> list[str]:
    """``count`` records of mixed types, as a real zone has them."""
    lines: list[str] = []
    for n in range(count):
        kind = n % 10
        if kind < 6:
            lines.append(f"host{n} 300 IN A 10.{n // 65536}.{n // 256 % 256}.{n % 256}")
        elif kind == 6:
            lines.append(f"alias{n} 300 IN CNAME host{n - 6}")
        elif kind == 7:
            lines.append(f'txt{n} 300 IN TXT "id={n}" "owner=team{n % 7}"')
        elif kind == 8:
            lines.append(f"v6-{n} 300 IN AAAA fd00::{n:x}")
        else:
            lines.append(f"_svc{n}._tcp 300 IN SRV 10 5 {1024 + n % 6000} host{n - 9}")
    return lines


def test_a_10000_record_zone_from_nsd(tmp_path: Path) -> None:
    text = zone_text(DOMAIN, 2024060101, [*BASE_RECORDS, *big_zone(10_000)])
    with run_nsd(tmp_path, {DOMAIN: text}) as address:
        assert query_serial(address, DOMAIN, timeout=5) == 2024060101
        zone, stats = transfer(address, DOMAIN, timeout=10)
    expected = master_zone_from_text(text, DOMAIN)
    assert stats.records == expected.rr_count
    assert zone.serial == 2024060101
    assert sorted(zone.records, key=lambda r: r.key) == sorted(expected.records, key=lambda r: r.key)
    # Planned into an empty hosted zone and applied to a strict model of Route 53: ten full batches.
    fake = FakeRoute53.with_defaults(DOMAIN)
    hosted = hosted_zone(DOMAIN, fake.listing())
    plan = make_plan(zone, hosted)
    assert len(plan.changes) == len(expected.records) and len(plan.batches) >= 10
    assert validate(hosted, plan.batches) == []
    for batch in plan.batches:
        fake.change(batch.to_route53("nsd test"))
    assert make_plan(zone, hosted_zone(DOMAIN, fake.listing())).empty


def test_tsig_with_nsd(tmp_path: Path, zone_env: ZoneEnv) -> None:
    key = TsigKey("opsbot-xfer.", "hmac-sha256", base64.b64encode(os.urandom(32)).decode())
    key_file = tmp_path / "opsbot.key"
    key_file.write_text(f'key "opsbot-xfer" {{\n\talgorithm hmac-sha256;\n\tsecret "{key.secret}";\n}};\n')
    with run_nsd(tmp_path, {DOMAIN: zone_text(DOMAIN, 300, BASE_RECORDS)}, key=key) as address:
        with pytest.raises(TransferError, match=r"refused the transfer"):
            transfer(address, DOMAIN, timeout=5)
        wrong = TsigKey("opsbot-xfer.", "hmac-sha256", base64.b64encode(os.urandom(32)).decode())
        with pytest.raises(TransferError):
            transfer(address, DOMAIN, timeout=5, key=wrong)
        assert load_key(f"file:{key_file}") == key
        # The whole mirror, with the key read from the file, into moto.
        zone = zone_env.zone.with_changes(master=address, tsig=f"file:{key_file}")
        result = mirror(zone, state=zone_env.state)
        assert result.status == "synced", result.message
        assert (
            result.plan is not None and len(result.plan.changes) == 9
        )  # 8 record sets of ours, ns1's address
        again = mirror(zone, state=zone_env.state)
        assert again.status == "up-to-date" and not again.transferred


def test_https_svcb_and_naptr_records_from_nsd(tmp_path: Path, zone_env: ZoneEnv) -> None:
    """A real server's HTTPS, SVCB and NAPTR records are mirrored, and the next plan is empty (once, one
    of them made the hosted zone unreadable)."""
    records = [
        *BASE_RECORDS,
        'www 300 IN HTTPS 1 . alpn="h2"',
        "svc 300 IN SVCB 1 Web.Example.com. alpn=h2,h3 port=8443",
        '@ 300 IN NAPTR 100 10 "u" "E2U+sip" "!^.*$!sip:info@example.com!" .',
        '@ 300 IN NAPTR 10 100 "S" "SIP+D2U" "" _sip._udp',
    ]
    with run_nsd(tmp_path, {DOMAIN: zone_text(DOMAIN, 300, records)}) as address:
        zone = zone_env.zone.with_changes(master=address)
        result = mirror(zone, state=zone_env.state)
        assert result.status == "synced", result.message
        assert result.plan is not None
        created = {(c.name, c.rtype): c.record.values for c in result.plan.changes}
        assert created[("www.example.com.", "HTTPS")] == ('1 . alpn="h2"',)
        assert created[("svc.example.com.", "SVCB")] == ('1 web.example.com. alpn="h2,h3" port="8443"',)
        assert len(created[("example.com.", "NAPTR")]) == 2
        second = prepare(zone, state=zone_env.state).plan
    assert second.empty, [c.summary() for c in second.changes]
    assert not [item for item in second.left_alone if item.side == "route53"]
