"""A small authoritative DNS master in-process: SOA queries and AXFR over TCP on 127.0.0.1.

Unit tests, the demo and the benchmark transfer from it; the integration tests and the benchmark also run
Debian's ``nsd`` on loopback (``nsd_master``). It serves one zone, answers ordinary queries from it too (so ``dig`` works against it),
optionally requires a TSIG key (signing every message of a multi-message transfer, RFC 8945), and counts
the SOA queries and transfers it served, which is how tests see that an unchanged zone costs one query.
"""

from __future__ import annotations

import os
import shutil
import socket
import socketserver
import struct
import subprocess
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import dns.tsig
import dns.zone

from bot.core.dns.config import MasterAddress
from bot.core.dns.names import parse_domain
from bot.core.dns.records import zone_rrsets
from bot.core.dns.transfer import TransferError, query_serial
from bot.core.dns.tsig import TsigKey
from bot.local.serving import shutdown_now

# Resource records per transfer message: small enough that no message nears 64 KiB, large enough that
# a 50,000-record zone needs few round trips' worth of framing.
RECORDS_PER_MESSAGE = 200


@dataclass
class Counters:
    soa_queries: int = 0
    transfers: int = 0
    refused: int = 0
    queries: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, name: str) -> None:
        with self.lock:
            setattr(self, name, getattr(self, name) + 1)


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    master: LocalMaster


class _Handler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        master = self.server.master  # type: ignore[attr-defined]
        sock: socket.socket = self.request
        sock.settimeout(30)
        try:
            while True:
                header = _read_exactly(sock, 2)
                if header is None:
                    return
                (length,) = struct.unpack("!H", header)
                wire = _read_exactly(sock, length)
                if wire is None:
                    return
                for reply in master.answer(wire):
                    sock.sendall(struct.pack("!H", len(reply)) + reply)
        except OSError:
            return


def _read_exactly(sock: socket.socket, count: int) -> bytes | None:
    data = bytearray()
    while len(data) < count:
        chunk = sock.recv(count - len(data))
        if not chunk:
            return None
        data.extend(chunk)
    return bytes(data)


