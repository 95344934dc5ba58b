"""Slack messages within Block Kit limits (file when the timeline does not fit), terminal text, the
CLI (one JSON document, exit codes, tail) and the demo seed."""

from __future__ import annotations

import json
import os
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest

from bot.aws import logs as cw
from bot.aws.clients import client
from bot.aws.state import StateTable
from bot.cli import main
from bot.config import Settings
from bot.core.apilogs.commands import lookup
from bot.core.apilogs.model import LogEvent
from bot.core.apilogs.tail import TailSummary
from bot.core.common.timeparse import to_epoch_ms
from bot.local.apilogs_traffic import RawEvent, write_events
from bot.local.seeds import SeedContext
from bot.local.seeds import apilogs as seed_module
from bot.render import apilogs as render
from bot.render.blocks import problems

SETTINGS = Settings.from_env({"AWS_REGION": "us-east-1"})


def test_lookup_message_within_limits_with_buttons(demo: seed_module.DemoApi) -> None:
    assert demo.failed is not None
    result = lookup(demo.failed.api_request_id, SETTINGS, api=demo.api_id, stage="prod")
    message = render.lookup_message(result)
    assert problems(message.blocks, text=message.text) == []
    flat = json.dumps(message.blocks)
    assert "POST /orders" in flat and "502" in flat and "KeyError" in flat
    assert "orders-api" in flat and "billed" in flat
    buttons = message.blocks[-1]["elements"]
    full, tail, insights = buttons  # the compact timeline left execution-log lines out
    assert (
        full["action_id"] == "apilogs:full" and json.loads(full["value"])["id"] == demo.failed.api_request_id
    )
    assert tail["action_id"] == "apilogs:tail"
    assert json.loads(tail["value"]) == {"api": demo.api_id, "stage": "prod"}
    assert insights["action_id"] == "link:apilogs-insights" and insights["url"].startswith("https://")
    assert "queryDetail" in insights["url"] and "orders-api" in insights["url"]


def test_a_timeline_too_big_for_a_message_goes_to_a_file(demo: seed_module.DemoApi) -> None:
    assert demo.failed is not None
    result = lookup(demo.failed.api_request_id, SETTINGS, api=demo.api_id, stage="prod")
    base = result.events[-1]
    result.events.extend(
        LogEvent(base.group, base.stream, base.timestamp + i, f"extra line {i} " + "x" * 150, f"x{i}")
        for i in range(400)
    )
    message = render.lookup_message(result)
    assert problems(message.blocks, text=message.text) == []
    assert message.file is not None
    name, content = message.file
    assert name == f"apilogs-{demo.failed.api_request_id}.txt"
    assert "extra line 399" in content and "Traceback" in content
    assert "attached file" in json.dumps(message.blocks)


def test_not_found_message(demo: seed_module.DemoApi) -> None:
    result = lookup(
        "0f7d2c1e-4b2a-4c55-9a3f-8f2b3c4d5e6f", SETTINGS, api=demo.api_id, stage="prod", since="30m"
    )
    message = render.not_found_message(result)
    assert problems(message.blocks, text=message.text) == []
    flat = json.dumps(message.blocks)
    assert "Nothing found" in flat and "Searched" in flat and "/aws/lambda/orders-api" in flat
    assert message.blocks[-1]["type"] == "actions"


def test_tail_messages_within_limits() -> None:
    events = tuple(
        LogEvent("/aws/lambda/f", "s", 1_700_000_000_000 + i, f"line {i} " + "y" * 300, str(i))
        for i in range(500)
    )
    # The listener posts the rest a second later: tail_message says how many lines one message took.
    first, shown = render.tail_message(events, None)
    rest, shown_rest = render.tail_message(events[shown:], None)
    assert 0 < shown < 500 and problems(first.blocks, text=first.text) == []
    assert "line 0 " in json.dumps(first.blocks) and problems(rest.blocks, text=rest.text) == []
    assert f"line {shown} " in json.dumps(rest.blocks) and shown_rest > 0
    summary = TailSummary(
        groups=["a", "b"], pattern="", mode="poll", events=12, errors=1, stop_reason="stopped"
    )
    summary.ended = summary.started + timedelta(seconds=42)
    done = render.tail_summary_message(summary)
    assert "stopped with the Stop button" in done.text and "12 lines (1 error) from 2 log groups" in done.text
    assert done.text.endswith("by polling.")
    summary.stop_reason = "interrupted"
    assert render.tail_summary_message(summary).text.startswith("Tail stopped (Ctrl-C) after 42 s")


