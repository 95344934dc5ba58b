"""TSIG keys for the zone transfer: the formats we read, and where they come from.

A key is read from a file or from Secrets Manager, in any of these forms:
- BIND / ``tsig-keygen``: ``key "name" { algorithm hmac-sha256; secret "base64"; };``
- NSD: ``key:`` then ``name: "name"``, ``algorithm: hmac-sha256``, ``secret: "base64"`` lines
- JSON: ``{"name": "...", "algorithm": "hmac-sha256", "secret": "base64"}``

The secret never appears in a message, a log line or a repr; errors name the source, not its content.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from bot.errors import ConfigError

ALGORITHMS = frozenset(
    {
        "hmac-md5",
        "hmac-sha1",
        "hmac-sha224",
        "hmac-sha256",
        "hmac-sha256-128",
        "hmac-sha384",
        "hmac-sha384-192",
        "hmac-sha512",
        "hmac-sha512-256",
    }
)
_BIND = re.compile(
    r'key\s+"?(?P<name>[^"\s{]+)"?\s*\{(?P<body>[^}]*)\}',
    re.IGNORECASE | re.DOTALL,
)
_BIND_FIELD = re.compile(r'(?P<key>algorithm|secret)\s+"?(?P<value>[^";\s]+)"?\s*;', re.IGNORECASE)
_NSD_FIELD = re.compile(
    r'^\s*(?P<key>name|algorithm|secret)\s*:\s*"?(?P<value>[^"#\s]+)"?', re.IGNORECASE | re.MULTILINE
)
_NSD_KEY = re.compile(r"^key:[ \t]*$", re.MULTILINE)
_NSD_CLAUSE = re.compile(r"^[a-z-]+:[ \t]*$", re.MULTILINE)  # the next clause header (zone:, server:…)
_KEY_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,253}$")


@dataclass(frozen=True)
class TsigKey:
    name: str  # absolute, e.g. "transfer-key."
    algorithm: str  # e.g. "hmac-sha256"
    secret: str = field(repr=False)  # base64

    def keyring(self) -> dict[object, object]:
        """The keyring dnspython wants (``{Name: Key}``)."""
        import dns.name
        import dns.tsig

        name = dns.name.from_text(self.name)
        return {name: dns.tsig.Key(name, self.secret, self.algorithm)}


def parse_key(text: str, *, source: str) -> TsigKey:
    """Key text in one of the supported formats -> TsigKey; ConfigError naming ``source`` otherwise."""
    stripped = text.strip()
    name = algorithm = secret = ""
    if stripped.startswith("{"):
        try:
            data = json.loads(stripped)
        except ValueError:
            raise ConfigError(f"The TSIG key in {source} is not valid JSON.") from None
        if not isinstance(data, dict):
            raise ConfigError(f"The TSIG key in {source} must be a JSON object with name, algorithm, secret.")
        name, algorithm, secret = (str(data.get(k) or "") for k in ("name", "algorithm", "secret"))
    elif (match := _BIND.search(stripped)) is not None:
        name = match.group("name")
        for found in _BIND_FIELD.finditer(match.group("body")):
            if found.group("key").lower() == "algorithm":
                algorithm = found.group("value")
            else:
                secret = found.group("value")
    else:
        for found in _NSD_FIELD.finditer(_nsd_key_clause(stripped)):
            key = found.group("key").lower()
            if key == "name":
                name = found.group("value")
            elif key == "algorithm":
                algorithm = found.group("value")
            else:
                secret = found.group("value")
    if not name or not secret:
        raise ConfigError(
            f"No TSIG key found in {source}; expected a BIND/tsig-keygen 'key \"name\" {{ ... }};' block, "
            "an NSD key: clause, or JSON with name, algorithm and secret."
        )
    algorithm = (algorithm or "hmac-sha256").lower().rstrip(".")
    if algorithm not in ALGORITHMS:
        raise ConfigError(f"The TSIG key in {source} uses the unknown algorithm {algorithm!r}.")
    if not _KEY_NAME.match(name.rstrip(".") or "-"):
        raise ConfigError(f"The TSIG key name in {source} is not a valid DNS name.")
    try:
        if not base64.b64decode(secret, validate=True):
            raise ValueError("empty")
    except (binascii.Error, ValueError):
        raise ConfigError(f"The TSIG secret in {source} is not valid base64.") from None
    return TsigKey(name.rstrip(".").lower() + ".", algorithm, secret)


def _nsd_key_clause(text: str) -> str:
    """The options of the first ``key:`` clause of an nsd.conf (a zone clause has ``name:`` too), or the
    whole text when it is only the options."""
    header = _NSD_KEY.search(text)
    if header is None:
        return text
    rest = text[header.end() :]
    following = _NSD_CLAUSE.search(rest)
    return rest[: following.start()] if following else rest


def load_key(source: str) -> TsigKey | None:
    """Read the key from ``file:PATH``, ``secretsmanager:NAME`` or a Secrets Manager ARN ("" -> None)."""
    if not source:
        return None
    if source.startswith("file:"):
        path = Path(source[len("file:") :]).expanduser()
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as error:
            raise ConfigError(f"Cannot read the TSIG key file {path}: {error.strerror or error}.") from None
        return parse_key(text, source=f"the file {path}")
    secret_id = source[len("secretsmanager:") :] if source.startswith("secretsmanager:") else source
    from bot.aws.dns_secrets import secret_string

    return parse_key(secret_string(secret_id), source=f"the secret {secret_id}")
