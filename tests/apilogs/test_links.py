"""The Logs Insights link: the console's own encoding, and whole within a Slack button's 3,000 characters."""

from __future__ import annotations

import re
from urllib.parse import unquote

from hypothesis import given
from hypothesis import strategies as st

from bot.core.apilogs.links import MAX_URL_LENGTH, insights_url

START, END = 1_780_000_000_000, 1_780_000_600_000


def groups_in(url: str) -> list[str]:
    source = url.split("~source~(", 1)[1]
    assert source.endswith("))")
    return [unquote(g.replace("*", "%")) for g in re.findall(r"~'([^~)]*)", source[:-2])]


def test_every_group_while_they_fit() -> None:
    groups = ["API-Gateway-Execution-Logs_abc123/prod", "/aws/lambda/orders-api", "/aws/lambda/users-api"]
    url = insights_url("us-east-1", groups, ["7d5ab59b-ea27-11f1-92de-74012425d75a"], START, END)
    assert groups_in(url) == groups
    assert "editorString~'fields*20*40timestamp" in url


@given(st.lists(st.text("abcdefghijklmnopqrstuvwxyz-_/.", min_size=1, max_size=512), min_size=1, max_size=80))
def test_the_link_stays_whole_within_slacks_limit(names: list[str]) -> None:
    groups = [f"/aws/lambda/{name}" for name in names]
    url = insights_url("eu-west-1", groups, ["7d5ab59b-ea27-11f1-92de-74012425d75a"], START, END)
    assert len(url) <= MAX_URL_LENGTH
    kept = groups_in(url)
    unique = list(dict.fromkeys(groups))
    assert kept == unique[: len(kept)]  # the first groups, in order; the rest left out, none cut
