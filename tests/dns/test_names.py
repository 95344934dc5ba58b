from __future__ import annotations

import contextlib

import dns.name
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.core.dns import names
from bot.errors import UsageError


@pytest.mark.parametrize(
    ("route53", "canonical"),
    [
        ("\\052.example.com.", "*.example.com."),  # AWS's escaped wildcard
        ("*.example.com.", "*.example.com."),  # moto returns it unescaped
        ("WWW.Example.COM", "www.example.com."),  # no trailing dot, capitals
        ("a\\040b.example.com.", "a\\032b.example.com."),  # octal 040 is a space (decimal 032)
        ("x\\056y.example.com.", "x\\.y.example.com."),  # an escaped dot stays inside the label
        ("_sip._tcp.example.com.", "_sip._tcp.example.com."),
        ("\\303\\244.example.com.", "\\195\\164.example.com."),  # UTF-8 bytes of "ä", octal -> bytes
        (".", "."),
    ],
)
def test_route53_names_decode_octal_escapes(route53: str, canonical: str) -> None:
    assert names.route53_to_canonical(route53) == canonical


def test_the_originals_mistake_is_not_repeated() -> None:
    # Read as RFC 1035 (decimal), \052 would be the digit "4": a different name.
    assert dns.name.from_text("\\052.example.com.").to_text() == "4.example.com."
    assert names.route53_to_canonical("\\052.example.com.") != "4.example.com."


@pytest.mark.parametrize(
    "bad",
    ["a..b.", "a\\", "a\\09x.example.", "a\\400.example.", "x" * 64 + ".example.com.", ("a" * 60 + ".") * 5],
)
def test_invalid_route53_names_raise_usage_errors(bad: str) -> None:
    with pytest.raises(UsageError):
        names.decode_route53(bad)


def test_a_plain_name_one_octet_too_long_is_refused() -> None:
    longest = ".".join(["a" * 63] * 3 + ["a" * 61])  # 253 characters: 255 octets on the wire
    assert names.route53_to_canonical(longest) == longest + "."
    assert names.encode_route53(longest) == longest + "."
    with pytest.raises(UsageError):
        names.route53_to_canonical("a" + longest)
    with pytest.raises(UsageError):
        names.encode_route53("a" + longest)


@pytest.mark.parametrize(
    ("canonical", "wire"),
    [
        ("*.example.com.", "*.example.com."),
        ("a.*.example.com.", "a.\\052.example.com."),
        ("a\\032b.example.com.", "a\\040b.example.com."),
        ("x\\.y.example.com.", "x\\056y.example.com."),
    ],
)
def test_encoding_for_route53(canonical: str, wire: str) -> None:
    assert names.encode_route53(canonical) == wire
    assert names.route53_to_canonical(wire) == canonical


def test_parse_domain() -> None:
    assert names.parse_domain(" Corp.Example.COM ") == "corp.example.com."
    assert names.parse_domain("example.com.") == "example.com."
    for bad in ("", ".", "a b.com", "exämple.com", "a..b"):
        with pytest.raises(UsageError):
            names.parse_domain(bad)


labels = st.binary(min_size=1, max_size=20)


@given(st.lists(labels, min_size=1, max_size=5))
def test_encode_then_decode_is_identity(parts: list[bytes]) -> None:
    name = dns.name.Name([*parts, b""])
    canonical = names.canonical(name)
    assert names.route53_to_canonical(names.encode_route53(canonical)) == canonical


@given(st.text(max_size=80))
def test_decoding_raises_only_usage_errors(text: str) -> None:
    with contextlib.suppress(UsageError):
        names.route53_to_canonical(text)


@given(st.text(max_size=80))
def test_parse_domain_raises_only_usage_errors(text: str) -> None:
    with contextlib.suppress(UsageError):
        assert names.parse_domain(text).endswith(".")