def test_terminal_timeline_colours_errors() -> None:
    events = [
        LogEvent("/aws/lambda/f", "2024/05/01/[$LATEST]abcdef0123456789", 1_700_000_000_000, "[ERROR] KeyError: 'x'\nTraceback (most recent call last):", "1"),
        LogEvent("API-Gateway-Execution-Logs_abc/prod", "s", 1_700_000_000_001, "(id) ok", "2"),
    ]  # fmt: skip
    coloured = render.timeline_text(events, None, colour=True)
    assert "\x1b[31m" in coloured[0] and "\x1b[31m" in coloured[1]  # both lines of the stack trace
    plain = render.timeline_text(events, None, colour=False)
    assert plain[0].startswith("2023-11-14T22:13:20.000Z f ") and "[$LATEST]abcdef01" in plain[0]
    assert "apigw" in plain[2] and "\x1b" not in "".join(plain)


def test_cli_lookup_json_is_one_document(
    demo: seed_module.DemoApi, capsys: pytest.CaptureFixture[str]
) -> None:
    assert demo.failed is not None
    code = main(
        [
            "apilogs",
            demo.failed.lambda_ids["orders-api"],
            "--api-id",
            demo.api_id,
            "--stage",
            "prod",
            "--json",
        ]
    )
    out = capsys.readouterr().out
    document = json.loads(out)
    assert code == 0
    assert {e["eventId"] for e in document["events"]} and document["summary"]["found"]
    assert document["summary"]["requestInfo"]["requestId"] == demo.failed.api_request_id


def test_cli_text_and_exit_codes(demo: seed_module.DemoApi, capsys: pytest.CaptureFixture[str]) -> None:
    assert demo.failed is not None
    assert main(["apilogs", demo.failed.api_request_id, "--api", "shop-api", "--stage", "prod"]) == 0
    out = capsys.readouterr().out
    assert "POST /orders → 502" in out and "Traceback" in out and "Logs Insights:" in out
    assert main(["apilogs", "not-an-id", "--api", "shop-api"]) == 2
    assert "is not a request id" in capsys.readouterr().err
    unknown = "0f7d2c1e-4b2a-4c55-9a3f-8f2b3c4d5e6f"
    assert main(["apilogs", unknown, "--api", "shop-api", "--since", "10m"]) == 1
    assert "Nothing found" in capsys.readouterr().out
    assert main(["apilogs", unknown, "--filter", "ERROR"]) == 2
    assert main(["apilogs", "tail", "--until", "now"]) == 2


