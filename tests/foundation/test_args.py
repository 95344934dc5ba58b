from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.errors import UsageError
from bot.listeners.args import ArgSpec, Flag, Positional, parse, redacted_text, tokenize

SPEC = ArgSpec(
    positionals=(Positional("id"), Positional("rest", optional=True, many=True)),
    flags=(
        Flag("since", metavar="TIME"),
        Flag("limit", kind="int", minimum=1, maximum=100),
        Flag("activated", kind="choice", choices=("yes", "no")),
        Flag("json", kind="bool"),
        Flag("code", secret=True),
    ),
)


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        ("a b  c", ["a", "b", "c"]),
        ('say "hello world" now', ["say", "hello world", "now"]),
        ("“smart quotes” work", ["smart quotes", "work"]),
        ('"" empty', ["", "empty"]),
        (r'"a \"b\" c"', ['a "b" c']),
        ("<mailto:bob@example.com|bob@example.com>", ["bob@example.com"]),
        ("<http://example.com|example.com> x", ["example.com", "x"]),
        ("<https://example.com/a?b=1&amp;c=2>", ["https://example.com/a?b=1&c=2"]),
        ("<@U0ALICE|alice> <#C0OPS|ops>", ["<@U0ALICE>", "<#C0OPS>"]),
        ("a &lt;b&gt; &amp; c", ["a", "<b>", "&", "c"]),
    ],
)
def test_tokenize(text: str, tokens: list[str]) -> None:
    assert tokenize(text) == tokens


def test_unbalanced_quote_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="quote is not closed"):
        tokenize("it's 'quoted text'")


def test_parse_flags_and_positionals() -> None:
    args = parse(tokenize("abc --since '2h ago' --limit=5 more words --json --activated YES"), SPEC)
    assert args["id"] == "abc"
    assert args["since"] == "2h ago" and args["limit"] == 5 and args["json"] is True
    assert args["activated"] == "yes" and args.extra == ("more", "words") and args["rest"] == "more words"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "Missing <id>"),
        ("x --limit many", "--limit takes a whole number"),
        ("x --limit 0", "at least 1"),
        ("x --activated maybe", "one of yes, no"),
        ("x --nope", "Unknown option `--nope`"),
        ("x --since", "--since needs a value"),
        ("x --json=perhaps", "is a switch"),
    ],
)
def test_parse_errors_say_what_is_expected(text: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        parse(tokenize(text), SPEC)


def test_double_dash_ends_options() -> None:
    args = parse(tokenize("-- --not-a-flag"), SPEC)
    assert args["id"] == "--not-a-flag"


def test_secret_values_are_masked_for_the_audit() -> None:
    spec = ArgSpec(
        positionals=(Positional("serial"), Positional("code", secret=True), Positional("email")),
        flags=(Flag("since"), Flag("token", secret=True)),
    )
    tokens = tokenize("SN-1 --since 1h AC-123 me@x.io --token=abc --token def")
    assert (
        redacted_text(tokens, spec)
        == "SN-1 --since 1h [redacted] me@x.io --token=[redacted] --token [redacted]"
    )


SECRET_SPEC = ArgSpec(
    positionals=(
        Positional("serial"),
        Positional("client-id", secret=True),
        Positional("code", secret=True),
        Positional("email", secret=True),
    )
)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("SN-1 ID-1 Kx7-pass AC-1 me@x.io", "Too many arguments: at most 4"),
        ("SN-1 ID-1 --Kx7-pass me@x.io", "An argument starts with -- but is not an option"),
    ],
)
def test_errors_never_repeat_an_argument_where_a_secret_may_be(text: str, message: str) -> None:
    """An extra or misplaced argument of a spec with secret positionals may be the secret itself."""
    with pytest.raises(UsageError, match=message) as raised:
        parse(tokenize(text), SECRET_SPEC)
    assert "Kx7-pass" not in str(raised.value)


