"""A request id as people paste it without quotes: ``x-amzn-RequestId: ID``, ``Request ID: ID``.

A shell (and Slack's text) splits that into several words; ``id_from_words`` takes the id back out. The
words of an unquoted time (``--since 2h ago``) are joined by the argument parser itself
(``bot.core.common.timewords``, flags of kind ``time``). Pure and small: it runs in Slack's ack path.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from bot.errors import UsageError, echo_all

# A header name people copy along with the id ("x-amzn-RequestId: ..."); ids.py strips the same names
# when they arrive in one word.
_HEADER_WORDS = re.compile(
    r"(?:x-amzn-requestid|x-amz-apigw-id|apigw-requestid|x-amzn-trace-id|request ?id)\s*[:=]?", re.IGNORECASE
)


def id_from_words(words: Sequence[str]) -> str:
    """The request id out of the words typed for it: one word, or a header name and the id
    (``x-amzn-RequestId: ID``, ``Request ID: ID``). Anything else is a UsageError."""
    if not words:
        raise UsageError("Missing <id>.")
    if len(words) == 1:
        return words[0]
    if _HEADER_WORDS.fullmatch(" ".join(words[:-1])):
        return words[-1]
    from bot.core.apilogs.ids import parse_request_id

    parse_request_id(words[0])  # a first word that is no id is the clearer message
    raise UsageError(
        f"Unexpected {echo_all(words[1:])}. Quote a value that has spaces, e.g. --since '2h ago'."
    )
