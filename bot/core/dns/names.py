"""Domain names in one canonical form, and Route 53's own escaping.

Canonical form: lowercase, absolute (trailing dot), in dnspython's presentation format (``\\DDD`` decimal
escapes, RFC 1035). Route 53 writes names differently: every character other than ``a-z 0-9 - _`` comes
back from ListResourceRecordSets as a backslash and three *octal* digits, so the wildcard ``*`` reads
``\\052`` (in RFC 1035's decimal that would be the character ``4``). The original mirror fed Route 53's
names to dnspython unchanged and so mistook every escaped wildcard for another name.
"""

from __future__ import annotations

import re

import dns.exception
import dns.name

from bot.errors import UsageError, echo

# Characters Route 53 returns as they are; everything else comes back as \ooo (octal).
_ROUTE53_PLAIN = frozenset(b"abcdefghijklmnopqrstuvwxyz0123456789-_")
_OCTAL = frozenset("01234567")


def canonical(name: dns.name.Name) -> str:
    """A dnspython name -> canonical text (lowercase, absolute)."""
    if not name.is_absolute():
        raise ValueError(f"name {name} is not absolute")
    # to_text() is ASCII (other bytes come out as \DDD) and escapes no letters, so lowercasing the text
    # equals canonicalize().to_text() at a fraction of the cost (it matters for 50,000-record zones).
    return name.to_text().lower()


def parse_domain(text: str) -> str:
    """A zone name as a person types it (``Example.COM``, ``example.com.``) -> ``example.com.``."""
    cleaned = text.strip()
    if not cleaned or cleaned == ".":
        raise UsageError("A domain name is needed, e.g. example.com.")
    if any(char.isspace() for char in cleaned):
        raise UsageError(f"The domain {echo(cleaned)} contains spaces.")
    try:
        cleaned.encode("ascii")
    except UnicodeEncodeError:
        raise UsageError(
            f"The domain {echo(cleaned)} is not ASCII; give its IDNA form (xn--...) instead."
        ) from None
    try:
        name = dns.name.from_text(cleaned, origin=dns.name.root)
    except dns.exception.DNSException as error:
        raise UsageError(f"{echo(cleaned)} is not a valid domain name ({error}).") from None
    return canonical(name)


def display(name: str) -> str:
    """``example.com.`` -> ``example.com`` for messages."""
    return name[:-1] if name.endswith(".") and name != "." else name


def from_text(text: str) -> dns.name.Name:
    """Canonical (or any RFC 1035) presentation text -> dnspython name; UsageError when invalid."""
    try:
        return dns.name.from_text(text, origin=dns.name.root)
    except dns.exception.DNSException as error:
        raise UsageError(f"{echo(text)} is not a valid domain name ({error}).") from None


def is_within(name: str, origin: str) -> bool:
    """Whether canonical ``name`` is ``origin`` or below it (both canonical)."""
    if origin == ".":
        return True
    return name == origin or name.endswith("." + origin)


def read_escape(text: str, index: int, what: str) -> tuple[bytes, int]:
    """The escape that starts at ``text[index]`` (a backslash) -> (the byte it stands for, next index).

    Route 53's convention: ``\\ooo`` is three *octal* digits; a backslash before anything but a digit
    stands for that character. Shared by names and TXT values; UsageError naming ``what`` otherwise.
    """
    escape = text[index + 1 : index + 4]
    if len(escape) == 3 and all(c in _OCTAL for c in escape):
        value = int(escape, 8)
        if value > 255:
            raise UsageError(f"{what} has an escape \\{escape} above \\377.")
        return bytes([value]), index + 4
    if index + 1 >= len(text):
        raise UsageError(f"{what} ends with a lone backslash.")
    if text[index + 1].isdigit():
        raise UsageError(f"{what} has an escape that is not three octal digits.")
    return text[index + 1].encode("utf-8", "surrogatepass"), index + 2


def decode_route53(text: str) -> dns.name.Name:
    """A name as Route 53 writes it (octal escapes, trailing dot optional) -> dnspython name.

    Raises UsageError for anything that is not a valid name; nothing else.
    """
    if not isinstance(text, str):
        raise UsageError("A Route 53 record name must be text.")
    if text in ("", "."):
        return dns.name.root
    what = f"The name {echo(text)}"
    labels: list[bytes] = []
    label = bytearray()
    index = 0
    while index < len(text):
        char = text[index]
        if char == "\\":
            byte, index = read_escape(text, index, what)
            label.extend(byte)
            continue
        if char == ".":
            if not label:
                raise UsageError(f"{what} has an empty label.")
            labels.append(bytes(label))
            label = bytearray()
            index += 1
            continue
        label.extend(char.encode("utf-8", "surrogatepass"))
        index += 1
    if label:
        labels.append(bytes(label))
    try:
        return dns.name.Name([*labels, b""])
    except dns.exception.DNSException as error:
        raise UsageError(f"{what} is not valid ({error}).") from None


# Names made only of letters, digits, hyphens and underscores (a leading "*" label allowed) read the same
# in Route 53's escaping and in canonical form: no parsing needed.
_PLAIN_NAME = re.compile(r"^(?:\*\.)?(?:[a-z0-9_-]{1,63}\.)*[a-z0-9_-]{1,63}\.?$")
# A name's presentation text with its trailing dot is one character shorter than its 255-octet wire form.
_MAX_TEXT = 254


def _plain(text: str) -> str | None:
    """``text`` made absolute when it is a plain name of valid length (the same in both spellings)."""
    if not _PLAIN_NAME.match(text):
        return None
    absolute = text if text.endswith(".") else text + "."
    return absolute if len(absolute) <= _MAX_TEXT else None


def route53_to_canonical(text: str) -> str:
    """A name as Route 53 lists it -> canonical text; UsageError when it is not a valid name."""
    plain = _plain(text) if isinstance(text, str) else None
    return plain if plain is not None else canonical(decode_route53(text))


def encode_route53_name(name: dns.name.Name) -> str:
    """A dnspython name -> the form we send to Route 53 (octal escapes; a leading ``*`` stays a wildcard)."""
    parts: list[str] = []
    for position, label in enumerate(name.labels):
        if not label:
            continue
        if position == 0 and label == b"*":
            parts.append("*")
            continue
        parts.append(
            "".join(chr(byte) if byte in _ROUTE53_PLAIN else f"\\{byte:03o}" for byte in label.lower())
        )
    return ".".join(parts) + "."


def encode_route53(name: str) -> str:
    """Canonical name text -> the form we send to Route 53."""
    plain = _plain(name)
    return plain if plain is not None else encode_route53_name(from_text(name))


def sort_key(name: str) -> tuple[str, ...]:
    """Order names by their labels from the right, so a zone reads parent before children."""
    return tuple(reversed(name.rstrip(".").split(".")))