def test_errors_of_specs_without_secrets_still_name_the_argument() -> None:
    with pytest.raises(UsageError, match="Unexpected `extra`"):
        parse(tokenize("a extra"), ArgSpec(positionals=(Positional("id"),)))


def test_a_secret_flag_value_is_not_repeated_in_its_error() -> None:
    spec = ArgSpec(flags=(Flag("pin", kind="int", secret=True), Flag("n", kind="int")))
    with pytest.raises(UsageError) as raised:
        parse(tokenize("--pin s3cr3t"), spec)
    assert "s3cr3t" not in str(raised.value) and "--pin takes a whole number" in str(raised.value)
    with pytest.raises(UsageError, match="not `x`"):
        parse(tokenize("--n x"), spec)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("SN-1 ID-1 AC-1 me@x.io", "SN-1 [redacted] [redacted] [redacted]"),
        # Extra arguments and unknown options are masked: they may be the code, typed out of place.
        ("SN-1 ID-1 AC-1 me@x.io Kx7-pass", "SN-1 [redacted] [redacted] [redacted] [redacted]"),
        ("SN-1 --Kx7-pass ID-1", "SN-1 [redacted] [redacted]"),
        # "--" is not a position (as in parse): counting it would shift the positions that are masked.
        ("-- SN-1 Kx7-pass", "-- SN-1 [redacted]"),
    ],
)
def test_every_argument_after_a_secret_position_is_masked(text: str, expected: str) -> None:
    assert redacted_text(tokenize(text), SECRET_SPEC) == expected


def test_double_dash_does_not_shift_a_secret_first_position() -> None:
    spec = ArgSpec(positionals=(Positional("code", secret=True), Positional("name")))
    assert redacted_text(tokenize("-- s3cr3t name"), spec) == "-- [redacted] name"


@given(st.text(max_size=80))
def test_tokenize_and_parse_raise_only_usage_errors(text: str) -> None:
    try:
        parse(tokenize(text), SPEC)
    except UsageError as error:
        assert error.message


_PLAIN = st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\"'\\<>&“”„‘’‚\u00a0")


@given(st.lists(st.text(alphabet=_PLAIN, max_size=12), max_size=6))
def test_double_quoted_words_come_back_whole(words: list[str]) -> None:
    assert tokenize(" ".join(f'"{w}"' for w in words)) == words


def test_time_flags_take_the_words_of_an_unquoted_time() -> None:
    spec = ArgSpec(
        positionals=(Positional("target"),),
        flags=(Flag("since", kind="time"), Flag("api"), Flag("note")),
    )
    parsed = parse(tokenize("ID --since 2 hours ago --api shop"), spec)
    assert parsed.values == {"target": "ID", "since": "2 hours ago", "api": "shop", "note": None}
    assert parse(tokenize("--since=1h 30m ago ID"), spec).values["since"] == "1h 30m ago"
    assert parse(tokenize("--since 2024-05-01 12:00 ID"), spec).values["since"] == "2024-05-01 12:00"
    # Only a time flag joins words: any other flag still takes one.
    with pytest.raises(UsageError, match="Unexpected"):
        parse(tokenize("ID --note 2 hours ago"), spec)
    # The audit text masks by position as the parse sees the words.
    secret_spec = ArgSpec(
        positionals=(Positional("serial"), Positional("code", secret=True)),
        flags=(Flag("since", kind="time"),),
    )
    assert (
        redacted_text(tokenize("--since 2h ago SN-1 AC-1"), secret_spec) == "--since 2h ago SN-1 [redacted]"
    )


def test_angle_brackets_that_are_not_slack_markup_are_kept() -> None:
    from bot.listeners.args import clean_text

    assert clean_text("Jane Doe <jane@example.com>") == "Jane Doe <jane@example.com>"
    assert clean_text("<mailto:jane@example.com|jane@example.com>") == "jane@example.com"
    assert clean_text("<https://example.com|site> <@U0ALICE>") == "site <@U0ALICE>"