class LocalMaster:
    """``with LocalMaster(zone_text, "example.com.") as master: master.address`` -> 127.0.0.1:port."""

    def __init__(
        self,
        zone_text: str,
        origin: str,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        key: TsigKey | None = None,
    ) -> None:
        self.origin = dns.name.from_text(origin)
        self.key = key
        self._keyring: dict[dns.name.Name, Any] | None = (
            {dns.name.from_text(key.name): dns.tsig.Key(key.name, key.secret, key.algorithm)} if key else None
        )
        self.counters = Counters()
        self._lock = threading.Lock()
        self._zone: dns.zone.Zone
        self._rrsets: list[dns.rrset.RRset]
        self.set_zone_text(zone_text)
        self._server = _Server((host, port), _Handler, bind_and_activate=True)
        self._server.master = self
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------------
    @property
    def address(self) -> MasterAddress:
        host, port = self._server.server_address[:2]
        return MasterAddress(str(host), int(port))

    def start(self) -> LocalMaster:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._server.serve_forever,
                kwargs={"poll_interval": 0.1},
                name="dns-master",
                daemon=True,
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            shutdown_now(self._server)
            self._thread.join(timeout=5)
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> LocalMaster:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    # -- content -----------------------------------------------------------------------------------
    def set_zone_text(self, text: str) -> None:
        zone = dns.zone.from_text(text, origin=self.origin, relativize=False, check_origin=True)
        rrsets = zone_rrsets(zone)
        # AXFR starts with the SOA; the rest in the zone's order.
        rrsets.sort(key=lambda r: r.rdtype != dns.rdatatype.SOA or r.name != self.origin)
        with self._lock:
            self._zone, self._rrsets = zone, rrsets

    @property
    def serial(self) -> int:
        with self._lock:
            soa = self._zone.get_rdataset(self.origin, dns.rdatatype.SOA)
        assert soa is not None
        return int(soa[0].serial)

    # -- protocol ----------------------------------------------------------------------------------
    def answer(self, wire: bytes) -> Iterable[bytes]:
        self.counters.add("queries")
        try:
            query = dns.message.from_wire(wire, keyring=self._keyring if self._keyring else None)
        except (
            dns.message.UnknownTSIGKey,
            dns.tsig.BadSignature,
            dns.tsig.BadKey,
            dns.tsig.BadTime,
            dns.tsig.BadAlgorithm,
        ):
            # RFC 8945 5.3.2: a failed TSIG check is answered NOTAUTH, unsigned.
            self.counters.add("refused")
            try:
                unsigned = dns.message.from_wire(wire, keyring=False)
                unsigned.keyring = None
                yield _render(unsigned, rcode=dns.rcode.NOTAUTH)[0]
            except dns.exception.DNSException:
                yield _bare_reply(wire, dns.rcode.NOTAUTH)
            return
        except dns.exception.DNSException:
            yield _bare_reply(wire, dns.rcode.FORMERR)
            return
        if not query.question:
            yield _bare_reply(wire, dns.rcode.FORMERR)
            return
        question = query.question[0]
        with self._lock:
            zone, rrsets = self._zone, self._rrsets
        if question.rdtype == dns.rdatatype.AXFR:
            if self.key is not None and not query.had_tsig:
                self.counters.add("refused")
                yield self._reply(query, rcode=dns.rcode.REFUSED)
                return
            if question.name != self.origin:
                yield self._reply(query, rcode=dns.rcode.NOTAUTH)
                return
            self.counters.add("transfers")
            yield from self._transfer(query, rrsets)
            return
        if question.rdtype == dns.rdatatype.SOA and question.name == self.origin:
            self.counters.add("soa_queries")
        if not question.name.is_subdomain(self.origin):
            yield self._reply(query, rcode=dns.rcode.REFUSED)
            return
        node = zone.get_node(question.name)
        if node is None:
            yield self._reply(query, rcode=dns.rcode.NXDOMAIN, aa=True)
            return
        rdataset = node.get_rdataset(dns.rdataclass.IN, question.rdtype)
        answer = []
        if rdataset is not None:
            rrset = dns.rrset.RRset(question.name, dns.rdataclass.IN, question.rdtype)
            rrset.update(rdataset)
            answer.append(rrset)
        yield self._reply(query, answer=answer, aa=True)

    def _reply(
        self,
        query: dns.message.Message,
        *,
        answer: list[dns.rrset.RRset] | None = None,
        rcode: dns.rcode.Rcode = dns.rcode.NOERROR,
        aa: bool = False,
    ) -> bytes:
        return _render(query, answer=answer, rcode=rcode, aa=aa)[0]

    def _transfer(self, query: dns.message.Message, rrsets: list[dns.rrset.RRset]) -> Iterable[bytes]:
        """The zone in messages of about RECORDS_PER_MESSAGE records, SOA first and last (RFC 5936)."""
        soa = rrsets[0]
        sequence = [*rrsets, soa]
        batch: list[dns.rrset.RRset] = []
        count = 0
        ctx: Any = None
        signed = query.had_tsig
        for rrset in sequence:
            batch.append(rrset)
            count += len(rrset)
            if count >= RECORDS_PER_MESSAGE:
                wire, ctx = _render(query, answer=batch, aa=True, multi=signed, tsig_ctx=ctx)
                yield wire
                batch, count = [], 0
        if batch:
            yield _render(query, answer=batch, aa=True, multi=signed, tsig_ctx=ctx)[0]


def _render(
    query: dns.message.Message,
    *,
    answer: list[dns.rrset.RRset] | None = None,
    rcode: dns.rcode.Rcode = dns.rcode.NOERROR,
    aa: bool = False,
    multi: bool = False,
    tsig_ctx: Any = None,
) -> tuple[bytes, Any]:
    """A response to ``query`` in wire format, and the TSIG context that signs the next message."""
    response = dns.message.make_response(query)
    response.set_rcode(rcode)
    if aa:
        response.flags |= dns.flags.AA
    response.answer = list(answer or [])
    wire = response.to_wire(multi=multi, tsig_ctx=tsig_ctx)
    return wire, response.tsig_ctx


