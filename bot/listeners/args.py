"""Parse the text of a slash command: quoted arguments, ``--flags``, ``help``.

Pure and small on purpose: it runs in the ack path. Slack delivers text with ``&amp; &lt; &gt;`` escaped,
URLs and e-mail addresses wrapped as ``<mailto:a@b.c|a@b.c>`` or ``<http://x.y|x.y>``, and phones turn
straight quotes into curly ones; all of that is undone here. Every problem raises ``UsageError`` whose
message says what was expected; nothing else is ever raised.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from bot.errors import ECHO_COUNT, ECHO_LIMIT, UsageError, echo, echo_all

_QUOTES = str.maketrans({"“": '"', "”": '"', "„": '"', "‘": "'", "’": "'", "‚": "'"})
_SLACK_LINK = re.compile(r"<([^<>|]*)(?:\|([^<>]*))?>")
_FLAG_NAME = re.compile(r"^[a-z][a-z0-9-]*$")
HELP_WORDS = {"help", "--help", "-h", "-?"}
# Messages quote at most this much of one argument, and at most this many arguments: the whole message
# must fit in Slack's 4000 characters, and a pasted log line would otherwise crowd out the explanation.
QUOTE_LIMIT = ECHO_LIMIT
QUOTE_COUNT = ECHO_COUNT


def shortened(token: str, limit: int = QUOTE_LIMIT) -> str:
    return token if len(token) <= limit else token[: max(1, limit - 1)] + "…"


def quoted(token: str, limit: int = QUOTE_LIMIT) -> str:
    """``token`` as a message repeats it: shortened to ``limit`` characters, in a code span (``echo``)."""
    return echo(token, limit)


def quoted_list(tokens: Sequence[str]) -> str:
    return echo_all(tokens)


def _unlink(match: re.Match[str]) -> str:
    target, label = match.group(1), match.group(2)
    if label is None and ":" not in target and not target.startswith(("@", "#", "!")):
        # Not Slack's markup (a link has a scheme, a mention a sigil): text typed in angle brackets, as
        # in ``Jane Doe <jane@example.com>`` (where Slack itself sends the brackets escaped).
        return match.group(0)
    if target.startswith("mailto:"):
        return target[len("mailto:") :]
    if target.startswith(("@", "#", "!")):
        # User, channel and group mentions keep their id (labels are display names that can change).
        return f"<{target}>"
    if label:
        return label
    return target


def clean_text(text: str) -> str:
    text = _SLACK_LINK.sub(_unlink, text)
    text = text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    return text.translate(_QUOTES).replace("\u00a0", " ")


# Dashes that phones and Macs make of a typed "--" (smart punctuation): en and em dashes, and the like.
AUTOCORRECTED_DASHES = "\u2012\u2013\u2014\u2015\u2212"


def dashed_flag(token: str) -> str:
    """The option ``token`` was meant to be when autocorrect turned its ``--`` into a dash (``—account``,
    ``–region=eu-west-1``): its name, lowercased; "" for any other token."""
    if not token or token[0] not in AUTOCORRECTED_DASHES:
        return ""
    name = token.lstrip(AUTOCORRECTED_DASHES + "-").partition("=")[0].lower()
    return name if _FLAG_NAME.match(name) else ""


def dashed_flag_error(token: str, name: str, example: str = "") -> UsageError:
    """The refusal of an option typed with a dash: the command could otherwise run with the text taken as
    an argument (and ``—account prod`` in the default account)."""
    value = f" {example}" if example else ""
    return UsageError(
        f"{echo(token)} starts with a dash (—), not with the two hyphens of `--{name}`: autocorrect may have "
        f"joined them. Type `--{name}{value}` (or turn off smart punctuation)."
    )


def tokenize(text: str) -> list[str]:
    """Split like a shell: whitespace separates, quotes group, backslash escapes inside double quotes."""
    tokens: list[str] = []
    current: list[str] = []
    in_token = False
    quote = ""
    chars = iter(clean_text(text))
    for char in chars:
        if quote:
            if char == quote:
                quote = ""
            elif char == "\\" and quote == '"':
                nxt = next(chars, "")
                current.append(nxt if nxt in {'"', "\\"} else "\\" + nxt)
            else:
                current.append(char)
        elif char in {'"', "'"}:
            quote = char
            in_token = True
        elif char.isspace():
            if in_token:
                tokens.append("".join(current))
                current, in_token = [], False
        else:
            current.append(char)
            in_token = True
    if quote:
        raise UsageError(f"A {quote} quote is not closed.")
    if in_token:
        tokens.append("".join(current))
    return tokens


@dataclass(frozen=True)
class Flag:
    name: str  # without dashes: "since"
    help: str = ""
    kind: str = "str"  # str | int | bool | choice | time (a value of several words: --since 2h ago)
    choices: tuple[str, ...] = ()
    default: Any = None
    metavar: str = ""
    secret: bool = False
    minimum: int | None = None
    maximum: int | None = None

    def usage(self) -> str:
        if self.kind == "bool":
            return f"[--{self.name}]"
        meta = self.metavar or ("|".join(self.choices) if self.choices else self.name.upper())
        return f"[--{self.name} {meta}]"


@dataclass(frozen=True)
class Positional:
    name: str  # "serial"
    help: str = ""
    optional: bool = False
    many: bool = False  # takes the rest (at least one unless optional)
    secret: bool = False
    # Takes the rest as one value, like ``many``, but names one thing: a pasted
    # ``Jane Doe <jane@example.com>`` is one address (the usage shows no "...").
    words: bool = False

    def usage(self) -> str:
        text = f"<{self.name}>" + ("..." if self.many and not self.words else "")
        return f"[{text}]" if self.optional else text


@dataclass(frozen=True)
class ArgSpec:
    positionals: tuple[Positional, ...] = ()
    flags: tuple[Flag, ...] = ()

    def usage(self) -> str:
        return " ".join([p.usage() for p in self.positionals] + [f.usage() for f in self.flags])

    def secret_names(self) -> frozenset[str]:
        return frozenset(p.name for p in self.positionals if p.secret) | frozenset(
            f.name for f in self.flags if f.secret
        )

    def has_secret_positionals(self) -> bool:
        """Whether a secret may arrive in any position: a forgotten, swapped or extra argument moves it, so
        with such a spec no message repeats a positional or an unknown option, and the audit masks them."""
        return any(p.secret for p in self.positionals)


@dataclass(frozen=True)
class ParsedArgs:
    values: Mapping[str, Any] = field(default_factory=dict)  # positional and flag values by name
    extra: tuple[str, ...] = ()  # positionals of a "many" argument
    tokens: tuple[str, ...] = ()

    def __getitem__(self, name: str) -> Any:
        return self.values[name]

    def get(self, name: str, default: Any = None) -> Any:
        value = self.values.get(name)
        return default if value is None else value


def _convert(flag: Flag, raw: str) -> Any:
    typed = "" if flag.secret else f", not {quoted(raw)}"
    if flag.kind == "int":
        try:
            value = int(raw)
        except ValueError:
            raise UsageError(f"--{flag.name} takes a whole number{typed}.") from None
        if flag.minimum is not None and value < flag.minimum:
            raise UsageError(f"--{flag.name} must be at least {flag.minimum}.")
        if flag.maximum is not None and value > flag.maximum:
            raise UsageError(f"--{flag.name} must be at most {flag.maximum}.")
        return value
    if flag.kind == "choice":
        lowered = raw.lower()
        if lowered not in flag.choices:
            raise UsageError(f"--{flag.name} takes one of {', '.join(flag.choices)}{typed}.")
        return lowered
    if not raw:
        raise UsageError(f"--{flag.name} needs a value.")
    return raw


def _time_words_joined(tokens: Sequence[str], spec: ArgSpec) -> Sequence[str]:
    """The words of each unquoted value of a ``time`` flag in one token (``--since``, ``2h ago``)."""
    names = {f.name for f in spec.flags if f.kind == "time"}
    if not names:
        return tokens
    from bot.core.common.timewords import join_time_values

    return join_time_values(tokens, names)


def parse(tokens: Sequence[str], spec: ArgSpec) -> ParsedArgs:
    """Match tokens against a spec: ``--name value``, ``--name=value``, ``--bool-flag``, positionals."""
    typed, tokens = tokens, _time_words_joined(tokens, spec)
    flags = {f.name: f for f in spec.flags}
    values: dict[str, Any] = {f.name: f.default for f in spec.flags}
    secret_anywhere = spec.has_secret_positionals()
    positionals: list[str] = []
    index = 0
    only_positionals = False
    while index < len(tokens):
        token = tokens[index]
        index += 1
        if token == "--" and not only_positionals:
            only_positionals = True
            continue
        if token.startswith("--") and len(token) > 2 and not only_positionals:
            name, eq, inline = token[2:].partition("=")
            name = name.lower()
            flag = flags.get(name)
            if flag is None or not _FLAG_NAME.match(name):
                known = ", ".join(f"--{n}" for n in flags) or "none"
                if secret_anywhere:  # it may be a secret that happens to start with --
                    raise UsageError(
                        f"An argument starts with -- but is not an option. Options here: {known}."
                    )
                raise UsageError(f"Unknown option {echo('--' + name)}. Options here: {known}.")
            if flag.kind == "bool":
                if eq:
                    if inline.lower() not in {"true", "false", "yes", "no", "1", "0"}:
                        raise UsageError(f"--{name} is a switch; use --{name} or --{name}=false.")
                    values[name] = inline.lower() in {"true", "yes", "1"}
                else:
                    values[name] = True
                continue
            if not eq:
                if index >= len(tokens):
                    raise UsageError(f"--{name} needs a value.")
                inline = tokens[index]
                index += 1
            values[name] = _convert(flag, inline)
            continue
        if not only_positionals and not secret_anywhere and (dashed := dashed_flag(token)) in flags:
            raise dashed_flag_error(token, dashed)
        positionals.append(token)

    extra: tuple[str, ...] = ()
    remaining = list(positionals)
    for position in spec.positionals:
        if position.many or position.words:
            if not remaining and not position.optional:
                raise UsageError(f"Missing <{position.name}>.")
            extra = tuple(remaining)
            values[position.name] = " ".join(remaining) if remaining else None
            remaining = []
            break
        if remaining:
            values[position.name] = remaining.pop(0)
        elif position.optional:
            values[position.name] = None
        else:
            raise UsageError(f"Missing <{position.name}>.")
    if remaining:
        if secret_anywhere:  # an extra argument may be the secret, typed once more or out of place
            raise UsageError(f"Too many arguments: at most {len(spec.positionals)} ({spec.usage()}).")
        raise UsageError(f"Unexpected {quoted_list(remaining)}.")
    return ParsedArgs(values=values, extra=extra, tokens=tuple(typed))


def redacted_text(tokens: Sequence[str], spec: ArgSpec) -> str:
    """The arguments as typed, with secret positionals and flag values replaced (for the audit record).

    With secret positionals, positions beyond the spec and unknown options are masked too: they are what
    an extra or misplaced secret would be."""
    from bot.security.audit import MASK

    secret = spec.secret_names()
    if not secret:
        return " ".join(tokens)
    flags = {f.name: f for f in spec.flags}
    secret_positions = {i for i, p in enumerate(spec.positionals) if p.secret}
    secret_anywhere = spec.has_secret_positionals()
    tokens = _time_words_joined(tokens, spec)  # as ``parse`` sees them, so positions line up
    out: list[str] = []
    position = 0
    value_of: Flag | None = None  # the flag whose value the next token is
    only_positionals = False  # after "--", as in ``parse``: counting it as a position would shift them
    for token in tokens:
        if value_of is not None:
            out.append(MASK if value_of.secret else token)
            value_of = None
            continue
        if token == "--" and not only_positionals:
            only_positionals = True
            out.append(token)
            continue
        if token.startswith("--") and len(token) > 2 and not only_positionals:
            name, eq, _ = token[2:].partition("=")
            flag = flags.get(name.lower())
            if flag is not None and flag.secret and eq:
                out.append(f"--{name}={MASK}")
            elif flag is None and secret_anywhere:
                out.append(MASK)
            else:
                out.append(token)
            if flag is not None and flag.kind != "bool" and not eq:
                value_of = flag
            continue
        beyond = position >= len(spec.positionals) and secret_anywhere
        out.append(MASK if position in secret_positions or beyond else token)
        position += 1
    return " ".join(out)
