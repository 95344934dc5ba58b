"""The ids an on-call engineer may paste, what kind each is, and the time some of them encode.

- REST API request id (``x-amzn-RequestId``): a UUID version 1, which encodes the request time in
  100 ns steps since 1582-10-15, so the search window can be minutes instead of an hour.
- Lambda request id (``context.aws_request_id``): a UUID of another version (4 today).
- Extended request id (``x-amz-apigw-id``) of a REST API, or the ``apigw-requestid`` of an HTTP API:
  sixteen base64 characters ending in ``=`` (``Vwc2MGFUrPEFV_g=``).
- X-Ray trace id ``1-5c7674f4-a3491d0a9c8012c191821b83``: the first group is the epoch second.

Parsing accepts what people copy (a header line, quotes, upper case) and raises only UsageError.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from bot.errors import UsageError, echo

# 100 ns intervals between the Gregorian epoch (1582-10-15) and the Unix epoch.
_GREGORIAN_OFFSET = 0x01B21DD213814000

_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_SHORT_ID = re.compile(r"[A-Za-z0-9_+/-]{11,23}=")
_XRAY = re.compile(r"1-[0-9a-fA-F]{8}-[0-9a-fA-F]{24}")
# What people paste around the id: "x-amzn-RequestId: ...", "apigw-requestid=...", quotes, Root=...
_HEADER_PREFIX = re.compile(
    r"^(?:x-amzn-requestid|x-amz-apigw-id|apigw-requestid|x-amzn-trace-id|request ?id|root)\s*[:=]\s*",
    re.IGNORECASE,
)

# Request ids only make sense within this span; a UUID v1 whose time falls outside it is not a request
# time (some generators fill the time field with random bits) and the default window is used instead.
_EARLIEST_REQUEST = datetime(2015, 7, 1, tzinfo=UTC)

EXAMPLES = (
    "a REST API request id (9439989f-7543-11e6-8dda-150c09a55dc2), an extended or HTTP API request id "
    "(Vwc2MGFUrPEFV_g=), a Lambda request id or an X-Ray trace id (1-5c7674f4-a3491d0a9c8012c191821b83)"
)


class IdKind(StrEnum):
    API_REQUEST = "api-request"  # REST API request id (UUID v1)
    LAMBDA_REQUEST = "lambda-request"  # UUID of another version
    EXTENDED = "extended"  # REST extended request id or HTTP API request id
    XRAY = "xray"

    @property
    def label(self) -> str:
        return {
            IdKind.API_REQUEST: "API Gateway request id",
            IdKind.LAMBDA_REQUEST: "Lambda request id",
            IdKind.EXTENDED: "extended / HTTP API request id",
            IdKind.XRAY: "X-Ray trace id",
        }[self]


@dataclass(frozen=True)
class RequestId:
    value: str
    kind: IdKind
    # The request time the id encodes, when it encodes one.
    time: datetime | None = None

    def to_json(self) -> dict[str, object]:
        return {
            "value": self.value,
            "kind": self.kind.value,
            "time": self.time.isoformat() if self.time else None,
        }


def uuid1_time(value: str) -> datetime:
    """The time a version 1 UUID encodes (ms precision, UTC)."""
    parsed = uuid.UUID(value)
    if parsed.version != 1:
        raise ValueError(f"{value} is not a version 1 UUID")
    ticks = parsed.time - _GREGORIAN_OFFSET
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=ticks // 10)


def xray_time(value: str) -> datetime:
    return datetime.fromtimestamp(int(value.split("-")[1], 16), UTC)


def _plausible(moment: datetime, now: datetime) -> bool:
    return _EARLIEST_REQUEST <= moment <= now + timedelta(days=1)


def parse_request_id(text: str, *, now: datetime | None = None) -> RequestId:
    """Classify what the user pasted; UsageError (with examples) for anything that is not an id."""
    now = now or datetime.now(UTC)
    cleaned = text.strip().strip("`'\"<>[](){}, ").strip()
    cleaned = _HEADER_PREFIX.sub("", cleaned).strip().strip("`'\"")
    if not cleaned:
        raise UsageError(f"Give the id of the request: {EXAMPLES}.")
    if len(cleaned) > 80:
        raise UsageError(f"That is too long for a request id; expected {EXAMPLES}.")
    if _UUID.fullmatch(cleaned):
        value = cleaned.lower()
        parsed = uuid.UUID(value)
        if parsed.version == 1:
            moment = uuid1_time(value)
            return RequestId(value, IdKind.API_REQUEST, moment if _plausible(moment, now) else None)
        return RequestId(value, IdKind.LAMBDA_REQUEST)
    if _XRAY.fullmatch(cleaned):
        value = cleaned.lower()
        moment = xray_time(value)
        return RequestId(value, IdKind.XRAY, moment if _plausible(moment, now) else None)
    if _SHORT_ID.fullmatch(cleaned):
        return RequestId(cleaned, IdKind.EXTENDED)
    raise UsageError(f"{_shown(cleaned)} is not a request id; expected {EXAMPLES}.")


def _shown(text: str) -> str:
    return echo(text, 60)


# -- ids in free text --------------------------------------------------------------------------------
# A message someone shares with opsbot (a customer's pasted error, an alert from another tool, a stack
# trace) holds ids among other words. Each candidate must stand alone (no letter or digit glued to it)
# and is then classified by ``parse_request_id``, so only ids the lookup accepts come out.

# The most ids one message is looked up for: each is a lookup of its own (CloudWatch calls, a message).
MAX_IDS_IN_TEXT = 5
# More text than a Slack message holds (40,000 characters) is not read further.
MAX_TEXT_SCANNED = 100_000

_IN_TEXT = re.compile(
    r"(?<![0-9A-Za-z])(?P<uuid>[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})"
    r"(?![0-9A-Za-z])"
    r"|(?<![0-9A-Za-z-])(?P<xray>1-[0-9a-fA-F]{8}-[0-9a-fA-F]{24})(?![0-9A-Za-z])"
    # Extended and HTTP API request ids are 11 bytes in base64: 15 characters and one "=".
    r"|(?<![A-Za-z0-9_+/-])(?P<short>[A-Za-z0-9_+/-]{15}=)(?![A-Za-z0-9_+/=-])"
)
# The 15th character of 11 bytes in base64 carries 4 bits and two zero bits: one of these 16.
_LAST_OF_11_BYTES = frozenset("AEIMQUYcgkosw048")
# A label right before a short id says what it is, even when it happens to look like a word.
_SHORT_ID_LABEL = re.compile(
    r"(?:apigw-id|apigw-requestid|extended ?request ?id|request ?id)[\"'`]?\s*[:=]?\s*[\"'`]?$",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class IdsInText:
    """The request ids a text holds: ``ids`` to look up (deduplicated, in the order they appear, at most
    the limit), ``left_out`` the further distinct ids (values), not looked up."""

    ids: tuple[RequestId, ...]
    left_out: tuple[str, ...] = ()

    @property
    def total(self) -> int:
        return len(self.ids) + len(self.left_out)


def _short_id_plausible(value: str, before: str) -> bool:
    """Whether a 16-character ``...=`` word is an extended / HTTP API id rather than ``someWordsHere=``:
    the padding must be what base64 of 11 bytes gives, and random bytes give both cases (a real id lacks
    one of them about once in a thousand), unless a label right before it says what it is."""
    if value[14] not in _LAST_OF_11_BYTES:
        return False
    if _SHORT_ID_LABEL.search(before):
        return True
    body = value[:-1]
    return any(c.isupper() for c in body) and any(c.islower() for c in body)


def find_request_ids(text: str, *, limit: int = MAX_IDS_IN_TEXT, now: datetime | None = None) -> IdsInText:
    """Every request id of every kind the lookup knows in ``text`` (REST UUID, extended, HTTP API, Lambda,
    X-Ray): deduplicated, in order of appearance, the first ``limit`` classified. Pure; never raises."""
    now = now or datetime.now(UTC)
    found: list[RequestId] = []
    more: list[str] = []
    seen: set[str] = set()
    scanned = text[:MAX_TEXT_SCANNED]
    for match in _IN_TEXT.finditer(scanned):
        value = match.group(0)
        before = scanned[max(0, match.start() - 40) : match.start()]
        if match.group("short") is not None and not _short_id_plausible(value, before):
            continue
        key = value if match.group("short") is not None else value.lower()
        if key in seen:
            continue
        seen.add(key)
        if len(found) >= limit:
            more.append(key)
            continue
        try:
            found.append(parse_request_id(value, now=now))
        except (UsageError, ValueError):  # every candidate's shape is one the classifier accepts
            seen.discard(key)
    return IdsInText(tuple(found), tuple(more))