def _bare_reply(wire: bytes, rcode: dns.rcode.Rcode) -> bytes:
    """A reply to a query we could not parse (or whose TSIG failed): its id, QR set, the rcode."""
    query_id = wire[:2] if len(wire) >= 2 else b"\x00\x00"
    flags = 0x8000 | (int(rcode) & 0xF)
    return query_id + struct.pack("!HHHHH", flags, 0, 0, 0, 0)


def zone_text(origin: str, serial: int, records: Iterable[str], *, ttl: int = 3600) -> str:
    """A zone file: SOA and NS at the apex, then ``records`` (zone-file lines, relative or absolute)."""
    origin = origin if origin.endswith(".") else origin + "."
    head = [
        f"$ORIGIN {origin}",
        f"$TTL {ttl}",
        f"@ IN SOA ns1.{origin} hostmaster.{origin} {serial} 7200 900 1209600 300",
        f"@ IN NS ns1.{origin}",
        "ns1 IN A 127.0.0.1",
    ]
    return "\n".join([*head, *records]) + "\n"


# -- Debian's nsd ------------------------------------------------------------------------------------


def nsd_binary() -> str | None:
    """Where nsd is installed (Debian puts it in /usr/sbin, often not on a user's PATH), or None."""
    return shutil.which("nsd") or ("/usr/sbin/nsd" if os.path.exists("/usr/sbin/nsd") else None)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def nsd_master(
    workdir: Path, zones: Mapping[str, str], *, key: TsigKey | None = None, timeout: float = 15.0
) -> Iterator[MasterAddress]:
    """nsd in the foreground on 127.0.0.1 and a free port, as the current user, all files in ``workdir``.

    ``zones`` maps zone names to zone-file text; with ``key``, transfers require that TSIG key. Raises
    FileNotFoundError without nsd, RuntimeError when it does not serve the first zone within ``timeout``.
    """
    binary = nsd_binary()
    if binary is None:
        raise FileNotFoundError("nsd is not installed (apt-get install nsd)")
    port = free_port()
    allow = f"127.0.0.1 {key.name}" if key else "127.0.0.1 NOKEY"
    clauses = []
    for name, text in zones.items():
        filename = f"{name.rstrip('.')}.zone"
        (workdir / filename).write_text(text)
        clauses.append(f"zone:\n  name: {name}\n  zonefile: {filename}\n  provide-xfr: {allow}\n")
    if key:
        clauses.insert(
            0, f'key:\n  name: "{key.name}"\n  algorithm: {key.algorithm}\n  secret: "{key.secret}"\n'
        )
    server = "".join(
        f"  {option}\n"
        for option in (
            f"ip-address: 127.0.0.1@{port}",
            f"port: {port}",
            'username: ""',
            'chroot: ""',
            f'zonesdir: "{workdir}"',
            f'pidfile: "{workdir}/nsd.pid"',
            'database: ""',
            f'zonelistfile: "{workdir}/zone.list"',
            f'xfrdfile: "{workdir}/xfrd.state"',
            f'xfrdir: "{workdir}"',
            f'logfile: "{workdir}/nsd.log"',
            "server-count: 1",
            "do-ip6: no",
            "verbosity: 1",
        )
    )
    config = workdir / "nsd.conf"
    config.write_text("server:\n" + server + "remote-control:\n  control-enable: no\n" + "".join(clauses))
    process = subprocess.Popen(
        [binary, "-d", "-c", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=workdir
    )
    address = MasterAddress("127.0.0.1", port)
    try:
        _wait_until_serving(process, address, next(iter(zones)), key, timeout, workdir)
        yield address
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
        if process.stderr is not None:
            process.stderr.close()


def _wait_until_serving(
    process: subprocess.Popen[bytes],
    address: MasterAddress,
    zone: str,
    key: TsigKey | None,
    timeout: float,
    workdir: Path,
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log = (workdir / "nsd.log").read_text() if (workdir / "nsd.log").exists() else ""
            stderr = process.stderr.read().decode() if process.stderr else ""
            raise RuntimeError(f"nsd exited with {process.returncode}: {stderr} {log}")
        try:
            query_serial(address, parse_domain(zone), timeout=0.5, key=key)
            return
        except TransferError:
            time.sleep(0.05)
    raise RuntimeError(f"nsd did not serve {zone} on {address} within {timeout:g} s")
