"""CloudWatch Logs filter patterns, evaluated on our side.

A tail's ``--filter`` is sent to CloudWatch as typed, and every event that comes back is checked
again here, because moto (and so our demo and tests) implements only single quoted terms and returns
everything for other patterns. Supported, with CloudWatch's semantics:

- terms and ``"quoted phrases"`` (all must occur; case-sensitive), ``?a ?b`` (any), ``-term`` (none);
- ``%regex%`` terms;
- JSON patterns ``{ $.level = "ERROR" && ($.latency > 100 || $.code != 200) }`` with ``=``, ``!=``,
  ``<``, ``<=``, ``>``, ``>=``, ``*`` wildcards in string values, ``IS NULL``, ``IS TRUE``,
  ``IS FALSE``, ``NOT EXISTS`` and ``EXISTS``.

Space-delimited patterns (``[ip, user, ...]``) are passed to CloudWatch but not re-checked
(``exact=False``): for those we trust the service. Malformed input raises UsageError and nothing else.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bot.errors import UsageError, echo

MAX_PATTERN = 1024
_TOKEN = re.compile(r'\s*(?:"((?:[^"\\]|\\.)*)"|(\S+))')


@dataclass(frozen=True)
class Matcher:
    pattern: str
    test: Callable[[str], bool]
    exact: bool = True  # False: we cannot evaluate this pattern; trust the service's result

    def __call__(self, message: str) -> bool:
        return self.test(message)


def _always(_: str) -> bool:
    return True


def compile_pattern(text: str) -> Matcher:
    """A matcher for a filter pattern; UsageError (never anything else) when it is malformed."""
    pattern = text.strip()
    if len(pattern) > MAX_PATTERN:
        raise UsageError(f"A filter pattern may be at most {MAX_PATTERN} characters.")
    if any(ch in pattern for ch in "\n\r\x00"):
        raise UsageError("A filter pattern must be one line.")
    if not pattern:
        return Matcher("", _always)
    if pattern.startswith("{"):
        if not pattern.endswith("}"):
            raise UsageError('A JSON filter pattern must end with `}`, e.g. { $.level = "ERROR" }.')
        try:
            condition = _JsonParser(pattern[1:-1]).parse()
        except _Unsupported:
            return Matcher(pattern, _always, exact=False)
        return Matcher(pattern, lambda message: _json_test(condition, message))
    if pattern.startswith("["):
        if not pattern.endswith("]"):
            raise UsageError("A space-delimited filter pattern must end with `]`.")
        return Matcher(pattern, _always, exact=False)
    return _text_matcher(pattern)


# -- text patterns --------------------------------------------------------------------------------


def _unescape(value: str) -> str:
    return re.sub(r"\\(.)", r"\1", value)


def _term_test(term: str, quoted: bool) -> Callable[[str], bool]:
    if not quoted and len(term) > 2 and term.startswith("%") and term.endswith("%"):
        try:
            regex = re.compile(term[1:-1])
        except re.error as error:
            raise UsageError(f"The regular expression {echo(term)} is not valid: {error}.") from None
        return lambda message: regex.search(message) is not None
    return lambda message: term in message


def _text_matcher(pattern: str) -> Matcher:
    if _unbalanced_quotes(pattern):
        raise UsageError('A filter pattern has an unclosed `"`.')
    required: list[Callable[[str], bool]] = []
    optional: list[Callable[[str], bool]] = []
    excluded: list[Callable[[str], bool]] = []
    position = 0
    while position < len(pattern):
        found = _TOKEN.match(pattern, position)
        if found is None or found.end() == position:
            break
        position = found.end()
        quoted_value, bare = found.group(1), found.group(2)
        if quoted_value is not None:
            required.append(_term_test(_unescape(quoted_value), True))
            continue
        assert bare is not None
        prefix = bare[0] if bare[0] in "?-" and len(bare) > 1 else ""
        body = bare[1:] if prefix else bare
        quoted = body.startswith('"') and body.endswith('"') and len(body) >= 2
        test = _term_test(_unescape(body[1:-1]) if quoted else body, quoted)
        {"?": optional, "-": excluded, "": required}[prefix].append(test)

    def matches(message: str) -> bool:
        if any(test(message) for test in excluded):
            return False
        if not all(test(message) for test in required):
            return False
        return not optional or any(test(message) for test in optional)

    return Matcher(pattern, matches)


def _unbalanced_quotes(pattern: str) -> bool:
    count = 0
    escaped = False
    for ch in pattern:
        if escaped:
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == '"':
            count += 1
    return count % 2 == 1


# -- JSON patterns --------------------------------------------------------------------------------


class _Unsupported(Exception):
    """Valid-looking syntax we do not evaluate (we then trust CloudWatch)."""


_JSON_TOKEN = re.compile(
    r"\s*(?:(?P<selector>\$(?:\.[A-Za-z0-9_@-]+|\[\d+\])*)"
    r"|(?P<op>&&|\|\||!=|<=|>=|=|<|>|\(|\))"
    r'|"(?P<string>(?:[^"\\]|\\.)*)"'
    r"|(?P<word>[^\s()=!<>&|\"]+))"
)

Condition = tuple[Any, ...]


class _JsonParser:
    def __init__(self, body: str) -> None:
        self.tokens: list[tuple[str, str]] = []
        position = 0
        body = body.strip()
        while position < len(body):
            found = _JSON_TOKEN.match(body, position)
            if found is None or found.end() == position:
                if body[position:].strip():
                    raise UsageError(
                        f"Cannot read the JSON filter pattern near `{body[position : position + 20]}`."
                    )
                break
            position = found.end()
            kind = found.lastgroup or ""
            self.tokens.append((kind, found.group(kind)))
        self.index = 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        token = self.peek()
        if token is None:
            raise UsageError("The JSON filter pattern ends too early.")
        self.index += 1
        return token

    def parse(self) -> Condition:
        if not self.tokens:
            raise UsageError('A JSON filter pattern needs a condition, e.g. { $.level = "ERROR" }.')
        condition = self.parse_or()
        if self.peek() is not None:
            raise UsageError(f"Unexpected {echo(self.peek()[1])} in the JSON filter pattern.")  # type: ignore[index]
        return condition

    def parse_or(self) -> Condition:
        left = self.parse_and()
        while self.peek() == ("op", "||"):
            self.take()
            left = ("or", left, self.parse_and())
        return left

    def parse_and(self) -> Condition:
        left = self.parse_atom()
        while self.peek() == ("op", "&&"):
            self.take()
            left = ("and", left, self.parse_atom())
        return left

    def parse_atom(self) -> Condition:
        kind, value = self.take()
        if (kind, value) == ("op", "("):
            inner = self.parse_or()
            if self.take() != ("op", ")"):
                raise UsageError("A `(` in the JSON filter pattern is not closed.")
            return inner
        if kind != "selector":
            raise UsageError(
                f"Expected a selector such as $.level in the JSON filter pattern, found {echo(value)}."
            )
        selector = value
        kind, word = self.take()
        if kind == "word" and word.upper() in {"IS", "NOT", "EXISTS"}:
            words = [word.upper()]
            while (token := self.peek()) is not None and token[0] == "word" and len(words) < 2:
                words.append(self.take()[1].upper())
            phrase = " ".join(words)
            if phrase in {"IS NULL", "IS TRUE", "IS FALSE", "NOT EXISTS", "EXISTS"}:
                return ("is", selector, phrase)
            raise UsageError(f"Unknown test {echo(phrase)} in the JSON filter pattern.")
        if kind != "op" or word not in {"=", "!=", "<", "<=", ">", ">="}:
            raise UsageError(f"Expected a comparison after {echo(selector)} in the JSON filter pattern.")
        operator = word
        value_kind, raw = self.take()
        if value_kind == "string":
            return ("cmp", selector, operator, ("string", _unescape(raw)))
        if value_kind == "word":
            if raw.startswith("%") and raw.endswith("%") and len(raw) > 2:
                raise _Unsupported
            return ("cmp", selector, operator, ("word", raw))
        raise UsageError(
            f"Expected a value after {echo(selector + ' ' + operator)} in the JSON filter pattern."
        )


_MISSING = object()


def _select(document: Any, selector: str) -> Any:
    current = document
    for part in re.findall(r"\.([A-Za-z0-9_@-]+)|\[(\d+)\]", selector):
        key, index = part
        if key:
            if not isinstance(current, dict) or key not in current:
                return _MISSING
            current = current[key]
        else:
            position = int(index)
            if not isinstance(current, list) or position >= len(current):
                return _MISSING
            current = current[position]
    return current


def _compare(actual: Any, operator: str, expected: tuple[str, str]) -> bool:
    kind, raw = expected
    if actual is _MISSING:
        return False
    numeric: float | None = None
    if kind == "word":
        try:
            numeric = float(raw)
        except ValueError:
            numeric = None
    if operator in {"<", "<=", ">", ">="}:
        if numeric is None or isinstance(actual, bool) or not isinstance(actual, int | float):
            return False
        return {
            "<": actual < numeric,
            "<=": actual <= numeric,
            ">": actual > numeric,
            ">=": actual >= numeric,
        }[operator]
    if numeric is not None and isinstance(actual, int | float) and not isinstance(actual, bool):
        equal = float(actual) == numeric
    elif kind == "word" and raw in {"true", "false"} and isinstance(actual, bool):
        equal = actual == (raw == "true")
    elif kind == "word" and raw == "null":
        equal = actual is None
    else:
        text = actual if isinstance(actual, str) else json.dumps(actual) if actual is not None else "null"
        if "*" in raw:
            regex = "^" + ".*".join(re.escape(piece) for piece in raw.split("*")) + "$"
            equal = re.match(regex, text, re.DOTALL) is not None
        else:
            equal = text == raw
    return equal if operator == "=" else not equal


def _evaluate(condition: Condition, document: Any) -> bool:
    head = condition[0]
    if head == "and":
        return _evaluate(condition[1], document) and _evaluate(condition[2], document)
    if head == "or":
        return _evaluate(condition[1], document) or _evaluate(condition[2], document)
    if head == "is":
        value = _select(document, condition[1])
        return {
            "IS NULL": value is None,
            "IS TRUE": value is True,
            "IS FALSE": value is False,
            "NOT EXISTS": value is _MISSING,
            "EXISTS": value is not _MISSING,
        }[condition[2]]
    return _compare(_select(document, condition[1]), condition[2], condition[3])


def _json_test(condition: Condition, message: str) -> bool:
    stripped = message.strip()
    if not stripped.startswith("{"):
        return False
    try:
        document = json.loads(stripped)
    except ValueError:
        return False
    return _evaluate(condition, document)
