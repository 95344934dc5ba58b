from __future__ import annotations

import contextlib

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from bot.core.dns.records import ROUTE53_TYPES, canonical_rdata, parse_route53_value, txt_strings, txt_value
from bot.errors import UsageError

HEX = "0123456789abcdef" * 4  # a SHA-256 digest's length


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
        # Names inside HTTPS, SVCB and NAPTR values: these crashed the whole zone read (the value was
        # parsed with relative names, which could not be canonicalised).
        ("HTTPS", '1 . alpn="h2"', '1 . alpn="h2"'),
        ("HTTPS", "1 Svc.Example.com alpn=h2,h3 port=8443", '1 svc alpn="h2,h3" port="8443"'),
        ("HTTPS", "0 www.example.com.", "0 www"),
        ("SVCB", "1 Svc.Example.NET. alpn=h2", '1 svc.example.net. alpn="h2"'),
        ("SVCB", "2 . ipv4hint=10.0.0.1,10.0.0.2", '2 . ipv4hint="10.0.0.1,10.0.0.2"'),
        (
            "NAPTR",
            '100 10 "u" "E2U+sip" "!^.*$!sip:info@example.com!" .',
            '100 10 "u" "E2U+sip" "!^.*$!sip:info@example.com!" .',
        ),
        ("NAPTR", '10 100 "S" "SIP+D2U" "" _SIP._udp.example.com', '10 100 "S" "SIP+D2U" "" _sip._udp'),
        ("SSHFP", f"1 1 {HEX[:40].upper()}", f"1 1 {HEX[:40]}"),
        ("SSHFP", f"4 2 {HEX}", f"4 2 {HEX.upper()}"),
        ("TLSA", f"3 1 1 {HEX.upper()}", f"3 1 1 {HEX}"),
        ("DS", f"12345 13 2 {HEX.upper()}", f"12345 13 2 {HEX}"),
        ("CAA", '128 issue "ca.example.net; account=1"', '128 issue "ca.example.net; account=1"'),
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
        ("HTTPS", "1"),
        ("HTTPS", "1 . alpn"),
        ("SVCB", "1 . nosuchkey=1"),
        ("NAPTR", '100 10 "u" "E2U+sip"'),
        ("SSHFP", "1 1 abcdef0123"),  # a SHA-1 fingerprint is 20 bytes
        ("TLSA", "3 1 1 zz"),
        ("DS", "12345 13 2 abcdef"),
        ("HINFO", '"a" "b"'),
        ("A", ""),
    ],
)
def test_bad_values_raise_usage_errors(rtype: str, value: str) -> None:
    with pytest.raises(UsageError):
        parse_route53_value(rtype, value)


@given(st.sampled_from(sorted(ROUTE53_TYPES | {"HINFO", "X"})), st.text(max_size=60))
@example("HTTPS", "1 svc alpn=h2")  # a relative target: once dns.name.NeedAbsoluteNameOrOrigin
@example("SVCB", "0 a")
@example("NAPTR", '1 1 "" "" "" x')
def test_value_parsing_raises_only_usage_errors(rtype: str, value: str) -> None:
    with contextlib.suppress(UsageError):
        parse_route53_value(rtype, value)


@given(st.lists(st.binary(max_size=300), min_size=1, max_size=4))
def test_txt_round_trip(strings: list[bytes]) -> None:
    value = txt_value(strings)
    chunks = [s[i : i + 255] for s in strings for i in range(0, max(len(s), 1), 255)]
    assert txt_strings(value) == chunks
    assert parse_route53_value("TXT", value) == value


def test_a_hosted_zone_with_https_svcb_and_naptr_records_is_read() -> None:
    """One such record used to make the whole zone unreadable (and a scheduled run over several zones
    stopped at it)."""
    from bot.core.dns.records import hosted_zone

    items = [
        {
            "Name": "www.example.com.",
            "Type": "HTTPS",
            "TTL": 300,
            "ResourceRecords": [{"Value": '1 . alpn="h2"'}],
        },
        {
            "Name": "_svc.example.com.",
            "Type": "SVCB",
            "TTL": 300,
            "ResourceRecords": [{"Value": "1 svc alpn=h2"}],
        },
        {
            "Name": "example.com.",
            "Type": "NAPTR",
            "TTL": 300,
            "ResourceRecords": [{"Value": '10 100 "S" "SIP+D2U" "" _sip._udp.example.com.'}],
        },
        {"Name": "bad.example.com.", "Type": "HTTPS", "TTL": 300, "ResourceRecords": [{"Value": "1 . alpn"}]},
    ]
    zone = hosted_zone("example.com.", items)
    assert {item.record.key: item.record.values for item in zone.records} == {
        ("www.example.com.", "HTTPS"): ('1 . alpn="h2"',),
        ("_svc.example.com.", "SVCB"): ('1 svc. alpn="h2"',),
        ("example.com.", "NAPTR"): ('10 100 "S" "SIP+D2U" "" _sip._udp.example.com.',),
    }
    (left,) = zone.left_alone
    assert (left.name, left.rtype) == ("bad.example.com.", "HTTPS") and "not understood" in left.reason