def test_cli_tail_json(
    demo: seed_module.DemoApi, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from bot.core.apilogs import tail as tail_module

    monkeypatch.setattr(tail_module, "POLL_RATE", 100.0)  # seven groups: a poll round every 0.07 s
    fresh = to_epoch_ms(datetime.now(UTC)) - 1_000
    write_events(client("logs"), [RawEvent("/aws/lambda/users-api", "fresh", fresh, "fresh line")])
    late = fresh - 20_000

    def write_late() -> None:
        # After the first poll, a line that reached CloudWatch late: it comes in a later batch but
        # belongs before the newest lines of the document.
        time.sleep(0.5)
        write_events(client("logs"), [RawEvent("/aws/lambda/users-api", "late", late, "late line")])

    writer = threading.Thread(target=write_late)
    writer.start()
    code = main(
        ["apilogs", "tail", "--api", demo.api_id, "--for", "2s", "--since", "2h", "--mode", "poll", "--json"]
    )
    writer.join()
    document = json.loads(capsys.readouterr().out)
    assert code == 0
    total = sum(len(r.events) for r in demo.requests)
    assert len(document["events"]) == total + 2
    assert {"late line", "fresh line"} <= {e["message"] for e in document["events"]}
    stamps = [e["timestamp"] for e in document["events"]]
    assert stamps == sorted(stamps)
    assert document["summary"]["stopReason"] == "time limit"


def test_seed_sets_defaults_and_shows_a_request_id(
    aws: None, state_table: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("OPSBOT_DEFAULT_API", "OPSBOT_DEFAULT_STAGE"):
        # Recorded by monkeypatch, so what the seed sets is removed after the test.
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)
    context = SeedContext(SETTINGS, StateTable(state_table), datetime.now(UTC))
    banner = seed_module.seed(context)
    request_id = context.facts["apilogs.request_id"]
    assert any(request_id in line for line in banner)
    assert os.environ["OPSBOT_DEFAULT_API"] == context.facts["apilogs.api_id"]
    assert os.environ["OPSBOT_DEFAULT_STAGE"] == "prod"
    result = lookup(request_id, Settings.from_env())
    assert result.found and result.api is not None and result.api.status == 502
    # Every event is recent (within the last hour), as CloudWatch requires for new data.
    oldest = min(e.timestamp for e in result.events)
    assert oldest > to_epoch_ms(datetime.now(UTC) - timedelta(hours=1))


def test_write_events_batches_within_put_log_events_limits(aws: None) -> None:
    from bot.local.apilogs_traffic import RawEvent, batches

    now = to_epoch_ms(datetime.now(UTC))
    events = [RawEvent("/g", "s", now - 20_000 + i, "m" * 200) for i in range(12_000)]
    sizes = [(len(batch), sum(len(e["message"]) + 26 for e in batch)) for _, _, batch in batches(events)]
    assert all(count <= 10_000 and size <= 1_048_576 for count, size in sizes)
    assert sum(count for count, _ in sizes) == 12_000
    assert write_events(client("logs"), events) == len(sizes)


def test_cli_takes_times_and_ids_typed_without_quotes(
    demo: seed_module.DemoApi, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from bot.core.apilogs import tail as tail_module

    failed = demo.failed
    assert failed is not None
    lambda_id = failed.lambda_ids["orders-api"]
    where = ["--api", "shop-api", "--stage", "prod"]
    assert main(["apilogs", lambda_id, "--since", "2h", "ago", *where]) == 0
    assert "POST /orders → 502" in capsys.readouterr().out
    assert main(["apilogs", "x-amzn-RequestId:", failed.api_request_id, *where, "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["summary"]["request"]["value"] == failed.api_request_id
    # A time flag before the id: its words end where the id begins.
    assert main(["apilogs", "--since", "2", "hours", "ago", lambda_id, "--until", "now", *where]) == 0
    assert "KeyError" in capsys.readouterr().out
    assert main(["apilogs", lambda_id, "extra", *where]) == 2
    assert "Unexpected `extra`" in capsys.readouterr().err
    assert main(["apilogs", *where]) == 2
    assert "Give the request id" in capsys.readouterr().err
    monkeypatch.setattr(tail_module, "POLL_RATE", 100.0)
    code = main(["apilogs", "tail", "--since", "3", "hours", "ago", "--for", "1s", "--mode", "poll", "--api", demo.api_id, "--json"])  # fmt: skip
    assert code == 0
    assert len(json.loads(capsys.readouterr().out)["events"]) == sum(len(r.events) for r in demo.requests)
    assert main(["apilogs", "tail", "soon", "--api", demo.api_id]) == 2
    assert "Unexpected 'soon'" in capsys.readouterr().err


def test_headline_marks_client_errors_as_warnings(aws: None, capsys: pytest.CaptureFixture[str]) -> None:
    from tests.apilogs.test_lookup_variants import recent, traffic

    api_id, _ = seed_module.create_api("us-east-1")
    sim = traffic(api_id)
    ok, throttled, refused = (sim.request(recent(m), "GET /users") for m in (30, 20, 15))
    broken = sim.request(recent(10), "POST /orders", fail=True)

    def answered(message: str, status: int) -> str:
        completed = "Method completed with status: "
        return message.replace(f"{completed}200", f"{completed}{status}").replace(
            '"status": "200"', f'"status": "{status}"'
        )

    for request, status in ((throttled, 429), (refused, 403)):
        request.events = [
            RawEvent(e.group, e.stream, e.timestamp, answered(e.message, status)) for e in request.events
        ]
    write_events(client("logs"), [e for r in (ok, throttled, refused, broken) for e in r.events])
    icons = {}
    for name, request in (("ok", ok), ("429", throttled), ("403", refused), ("502", broken)):
        result = lookup(request.api_request_id, SETTINGS, api=api_id, stage="prod")
        icons[name] = render.lookup_message(result).blocks[0]["text"]["text"].split(" ")[0]
    assert icons == {"ok": "✅", "429": "⚠️", "403": "⚠️", "502": "❌"}
    result = lookup(throttled.api_request_id, SETTINGS, api=api_id, stage="prod")
    assert "\x1b[33;1mGET /users → 429" in render.lookup_text(result, colour=True)


def test_cli_lookup_shows_what_throttling_left_it_marked_incomplete(
    demo: seed_module.DemoApi, capsys: pytest.CaptureFixture[str]
) -> None:
    """CloudWatch Logs throttles everything after the API Gateway side: past --timeout the CLI shows
    what it read, marked incomplete, instead of failing the whole lookup (as it did after 120 s)."""
    assert demo.failed is not None
    calls = {"n": 0}

    def throttle_after_the_api_side(**_: object) -> object:
        calls["n"] += 1
        if calls["n"] <= 2:
            return None
        error = {"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}, "ResponseMetadata": {}}
        return type("Http", (), {"status_code": 400, "headers": {}})(), error

    logs = cw.logs_client(bounded=True)  # the client of searches with a deadline
    logs.meta.events.register("before-call.cloudwatch-logs.FilterLogEvents", throttle_after_the_api_side)
    try:
        where = ["--api", demo.api_id, "--stage", "prod"]
        code = main(["apilogs", demo.failed.api_request_id, *where, "--timeout", "1", "--json"])
    finally:
        logs.meta.events.unregister(
            "before-call.cloudwatch-logs.FilterLogEvents", throttle_after_the_api_side
        )
    document = json.loads(capsys.readouterr().out)
    assert code == 0 and document["summary"]["found"] and document["summary"]["complete"] is False
    assert "may be incomplete. Raise --timeout to search longer." in document["summary"]["notes"][0]
    assert any(e["group"].startswith("API-Gateway-Execution-Logs_") for e in document["events"]), document[
        "events"
    ][:1]
    assert main(["apilogs", demo.failed.api_request_id, *where, "--timeout", "0"]) == 2
    assert "--timeout is a number of seconds" in capsys.readouterr().err
    assert main(["apilogs", "tail", "--timeout", "5"]) == 2


HOSTILE = "<!channel> <@U1> & <https://x|y>"
ESCAPED = "&lt;!channel&gt; &lt;@U1&gt; &amp; &lt;https://x|y&gt;"


def _mrkdwn_texts(blocks: list[dict[str, object]]) -> str:
    return json.dumps(blocks, ensure_ascii=False)


def test_log_text_cannot_mention_or_link_in_slack(demo: seed_module.DemoApi) -> None:
    """A logged ``<!channel>``, ``<@U1>`` or ``<https://x|y>`` is shown as written in Slack (mrkdwn
    reads them inside code fences too), never as a mention or a link; the terminal shows it raw."""
    assert demo.failed is not None
    result = lookup(demo.failed.api_request_id, SETTINGS, api=demo.api_id, stage="prod")
    first = result.events[0]
    hostile = LogEvent(first.group, first.stream, first.timestamp - 1, f"[ERROR] {HOSTILE}", "h1")
    result.events.insert(0, hostile)  # the first error line and the first line of the timeline
    message = render.lookup_message(result)
    flat = _mrkdwn_texts(message.blocks)
    fenced = [t for b in message.blocks if "```" in (t := b.get("text", {}).get("text", ""))]
    assert len([t for t in fenced if ESCAPED in t]) == 2  # the errors and the timeline
    for raw in ("<!channel>", "<@U1>", "<https://x|y>", " & "):
        assert raw not in flat and raw not in message.text
    assert problems(message.blocks, text=message.text) == []
    assert HOSTILE in render.lookup_text(result, colour=False)

    tail, shown = render.tail_message([LogEvent("/aws/lambda/f", "s", 1_700_000_000_000, HOSTILE, "1")], None)
    assert (
        shown == 1
        and ESCAPED in _mrkdwn_texts(tail.blocks)
        and "<!channel>" not in _mrkdwn_texts(tail.blocks)
    )


def test_escaping_counts_towards_the_limits() -> None:
    """Escaped, a line of ``<`` is four times as long: messages still fit, and a cut line does not end
    in half an entity."""
    events = tuple(
        LogEvent("/aws/lambda/f", "s", 1_700_000_000_000 + i, "<" * 390, str(i)) for i in range(200)
    )
    message, shown = render.tail_message(events, None)
    assert 0 < shown < 200 and problems(message.blocks, text=message.text) == []
    from bot.render.blocks import code_blocks

    (block,) = code_blocks(["&" * 100], max_chars=60, escape_text=True)
    body = block["text"]["text"].removeprefix("```\n").removesuffix("\n```")
    assert body.endswith("&amp;…") and len(body) <= 52


def test_slack_lines_carry_the_date_on_the_first_line_and_when_the_day_changes() -> None:
    midnight = to_epoch_ms(datetime(2024, 5, 1, tzinfo=UTC))
    events = [
        LogEvent("/aws/lambda/f", "s", midnight - 2_000, "late on the 30th", "1"),
        LogEvent("/aws/lambda/f", "s", midnight - 1_000, "still the 30th", "2"),
        LogEvent("/aws/lambda/f", "s", midnight + 5, "the 1st", "3"),
        LogEvent("/aws/lambda/f", "s", midnight + 6, "still the 1st", "4"),
    ]
    lines = render.slack_lines(events, None)
    assert [line.split(" ")[0] for line in lines] == [
        "2024-04-30T23:59:58.000Z",
        "23:59:59.000Z",
        "2024-05-01T00:00:00.005Z",
        "00:00:00.006Z",
    ]
    message, _ = render.tail_message(events[1:], None)
    text = message.blocks[0]["text"]["text"]
    # Each tail message starts with the date again: a thread is read message by message.
    assert text.startswith("```\n2024-04-30T23:59:59.000Z f ") and "\n2024-05-01T00:00:00.005Z f " in text
    assert "\n00:00:00.006Z f " in text


def test_ctrl_c_is_not_called_the_stop_button(
    demo: seed_module.DemoApi, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from collections.abc import Iterator

    from bot.core.apilogs.tail import Tail, TailBatch

    def interrupted(self: Tail) -> Iterator[TailBatch]:
        yield TailBatch((), "poll")
        raise KeyboardInterrupt

    monkeypatch.setattr(Tail, "batches", interrupted)
    assert main(["apilogs", "tail", "--api", demo.api_id, "--mode", "poll"]) == 0
    err = capsys.readouterr().err
    assert "Tail stopped (Ctrl-C) after" in err and "Stop button" not in err
    assert main(["apilogs", "tail", "--api", demo.api_id, "--mode", "poll", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["summary"]["stopReason"] == "interrupted"


def test_an_id_starting_with_a_dash_goes_after_double_dash(
    aws: None, capsys: pytest.CaptureFixture[str]
) -> None:
    from bot.cli.apilogs import DESCRIPTION
    from tests.apilogs.test_lookup_variants import recent, traffic

    api_id, _ = seed_module.create_api("us-east-1")
    request = traffic(api_id).request(recent(), "GET /users")
    dashed = "-Xb3kdjfk8sdfE="  # base64url: extended request ids may start with "-"
    write_events(
        client("logs"),
        [RawEvent(e.group, e.stream, e.timestamp, e.message.replace(request.extended_id, dashed)) for e in request.events],
    )  # fmt: skip
    assert main(["apilogs", "--api", api_id, "--stage", "prod", "--json", "--", dashed]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["summary"]["request"]["value"] == dashed
    assert document["summary"]["requestInfo"]["requestId"] == request.api_request_id
    assert main(["apilogs", dashed, "--api", api_id]) == 2  # without "--", argparse takes it for an option
    capsys.readouterr()
    assert f"-- {dashed}" in DESCRIPTION


def test_counts_are_worded_in_the_singular_for_one() -> None:
    summary = TailSummary(groups=["a"], pattern="", mode="poll", events=1, errors=1, stop_reason="time limit")
    summary.ended = summary.started + timedelta(seconds=3)
    assert "1 line (1 error) from 1 log group, by polling." in render.tail_summary_message(summary).text
    one = (LogEvent("/aws/lambda/f", "s", 1_700_000_000_000, "only line", "1"),)
    assert render.tail_message(one, None)[0].text == "1 log line"
    stage = seed_module_stage()
    ended = render.tail_ended_message(stage, ["/aws/lambda/f"], summary, pattern="", who=" by <@U0ALICE>")
    top = json.dumps(ended.blocks)
    assert "Tailing" not in top and ":hourglass_flowing_sand:" not in top
    assert "1 log group (f)" in top and "Ended by <@U0ALICE>: 1 line, 1 error." in top
    assert problems(ended.blocks, text=ended.text) == []


def seed_module_stage() -> render.ApiStage:
    return render.ApiStage(api_id="abc123", name="shop-api", stage="prod", kind="REST")


def test_cli_timeline_columns_are_labelled(
    demo: seed_module.DemoApi, capsys: pytest.CaptureFixture[str]
) -> None:
    assert demo.failed is not None
    assert main(["apilogs", demo.failed.api_request_id, "--api", "shop-api", "--stage", "prod"]) == 0
    lines = capsys.readouterr().out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("TIME "))
    assert lines[header].split() == ["TIME", "GROUP", "STREAM", "MESSAGE"]
    first = lines[header + 1]
    # Each column starts where its label does.
    assert first[: first.index(" ")].endswith("Z") and first[lines[header].index("GROUP") - 1] == " "
    assert first[lines[header].index("GROUP")] != " " and first[lines[header].index("STREAM")] != " "


def test_hostile_log_lines_cannot_drive_the_terminal_or_reorder_text() -> None:
    """Log lines hold what the logged code let anyone write (a path, a header, a body): escape sequences
    would rewrite or hide lines on the operator's terminal (ESC, a carriage return, OSC 52 sets the
    clipboard) and a bidi override reverses what Slack and the terminal show. Shown as escapes; tabs and
    line breaks stay."""
    hostile = "GET /x\x1b[2K\rAll good\x1b]52;c;ZWNobyBoaQ==\x07 \u202eevil\u2066 nul\x00\tTAB\nsecond"
    event = LogEvent("/aws/lambda/shop", "2024/05/01/[$LATEST]abc", 1_714_558_530_120, hostile)
    terminal = "\n".join(render.timeline_text([event], None, colour=False))
    slack = render.slack_lines([event], None)[0]
    for shown in (terminal, slack):
        assert not any(c in shown for c in "\x1b\r\x07\x00\u202e\u2066"), repr(shown)
        assert "\\u001b[2K\\u000dAll good" in shown and "\\u202eevil" in shown and "\tTAB" in shown
    assert terminal.splitlines()[-1].endswith("second")


def test_a_tails_filter_pattern_is_shown_capped_and_cannot_leave_its_code_span() -> None:
    """The tail's top message goes to the whole channel as opsbot: the caller's --filter in it must not
    turn into opsbot's own formatted words (a backtick ended its code span), nor run to 3,000 characters."""
    stage = render.ApiStage(api_id="abc123", name="shop-api", stage="prod", kind="REST")
    pattern = "x` *Everyone: rotate your password at evil.example now* `" + "y" * 3000
    message = render.tail_started_message(stage, ["/aws/lambda/shop"], "t1", duration="10m", pattern=pattern)
    text = message.blocks[0]["text"]["text"]
    shown = text.split(", filter ", 1)[1].split(" for 10m", 1)[0]
    assert shown.startswith("`") and shown.endswith("`") and shown.count("`") == 2, shown
    assert len(shown) <= 82
