from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.core.dns.records import ROUTE53_TYPES, canonical_rdata, parse_route53_value, txt_strings, txt_value
from bot.errors import UsageError


def master(rtype: str, text: str, origin: str = "example.com.") -> str:
    """The canonical value of a record as the master would send it."""
    import dns.name

    zone = dns.name.from_text(origin)
    return canonical_rdata(dns.rdata.from_text("IN", rtype, text, origin=zone, relativize=False))


@pytest.mark.parametrize(
    ("rtype", "route53", "zone_file"),
    [
        # In-zone targets: relative on the master, absolute (with or without the dot) in Route 53.
        ("CNAME", "www.example.com", "www"),
        ("CNAME", "WWW.Example.com.", "www"),
        ("MX", "10 mail.example.com", "10 mail"),
        ("MX", "010 Mail.Example.Com.", "10 mail"),
        ("SRV", "10 60 5060 sip.example.com.", "10 60 5060 sip"),
        ("NS", "ns1.lab.example.com", "ns1.lab"),
        ("PTR", "host.example.com.", "host"),
        ("AAAA", "2001:DB8:0:0:0:0:0:1", "2001:db8::1"),
        ("A", "10.0.0.1", "10.0.0.1"),
        ("CAA", '0 issue "letsencrypt.org"', '0 issue "letsencrypt.org"'),
        ("TXT", '"v=spf1 -all"', '"v=spf1 -all"'),
        ("TXT", '"a" "b c"', '"a" "b c"'),
        ("TXT", "unquoted words", "unquoted words"),
        ("TXT", '"say \\"hi\\""', '"say \\"hi\\""'),
        ("TXT", '"ex\\303\\244mple"', '"ex\\195\\164mple"'),  # Route 53 octal vs zone-file decimal
        ("SPF", '"v=spf1 -all"', '"v=spf1 -all"'),
    ],
)
def test_both_sides_normalise_to_the_same_value(rtype: str, route53: str, zone_file: str) -> None:
    assert parse_route53_value(rtype, route53) == master(rtype, zone_file)


def test_targets_outside_the_zone_stay_as_they_are() -> None:
    assert parse_route53_value("CNAME", "target.example.net") == "target.example.net."
    assert master("CNAME", "target.example.net.") == "target.example.net."


def test_txt_strings_keep_their_boundaries() -> None:
    assert txt_strings('"a" "b"') == [b"a", b"b"]
    assert txt_strings('"ab"') == [b"ab"]
    assert parse_route53_value("TXT", '"a" "b"') != parse_route53_value("TXT", '"ab"')


def test_long_txt_strings_are_cut_into_255_byte_chunks() -> None:
    long = "x" * 600
    value = parse_route53_value("TXT", f'"{long}"')
    assert value == '"' + "x" * 255 + '" "' + "x" * 255 + '" "' + "x" * 90 + '"'
    # What the master sends for the same data split the same way is the same value.
    assert master("TXT", value.replace("\\", "\\\\")) == value


def test_txt_escapes_are_octal_on_output() -> None:
    assert txt_value([b'q"b\\\x00\xff ']) == '"q\\"b\\\\\\000\\377 "'
    assert txt_strings(txt_value([b'q"b\\\x00\xff '])) == [b'q"b\\\x00\xff ']


def test_empty_txt() -> None:
    assert parse_route53_value("TXT", '""') == '""'
    assert txt_value([b""]) == '""'


@pytest.mark.parametrize(
    ("rtype", "value"),
    [
        ("A", "10.0.0.256"),
        ("A", "not an address"),
        ("AAAA", "fe80::1%eth0"),
        ("AAAA", "10.0.0.1"),
        ("CNAME", "two names"),
        ("MX", "mail.example.com"),
        ("MX", "70000 mail.example.com"),
        ("SRV", "1 2 port target"),
        ("TXT", '"unterminated'),
        ("TXT", '"bad \\'),
        ("TXT", '"\\400"'),
        ("TXT", '"\\9"'),  # escapes are three octal digits, as in names
        ("CAA", "nonsense"),
        ("HINFO", '"a" "b"'),
        ("A", ""),
    ],
)
def test_bad_values_raise_usage_errors(rtype: str, value: str) -> None:
    with pytest.raises(UsageError):
        parse_route53_value(rtype, value)


@given(st.sampled_from(sorted(ROUTE53_TYPES | {"HINFO", "X"})), st.text(max_size=60))
def test_value_parsing_raises_only_usage_errors(rtype: str, value: str) -> None:
    with contextlib.suppress(UsageError):
        parse_route53_value(rtype, value)


@given(st.lists(st.binary(max_size=300), min_size=1, max_size=4))
def test_txt_round_trip(strings: list[bytes]) -> None:
    value = txt_value(strings)
    chunks = [s[i : i + 255] for s in strings for i in range(0, max(len(s), 1), 255)]
    assert txt_strings(value) == chunks
    assert parse_route53_value("TXT", value) == value
