"""A small authoritative DNS master in-process: SOA queries and AXFR over TCP on 127.0.0.1.

Unit tests, the demo and the benchmark transfer from it; the integration tests use Debian's ``nsd``
instead. It serves one zone, answers ordinary queries from it too (so ``dig`` works against it),
optionally requires a TSIG key (signing every message of a multi-message transfer, RFC 8945), and counts
the SOA queries and transfers it served, which is how tests see that an unchanged zone costs one query.
"""

from __future__ import annotations

import socket
import socketserver
import struct
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
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
from bot.core.dns.records import zone_rrsets
from bot.core.dns.tsig import TsigKey

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
            self._server.shutdown()
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
