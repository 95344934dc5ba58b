"""/apilogs errors against Slack's Block Kit limits with what a client controls (the path of a CLF access
log) or an operator names (a long stage): the answer is always one Slack accepts, and the overflow's
other samples still look up the right request."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from bot.core.apilogs.errors import ErrorGroup, ErrorsReport
from bot.core.apilogs.model import ApiStage
from bot.local.seeds import apilogs as seed_module
from bot.render.apilogs_errors import errors_blocks
from bot.render.blocks import problems
from tests.support.slack import ALICE, SlackHarness, find_button

IDS = [f"0f7d2c1e-4b2a-4c55-9a3f-8f2b3c4d5e{i:02d}" for i in range(5)]


def report(stage: str, path: str, cause: str = "KeyError: 'x'", groups: int = 1) -> ErrorsReport:
    api = ApiStage("abcdef1234", stage, "REST", name="shop-api")
    out = ErrorsReport(api, 1_700_000_000_000, 1_700_000_900_000, "5xx", total=groups)
    out.groups = [
        ErrorGroup(
            "GET",
            f"{path}{n}",
            502,
            cause,
            count=1,
            first=out.start_ms,
            last=out.end_ms,
            functions=["f" * 200] * 5,
            request_ids=list(IDS),
        )
        for n in range(groups)
    ]
    return out


@pytest.mark.parametrize(
    ("stage", "path", "cause", "groups"),
    [
        ("prod", "/orders", "KeyError", 1),
        ("s" * 128, "/orders", "KeyError", 1),  # a long stage: option values past 150 characters
        ("prod", "/" + "a" * 4000, "KeyError", 1),  # a client's long path: a button value past 2000
        ("prod", "/ünïcødé/" + "é" * 600, "x" * 10_000, 3),
        ("s" * 128, "/p", "y" * 3000, 80),  # more groups than a message holds
    ],
)
def test_the_answer_stays_within_slack_limits(stage: str, path: str, cause: str, groups: int) -> None:
    text, blocks = errors_blocks(report(stage, path, cause, groups))
    assert problems(blocks, text=text) == []
    assert any(b.get("type") == "actions" for b in blocks)  # Look up is still offered


def test_a_long_stage_keeps_the_overflow_with_the_window_in_its_block() -> None:
    _, blocks = errors_blocks(report("s" * 128, "/orders"))
    element, block_id = find_button(blocks, "apilogs:errors-lookup-more")
    assert [json.loads(o["value"]) for o in element["options"]] == [{"id": i} for i in IDS[1:]]
    assert json.loads(block_id)["stage"] == "s" * 128


def test_an_option_with_the_id_only_looks_up_in_its_blocks_stage_and_window(
    harness: SlackHarness, demo: seed_module.DemoApi
) -> None:
    """As Slack sends the click on such an option: ``selected_option.value`` the id, the window in the
    action's ``block_id``."""
    harness.command("/apilogs", "errors --since 1h --status all")
    reply = harness.last(ALICE)
    element, _ = find_button(reply.blocks, "apilogs:errors-lookup-more")
    drawn = json.loads(element["value"])
    base = {k: drawn[k] for k in ("api", "stage", "start", "end")}
    blocks = [
        {**b, "block_id": json.dumps({**base, "g": 0})} if element in b.get("elements", []) else b
        for b in reply.blocks
    ]
    harness.click(replace(reply, blocks=blocks), "apilogs:errors-lookup-more",
                  value=json.dumps({"id": drawn["id"]}))  # fmt: skip
    looked = harness.last(ALICE)
    assert drawn["id"] in json.dumps(looked.blocks) and "Nothing found" not in json.dumps(looked.blocks)
