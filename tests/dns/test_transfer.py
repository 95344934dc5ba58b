from __future__ import annotations

import base64
import os
import socket
import threading
from collections.abc import Callable, Iterator

import pytest

from bot.core.dns.config import MasterAddress
from bot.core.dns.transfer import TransferError, query_serial, transfer
from bot.core.dns.tsig import TsigKey
from bot.local.dns_master import RECORDS_PER_MESSAGE, LocalMaster, free_port, zone_text
from tests.dns.conftest import BASE_RECORDS, DOMAIN


def new_key(name: str = "xfer-key.") -> TsigKey:
    return TsigKey(name, "hmac-sha256", base64.b64encode(os.urandom(32)).decode())


def test_soa_query_and_transfer(start_master: Callable[..., LocalMaster]) -> None:
    master = start_master(zone_text(DOMAIN, 42, BASE_RECORDS))
    assert query_serial(master.address, DOMAIN, timeout=5) == 42
    zone, stats = transfer(master.address, DOMAIN, timeout=5)
    assert zone.serial == 42
    assert stats.records == len(BASE_RECORDS) + 3  # SOA, NS and ns1's address besides ours
    keys = {record.key for record in zone.records}
    assert ("*.example.com.", "A") in keys and ("alias.example.com.", "CNAME") in keys
    www = next(r for r in zone.records if r.key == ("www.example.com.", "A"))
    assert www.values == ("10.0.0.1", "10.0.0.2") and www.ttl == 300
    assert master.counters.soa_queries == 1 and master.counters.transfers == 1


def test_large_zones_arrive_in_many_messages(start_master: Callable[..., LocalMaster]) -> None:
    records = [f"h{n} 60 IN A 10.{n // 65536}.{n // 256 % 256}.{n % 256}" for n in range(3000)]
    master = start_master(zone_text(DOMAIN, 1, records))
    zone, stats = transfer(master.address, DOMAIN, timeout=5)
    assert len(zone.records) == 3001
    assert stats.messages >= 3000 // RECORDS_PER_MESSAGE


def test_tsig(start_master: Callable[..., LocalMaster]) -> None:
    key = new_key()
    master = start_master(zone_text(DOMAIN, 7, BASE_RECORDS), key=key)
    records = [f"h{n} 60 IN A 10.0.{n // 256}.{n % 256}" for n in range(1000)]
    master.set_zone_text(zone_text(DOMAIN, 7, records))  # several signed messages
    zone, stats = transfer(master.address, DOMAIN, timeout=5, key=key)
    assert len(zone.records) == 1001 and stats.messages > 1
    assert query_serial(master.address, DOMAIN, timeout=5, key=key) == 7

    with pytest.raises(TransferError, match=r"refused the transfer.*REFUSED.*TSIG key"):
        transfer(master.address, DOMAIN, timeout=5)
    with pytest.raises(TransferError, match=r"NOTAUTH") as wrong:
        transfer(master.address, DOMAIN, timeout=5, key=new_key())
    assert key.secret not in str(wrong.value)
    with pytest.raises(TransferError, match=r"did not accept the TSIG key other"):
        query_serial(master.address, DOMAIN, timeout=5, key=new_key("other."))


def test_a_zone_the_master_does_not_serve(start_master: Callable[..., LocalMaster]) -> None:
    master = start_master(zone_text(DOMAIN, 1, []))
    with pytest.raises(TransferError, match=r"REFUSED for the SOA of other.org"):
        query_serial(master.address, "other.org.", timeout=5)
    with pytest.raises(TransferError, match=r"refused the transfer of other.org"):
        transfer(master.address, "other.org.", timeout=5)


def test_nothing_listening() -> None:
    address = MasterAddress("127.0.0.1", free_port())
    with pytest.raises(TransferError, match=r"refused the TCP connection"):
        query_serial(address, DOMAIN, timeout=2)
    with pytest.raises(TransferError, match=r"refused the TCP connection"):
        transfer(address, DOMAIN, timeout=2)


@pytest.fixture
def silent_server() -> Iterator[MasterAddress]:
    """Accepts TCP connections and never answers (a firewall that drops, a hung master)."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield MasterAddress("127.0.0.1", server.getsockname()[1])
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    server.close()


def test_timeouts_are_explained(silent_server: MasterAddress) -> None:
    with pytest.raises(TransferError, match=r"did not answer for example.com within 0.3 s"):
        query_serial(silent_server, DOMAIN, timeout=0.3)
    with pytest.raises(TransferError, match=r"did not answer"):
        transfer(silent_server, DOMAIN, timeout=0.3)


def test_unresolvable_host() -> None:
    with pytest.raises(TransferError, match=r"Cannot resolve the master"):
        query_serial(MasterAddress("master.invalid"), DOMAIN, timeout=2)
