"""Talking to the master: a cheap SOA query, and the full zone transfer (AXFR over TCP).

This is the I/O edge of the DNS mirror; it turns what the master sends into a ``MasterZone`` with the
pure converter in ``records`` and every network or protocol failure into a ``TransferError`` sentence
that says what to check (address, port, firewall, allow-transfer, TSIG key).
"""

from __future__ import annotations

import socket
from dataclasses import dataclass

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdatatype
import dns.rrset
import dns.tsig
import dns.xfr

from bot.core.dns import names
from bot.core.dns.config import MasterAddress
from bot.core.dns.records import MasterZone, master_zone
from bot.core.dns.tsig import TsigKey
from bot.errors import OpsbotError


class TransferError(OpsbotError):
    """The master could not be queried or did not hand over the zone."""


@dataclass(frozen=True)
class TransferStats:
    messages: int
    records: int


def resolve(master: MasterAddress, timeout: float) -> str:
    """The master's IP address (dnspython's query functions need an address, not a host name)."""
    try:
        socket.inet_pton(socket.AF_INET6 if ":" in master.host else socket.AF_INET, master.host)
        return master.host
    except OSError:
        pass
    previous = socket.getdefaulttimeout()
    try:
        socket.setdefaulttimeout(timeout)
        infos = socket.getaddrinfo(master.host, master.port, type=socket.SOCK_STREAM)
    except OSError as error:
        raise TransferError(
            f"Cannot resolve the master {master.host}: {error}.",
            hint="Give its IP address, or check the resolver of the network opsbot runs in.",
        ) from None
    finally:
        socket.setdefaulttimeout(previous)
    return str(infos[0][4][0])


def _explain(
    error: BaseException, master: MasterAddress, domain: str, key: TsigKey | None, timeout: float
) -> TransferError:
    where = f"{master}"
    zone = names.display(domain)
    if isinstance(error, dns.exception.Timeout | socket.timeout | TimeoutError):
        return TransferError(
            f"The master {where} did not answer for {zone} within {timeout:g} s.",
            hint=f"Check the address, that TCP port {master.port} is open from opsbot's network "
            "(security group, firewall) and that the master is running. A master reachable only inside a "
            "VPC needs the function that asks (the Slack function for /dns commands) in that VPC (docs/dns.md).",
        )
    if isinstance(error, ConnectionRefusedError):
        return TransferError(
            f"The master {where} refused the TCP connection.",
            hint=f"Nothing listens on TCP port {master.port} there, or a firewall rejects opsbot.",
        )
    if isinstance(error, dns.xfr.TransferError):
        rcode = dns.rcode.to_text(error.rcode)
        if key is None:
            hint = "Allow zone transfers (AXFR) to opsbot's addresses on the master, or configure a TSIG key."
        else:
            hint = f"Check that the master knows the TSIG key {key.name} and allows transfers with it."
        return TransferError(f"The master {where} refused the transfer of {zone} ({rcode}).", hint=hint)
    if isinstance(
        error,
        dns.tsig.PeerError
        | dns.tsig.BadSignature
        | dns.tsig.BadKey
        | dns.tsig.BadAlgorithm
        | dns.message.UnknownTSIGKey
        | dns.tsig.BadTime,
    ):
        return TransferError(
            f"TSIG verification with the master {where} failed ({type(error).__name__}).",
            hint="The key name, algorithm or secret differ from the master's, or the clocks are far apart.",
        )
    if key is not None and isinstance(error, dns.exception.FormError) and "TSIG" in str(error):
        return TransferError(
            f"The master {where} did not accept the TSIG key {key.name} ({error}).",
            hint="The key name, algorithm or secret differ from the master's.",
        )
    if isinstance(error, EOFError | ConnectionResetError | BrokenPipeError):
        return TransferError(
            f"The master {where} closed the connection during the transfer of {zone}.",
            hint="It may not allow transfers to opsbot, or it requires a TSIG key.",
        )
    if isinstance(error, dns.exception.DNSException):
        return TransferError(f"The master {where} sent an unusable answer for {zone}: {error}.")
    if isinstance(error, OSError):
        return TransferError(f"Network error talking to the master {where}: {error.strerror or error}.")
    return TransferError(f"The transfer of {zone} from {where} failed: {error}.")


def query_serial(master: MasterAddress, domain: str, *, timeout: float, key: TsigKey | None = None) -> int:
    """The master's SOA serial for ``domain`` (one query over TCP, the port the transfer uses)."""
    address = resolve(master, timeout)
    query = dns.message.make_query(dns.name.from_text(domain), dns.rdatatype.SOA)
    if key is not None:
        query.use_tsig(key.keyring(), key.name, algorithm=key.algorithm)
    try:
        response = dns.query.tcp(query, address, timeout=timeout, port=master.port)
    except Exception as error:  # every failure becomes one sentence (see _explain)
        raise _explain(error, master, domain, key, timeout) from error
    zone = names.display(domain)
    if response.rcode() != dns.rcode.NOERROR:
        raise TransferError(
            f"The master {master} answered {dns.rcode.to_text(response.rcode())} for the SOA of {zone}.",
            hint="Check that it serves this zone.",
        )
    if not response.flags & dns.flags.AA:
        raise TransferError(
            f"The master {master} is not authoritative for {zone}.",
            hint="Point opsbot at the zone's primary server.",
        )
    for rrset in response.answer:
        if rrset.rdtype == dns.rdatatype.SOA and names.canonical(rrset.name) == domain and len(rrset):
            return int(next(iter(rrset)).serial)
    raise TransferError(f"The master {master} returned no SOA record for {zone}.")


def transfer(
    master: MasterAddress, domain: str, *, timeout: float, key: TsigKey | None = None
) -> tuple[MasterZone, TransferStats]:
    """AXFR ``domain`` from the master -> MasterZone. ``timeout`` bounds each message's wait."""
    address = resolve(master, timeout)
    rrsets: list[dns.rrset.RRset] = []
    messages = 0
    keyring = key.keyring() if key is not None else None
    try:
        for message in dns.query.xfr(
            address,
            domain,
            port=master.port,
            timeout=timeout,
            lifetime=max(60.0, timeout * 30),
            keyring=keyring,  # type: ignore[arg-type]
            keyname=key.name if key else None,
            keyalgorithm=key.algorithm if key else dns.tsig.default_algorithm,
            relativize=False,
        ):
            messages += 1
            rrsets.extend(message.answer)
    except Exception as error:  # every failure becomes one sentence (see _explain)
        raise _explain(error, master, domain, key, timeout) from error
    # The transfer ends by repeating the SOA; it is not a record of its own.
    if len(rrsets) > 1 and rrsets[-1].rdtype == dns.rdatatype.SOA:
        rrsets.pop()
    zone = master_zone(domain, rrsets)
    return zone, TransferStats(messages=messages, records=zone.rr_count)
