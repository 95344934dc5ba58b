"""Console links: CloudWatch Logs Insights with the query, groups and time range filled in."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime
from urllib.parse import quote

from bot.aws.logs import quote_term

MAX_INSIGHTS_GROUPS = 50  # StartQuery's limit, which the console shares
MAX_URL_LENGTH = 3000  # a Slack button's url


def insights_query(terms: Sequence[str]) -> str:
    conditions = " or ".join(f"@message like {quote_term(term)}" for term in terms)
    query = "fields @timestamp, @log, @logStream, @message"
    if conditions:
        query += f"\n| filter {conditions}"
    return query + "\n| sort @timestamp asc\n| limit 10000"


def _console_escape(value: str) -> str:
    # The console's own encoding of values inside its queryDetail fragment: percent-encoding with '*'
    # for '%' and lower-case hex; '~' separates the fragment's fields, so it is encoded too.
    encoded = re.sub(r"%([0-9A-F]{2})", lambda m: "*" + m.group(1).lower(), quote(value, safe=""))
    return encoded.replace("~", "*7e")


def insights_url(region: str, groups: Sequence[str], terms: Sequence[str], start_ms: int, end_ms: int) -> str:
    """A link that opens Logs Insights on ``groups`` for [start, end] with a query for ``terms``."""

    def iso(ms: int) -> str:
        return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"

    head = (
        f"https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}"
        f"#logsV2:logs-insights$3FqueryDetail$3D"
        f"~(end~'{_console_escape(iso(end_ms))}~start~'{_console_escape(iso(start_ms))}"
        f"~timeType~'ABSOLUTE~tz~'UTC~editorString~'{_console_escape(insights_query(terms))}"
        f"~queryId~'~source~("
    )
    sources = ""
    # Slack cuts a button's URL at 3,000 characters, which would break the link: the groups that do not
    # fit are left out (API Gateway's come first), the link stays whole.
    for group in list(dict.fromkeys(groups))[:MAX_INSIGHTS_GROUPS]:
        source = f"~'{_console_escape(group)}"
        if len(head) + len(sources) + len(source) + 2 > MAX_URL_LENGTH:
            break
        sources += source
    return f"{head}{sources}))"
