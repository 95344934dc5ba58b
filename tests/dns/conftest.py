"""Fixtures for the DNS mirror: local masters, and a zone wired up to moto and the state table."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from bot.aws.state import StateTable
from bot.core.dns.config import ZoneConfig
from bot.core.dns.tsig import TsigKey
from bot.local.dns_master import LocalMaster, zone_text
from tests.dns.support import create_hosted_zone

DOMAIN = "example.com."
BASE_RECORDS = [
    "www 300 IN A 10.0.0.1",
    "www 300 IN A 10.0.0.2",
    "mail 300 IN A 10.0.0.25",
    "@ 300 IN MX 10 mail",
    "alias 300 IN CNAME www",
    "_sip._tcp 300 IN SRV 10 60 5060 sip",
    "sip 300 IN A 10.0.0.5",
    '@ 300 IN TXT "v=spf1 -all"',
    "* 300 IN A 10.0.0.99",
]


@pytest.fixture
def start_master() -> Iterator[Callable[..., LocalMaster]]:
    started: list[LocalMaster] = []

    def start(text: str, origin: str = DOMAIN, *, key: TsigKey | None = None) -> LocalMaster:
        master = LocalMaster(text, origin, key=key).start()
        started.append(master)
        return master

    yield start
    for master in started:
        master.stop()


@dataclass
class ZoneEnv:
    master: LocalMaster
    zone: ZoneConfig
    state: StateTable

    def set_records(self, serial: int, records: list[str]) -> None:
        self.master.set_zone_text(zone_text(DOMAIN, serial, records))


@pytest.fixture
def zone_env(state_table: str, start_master: Callable[..., LocalMaster]) -> ZoneEnv:
    """example.com on a local master (serial 100) and an empty moto hosted zone, with a state table."""
    master = start_master(zone_text(DOMAIN, 100, BASE_RECORDS))
    zone_id = create_hosted_zone(DOMAIN)
    zone = ZoneConfig(domain=DOMAIN, master=master.address, zone_id=zone_id, timeout=5)
    return ZoneEnv(master, zone, StateTable(state_table))
