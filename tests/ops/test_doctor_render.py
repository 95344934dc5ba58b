"""The doctor's Slack answer within Block Kit's limits, whatever the number of findings, and its terminal text."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.core.ops.doctor import DoctorReport, Finding
from bot.render.blocks import problems
from bot.render.ops import doctor_blocks, doctor_text
from tests.support.properties import examples


def stage_findings(count: int) -> list[Finding]:
    return [
        Finding(
            "apilogs",
            "execution logging",
            f"shop-api (abc) stage qa{n}",
            "fail",
            "execution logging is off: lookups find nothing in API Gateway's own log",
            f"`aws apigateway update-stage --rest-api-id abc --stage-name qa{n} --patch-operations "
            "'op=replace,path=/*/*/logging/loglevel,value=INFO'`",
        )
        for n in range(count)
    ]


def test_many_findings_fit_one_message_and_say_how_many_did_not() -> None:
    report = DoctorReport(findings=[*stage_findings(120), Finding("aws", "identity", "r", "ok", "fine")])
    text, blocks = doctor_blocks(report)
    assert problems(blocks, text=text) == []
    sections = [b["text"]["text"] for b in blocks if b["type"] == "section"]
    assert all(not s.endswith("…") for s in sections)  # split between findings, never cut inside one
    assert all(s.count("*") % 2 == 0 for s in sections)  # no bold left open
    note = blocks[-1]["elements"][0]["text"]
    shown = sum(s.count("stage qa") for s in sections) + sum(s.count("ok (1): identity") for s in sections)
    assert f"{121 - shown} more finding lines" in note and "opsbot doctor" in note


def test_targets_sort_naturally_and_repeats_show_once() -> None:
    findings = stage_findings(12)
    report = DoctorReport(findings=findings + findings[:3])
    _, blocks = doctor_blocks(report)
    text = "\n".join(b["text"]["text"] for b in blocks if b["type"] == "section")
    order = [int(line.split("stage qa")[1].split("`")[0]) for line in text.splitlines() if "stage qa" in line]
    assert order == list(range(12))


def test_the_terminal_and_json_show_fixes_without_slack_code_spans() -> None:
    report = DoctorReport(findings=stage_findings(1))
    text = doctor_text(report)
    assert "fix: aws apigateway update-stage" in text and "`" not in text
    assert report.to_json()["checks"][0]["fix"].startswith("aws apigateway update-stage")


finding = st.builds(
    Finding,
    area=st.sampled_from(["slack", "aws", "apilogs", "mail", "dns"]),
    check=st.text(min_size=1, max_size=40),
    target=st.text(min_size=1, max_size=120),
    status=st.sampled_from(["ok", "warn", "fail", "skip"]),
    detail=st.text(max_size=600),
    fix=st.text(max_size=900),
)


@settings(max_examples=examples(60), deadline=None)
@given(st.lists(finding, max_size=150), st.lists(st.text(max_size=80), max_size=40))
def test_any_report_is_a_message_slack_accepts(findings: list[Finding], cut: list[str]) -> None:
    text, blocks = doctor_blocks(DoctorReport(findings=findings, cut_short=cut))
    assert problems(blocks, text=text) == []


def test_text_is_escaped_once_and_times_become_slack_dates() -> None:
    finding = Finding(
        "dns",
        "last sync",
        "corp <x>",
        "warn",
        "synced at 2026-12-06T05:32:55+00:00 by <!channel>",
        "`a && b`",
    )
    _, blocks = doctor_blocks(DoctorReport(findings=[finding]))
    text = blocks[2]["text"]["text"]
    assert "`a &amp;&amp; b`" in text and "&amp;amp;" not in text
    assert "&lt;!channel&gt;" in text and "<!channel>" not in text
    assert "<!date^" in text and "2026-12-06T05:32:55" not in text
