"""The /dns work sent to the DNS mirror function: its requests, its answers, and Lambda's failures."""

from __future__ import annotations

import io
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import pytest
from botocore.response import StreamingBody

from bot.aws.dynamo import scan_all
from bot.aws.functions import invoke, invoke_client, serve_locally
from bot.aws.route53 import change_client
from bot.config import Settings
from bot.core.dns import wire, worker
from bot.core.dns.commands import Timings, mirror_handler
from bot.core.dns.config import MasterAddress
from bot.errors import AwsError, OpsbotError, UsageError
from bot.local.dns_master import free_port
from bot.local.slack_api import LocalSlack
from bot.render.dns import plan_blocks, result_blocks, status_blocks
from tests.conftest import ONCALL_POLICY
from tests.dns.conftest import ZoneEnv
from tests.dns.support import list_all
from tests.support.slack import OPS_CHANNEL, SlackHarness, find_button

MIRROR = "opsbot-dns-mirror"


def zones_json(zone_env: ZoneEnv, master: str | None = None) -> str:
    entry = {
        "domain": "example.com",
        "master": master or str(zone_env.zone.master),
        "zone_id": zone_env.zone.zone_id,
    }
    return json.dumps([entry | {"timeout": 1}])


@pytest.fixture
def mirror(zone_env: ZoneEnv) -> Iterator[Settings]:
    settings = Settings(state_table="opsbot-state", dns_zones_json=zones_json(zone_env))
    serve_locally(MIRROR, mirror_handler(settings))
    yield settings
    serve_locally(MIRROR, None)


def test_the_work_runs_where_the_master_is_reachable(
    zone_env: ZoneEnv, mirror: Settings, make_harness: Callable[..., SlackHarness]
) -> None:
    """The Slack function's own route to the master is closed (as outside the VPC); the mirror's is open."""
    closed = str(MasterAddress("127.0.0.1", free_port()))
    harness = make_harness(
        OPSBOT_POLICY=json.dumps(ONCALL_POLICY),
        OPSBOT_DNS_ZONES=zones_json(zone_env, closed),
        OPSBOT_DNS_FUNCTION=MIRROR,
    )
    harness.command("/dns", "resync example.com")
    [preview] = [m for m in harness.slack.visible(OPS_CHANNEL[0]) if "DNS resync" in json.dumps(m.blocks)]
    assert "9 to create" in json.dumps(preview.blocks)
    find_button(preview.blocks, "dns:apply")
    harness.click(preview, "dns:apply")
    assert len([i for i in list_all(zone_env.zone.zone_id) if i["Type"] not in ("SOA", "NS")]) == 9
    state = zone_env.state.get_sync_state(zone_env.zone.state_key)
    assert state is not None and state["serial"] == 100


def test_answers_are_data_that_render_the_same_in_either_function(
    zone_env: ZoneEnv, mirror: Settings
) -> None:
    """The mirror function answers with data (no Slack text or blocks: core does not render); read back
    on the Slack side it is what the same work in the Slack function itself gives."""
    remote = Settings(
        state_table=mirror.state_table, dns_zones_json=mirror.dns_zones_json, dns_function=MIRROR
    )
    for request in ({"op": "status"}, {"op": "preview", "domain": "example.com"}):
        here, there = worker.run(mirror, dict(request)), worker.run(remote, dict(request))
        for answer in (here, there):
            assert not {"text", "blocks"} & set(answer) and '"type": "section"' not in json.dumps(answer)
        if request["op"] == "status":
            statuses = [wire.statuses_from_json(answer["zones"]) for answer in (here, there)]
            assert statuses[0] == statuses[1] and status_blocks(statuses[0]) == status_blocks(statuses[1])
            assert [s.verdict for s in statuses[0]] == ["never synced"]
        else:
            # Two transfers: the same plan, only the time each took differs.
            shown = [replace(wire.preview_from_json(a["preview"]), timings=Timings()) for a in (here, there)]
            assert shown[0] == shown[1] and shown[0].plan.counts()["CREATE"] == 9
            assert plan_blocks(shown[0], buttons=True) == plan_blocks(shown[1], buttons=True)


def test_requests_name_only_configured_zones(zone_env: ZoneEnv, mirror: Settings) -> None:
    """A request cannot bring its own master or hosted zone: only the function's OPSBOT_DNS_ZONES count."""
    answer = invoke(
        MIRROR, {worker.REQUEST_KEY: {"op": "preview", "domain": "other.org"}}, purpose="the mirror"
    )
    assert answer == {
        "ok": False,
        "stage": "prepare",
        "kind": "usage",
        "error": "`other.org` is not a configured zone. Configured: example.com.",
        "hint": None,
    }
    with pytest.raises(UsageError, match="not a configured zone"):
        worker.raise_failure(answer)
    for bad in ({"op": "drop"}, "apply", {"op": "apply", "domain": 7}, {"op": "preview"}):
        answer = worker.handle(bad, mirror)
        assert answer["ok"] is False and answer["kind"] == "usage", bad
    assert {i["Type"] for i in list_all(zone_env.zone.zone_id)} == {"SOA", "NS"}  # nothing was written


def test_a_stale_plan_is_not_applied_and_a_failed_transfer_says_nothing_was(
    zone_env: ZoneEnv, mirror: Settings
) -> None:
    request = {"op": "apply", "domain": "example.com", "plan": "not-the-plan", "actor": "U1"}
    answer = invoke(MIRROR, {worker.REQUEST_KEY: request}, purpose="the mirror")
    assert answer["ok"] and answer["superseded"] and answer["master_serial"] == 100
    fresh = wire.preview_from_json(answer["preview"])  # the new preview, with its own fingerprint
    assert fresh.plan.master_serial == 100 and fresh.plan.counts()["CREATE"] == 9
    assert len(list_all(zone_env.zone.zone_id)) == 2
    zone_env.master.stop()
    with pytest.raises(OpsbotError, match="refused the TCP connection") as raised:
        worker.run(Settings(dns_function=MIRROR), request)
    assert worker.stage_of(raised.value) == "prepare"


def fake_invoke(answer: bytes, function_error: str = "") -> Callable[..., Any]:
    def hook(**_: Any) -> Any:
        parsed: dict[str, Any] = {
            "StatusCode": 200,
            "Payload": StreamingBody(io.BytesIO(answer), len(answer)),
        }
        if function_error:
            parsed["FunctionError"] = function_error
        return type("Http", (), {"status_code": 200, "headers": {}})(), parsed

    return hook


def refuse(code: str, message: str) -> Callable[..., Any]:
    def hook(**_: Any) -> Any:
        error = {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {}}
        return type("Http", (), {"status_code": 403, "headers": {}})(), error

    return hook


@pytest.mark.parametrize(
    ("hook", "message"),
    [
        (fake_invoke(b'{"ok": true, "text": "fine"}'), ""),
        (
            fake_invoke(
                b'{"errorMessage": "2026-11-27T06:00:00Z abc Task timed out after 300.10 seconds"}',
                "Unhandled",
            ),
            "ran out of time before it answered",
        ),
        (
            fake_invoke(b'{"errorMessage": "boom", "errorType": "KeyError"}', "Unhandled"),
            r"failed: KeyError: boom",
        ),
        (fake_invoke(b"null"), "answered with something other than a JSON object"),
        (
            refuse(
                "AccessDeniedException",
                "User: arn:aws:sts::123456789012:assumed-role/opsbot-slack/x is not authorized to perform: "
                "lambda:InvokeFunction on resource: arn:aws:lambda:us-east-1:123456789012:function:opsbot-dns-mirror",
            ),
            "missing the IAM permission `lambda:InvokeFunction`",
        ),
        (refuse("ResourceNotFoundException", "Function not found: opsbot-dns-mirror"), "Function not found"),
    ],
)
def test_lambdas_answers_and_failures_become_sentences(
    aws: None, hook: Callable[..., Any], message: str
) -> None:
    calls: list[dict[str, Any]] = []
    this_thread = threading.get_ident()

    def capture(params: dict[str, Any], **_: Any) -> None:
        # This test's own call: a thread an earlier test left behind (a progress poll ending) may fetch
        # the same cached client after this test registered its handlers.
        if threading.get_ident() == this_thread:
            calls.append(params)

    lambda_client = invoke_client()
    lambda_client.meta.events.register("provide-client-params.lambda.Invoke", capture)
    lambda_client.meta.events.register("before-call.lambda.Invoke", hook)
    if message:
        with pytest.raises(AwsError, match=message):
            invoke(MIRROR, {"opsbot_dns": {"op": "status"}}, purpose="the DNS mirror function")
    else:
        assert invoke(MIRROR, {"opsbot_dns": {"op": "status"}}, purpose="the DNS mirror function") == {
            "ok": True,
            "text": "fine",
        }
    # Synchronous, and sent once: an apply must never be sent twice.
    assert [(c["FunctionName"], c["InvocationType"]) for c in calls] == [(MIRROR, "RequestResponse")]
    assert lambda_client.meta.config.retries["total_max_attempts"] == 1


def remote_harness(zone_env: ZoneEnv, make_harness: Callable[..., SlackHarness]) -> SlackHarness:
    return make_harness(
        OPSBOT_POLICY=json.dumps(ONCALL_POLICY),
        OPSBOT_DNS_ZONES=zones_json(zone_env),
        OPSBOT_DNS_FUNCTION=MIRROR,
    )


def click_while_route53_is_slow(
    harness: SlackHarness, preview: Any, also: Callable[[], None] = lambda: None
) -> None:
    """Apply, with each change batch taking 1.5 s: the Slack side polls for progress meanwhile."""

    def slow(**_: Any) -> None:
        also()
        time.sleep(1.5)

    route53 = change_client()
    route53.meta.events.register("before-call.route53.ChangeResourceRecordSets", slow)
    try:
        harness.click(preview, "dns:apply")
    finally:
        route53.meta.events.unregister("before-call.route53.ChangeResourceRecordSets", slow)


def test_an_apply_in_the_mirror_function_shows_its_progress(
    zone_env: ZoneEnv, mirror: Settings, make_harness: Callable[..., SlackHarness], slack_server: LocalSlack
) -> None:
    """The Invoke answers once, at the end: the batches' progress comes through the state table."""
    harness = remote_harness(zone_env, make_harness)
    harness.command("/dns", "resync example.com")
    [preview] = [m for m in harness.slack.visible(OPS_CHANNEL[0]) if "DNS resync" in json.dumps(m.blocks)]

    click_while_route53_is_slow(harness, preview)
    updates = [
        json.dumps(c.params) for c in slack_server.calls_to("chat.update") if c.params.get("ts") == preview.ts
    ]
    assert "in the DNS mirror function" in updates[0]
    assert any("Applying batch 1 of 1" in u and "batch 1/1 applied" in u for u in updates[1:]), updates
    final = slack_server.find(preview.ts, OPS_CHANNEL[0])
    assert final is not None and "Applied by" in json.dumps(final.blocks)
    # What the mirror wrote for the Slack side to poll is data, not Slack blocks.
    (item,) = [i for i in scan_all(mirror.state_table) if str(i["sk"]).startswith("progress#")]
    assert set(item) - {"pk", "sk", "expiresAt"} == {"number", "total", "progress"}
    progress = wire.progress_from_json(json.loads(item["progress"]))
    assert (progress.domain, progress.batches, progress.counts["CREATE"]) == ("example.com", 1, 9)
    assert [(o.number, o.status) for o in progress.outcomes] == [(1, "applied")]
    assert '"type"' not in item["progress"]


def test_a_mirror_that_dies_during_an_apply_is_not_reported_as_nothing_applied(
    zone_env: ZoneEnv, make_harness: Callable[..., SlackHarness], slack_server: LocalSlack
) -> None:
    settings = Settings(state_table="opsbot-state", dns_zones_json=zones_json(zone_env))
    real = mirror_handler(settings)

    def times_out_after_applying(event: Any, context: Any) -> Any:
        real(event, context)
        if event.get(worker.REQUEST_KEY, {}).get("op") == "apply":
            raise RuntimeError("2026-11-27T06:00:00Z 1a2b Task timed out after 300.00 seconds")
        return real(event, context)

    serve_locally(MIRROR, times_out_after_applying)
    try:
        harness = remote_harness(zone_env, make_harness)
        harness.command("/dns", "resync example.com")
        [preview] = [m for m in harness.slack.visible(OPS_CHANNEL[0]) if "DNS resync" in json.dumps(m.blocks)]
        harness.click(preview, "dns:apply")
    finally:
        serve_locally(MIRROR, None)
    assert "ran out of time before it answered" in harness.last().text
    after = slack_server.find(preview.ts, OPS_CHANNEL[0])
    assert after is not None
    assert "may have been applied" in json.dumps(after.blocks) and "Nothing was applied" not in json.dumps(
        after.blocks
    )
    assert len([i for i in list_all(zone_env.zone.zone_id) if i["Type"] not in ("SOA", "NS")]) == 9


def resynced(zone_env: ZoneEnv, make_harness: Callable[..., SlackHarness]) -> tuple[SlackHarness, Any]:
    """The Slack app sending /dns work to the mirror function, and the preview of `/dns resync`."""
    harness = remote_harness(zone_env, make_harness)
    harness.command("/dns", "resync example.com")
    [preview] = [m for m in harness.slack.visible(OPS_CHANNEL[0]) if "DNS resync" in json.dumps(m.blocks)]
    return harness, preview


def test_a_progress_line_slack_refuses_does_not_lose_the_result(
    zone_env: ZoneEnv, mirror: Settings, make_harness: Callable[..., SlackHarness], slack_server: LocalSlack
) -> None:
    harness, preview = resynced(zone_env, make_harness)

    # The next progress line is refused.
    click_while_route53_is_slow(
        harness, preview, also=lambda: slack_server.fail_next("chat.update", "ratelimited")
    )
    final = slack_server.find(preview.ts, OPS_CHANNEL[0])
    assert final is not None and "Applied by" in json.dumps(final.blocks)
    assert len([i for i in list_all(zone_env.zone.zone_id) if i["Type"] not in ("SOA", "NS")]) == 9


def test_an_invoke_refused_before_it_ran_says_nothing_was_applied(
    zone_env: ZoneEnv, mirror: Settings, make_harness: Callable[..., SlackHarness], slack_server: LocalSlack
) -> None:
    harness, preview = resynced(zone_env, make_harness)
    serve_locally(MIRROR, None)  # the real Invoke, refused by IAM
    denied = (
        "User: arn:aws:sts::123456789012:assumed-role/opsbot-slack/x is not authorized to perform: "
        "lambda:InvokeFunction on resource: arn:aws:lambda:us-east-1:123456789012:function:opsbot-dns-mirror"
    )
    invoke_client().meta.events.register("before-call.lambda.Invoke", refuse("AccessDeniedException", denied))
    harness.click(preview, "dns:apply")
    assert "missing the IAM permission `lambda:InvokeFunction`" in harness.last().text
    after = slack_server.find(preview.ts, OPS_CHANNEL[0])
    assert after is not None and "Nothing was applied" in json.dumps(after.blocks)


def test_an_apply_whose_state_cannot_be_recorded_still_reports_its_batches(
    zone_env: ZoneEnv, mirror: Settings
) -> None:
    """The batches are in Route 53 whatever the state table says afterwards: the answer says both."""
    from bot.aws.clients import client

    preview = worker.handle({"op": "preview", "domain": "example.com"}, mirror)
    plan = wire.preview_from_json(preview["preview"]).plan.fingerprint()

    def refuse_sync_state(params: dict[str, Any], **_: Any) -> Any:
        item = json.loads(params.get("body") or b"{}").get("Item", {})
        if item.get("sk", {}).get("S") == "state":
            return refuse("ProvisionedThroughputExceededException", "slow down")()
        return None

    dynamodb = client("dynamodb")
    dynamodb.meta.events.register("before-call.dynamodb.PutItem", refuse_sync_state)
    try:
        answer = worker.handle({"op": "apply", "domain": "example.com", "plan": plan, "actor": "U1"}, mirror)
    finally:
        dynamodb.meta.events.unregister("before-call.dynamodb.PutItem", refuse_sync_state)
    assert answer["ok"] and answer["outcome"] == "applied"
    result = wire.result_from_json(answer["result"])
    assert result.applied and any("sync state was not recorded" in note for note in result.notes)
    assert "sync state was not recorded" in json.dumps(result_blocks(result))
    assert len([i for i in list_all(zone_env.zone.zone_id) if i["Type"] not in ("SOA", "NS")]) == 9
    # The lock was released: the next apply is not refused as "another sync is running".
    again = worker.handle({"op": "apply", "domain": "example.com", "plan": "x", "actor": "U1"}, mirror)
    assert again["ok"] and again["superseded"]


def test_the_local_emulation_fails_an_answer_lambda_could_not_send() -> None:
    serve_locally("opsbot-odd", lambda event, context: {"when": object()})
    try:
        with pytest.raises(AwsError, match=r"Runtime\.MarshalError"):
            invoke("opsbot-odd", {}, purpose="the odd function")
    finally:
        serve_locally("opsbot-odd", None)


def test_an_answer_of_another_build_is_told_not_crashed_on(
    zone_env: ZoneEnv, make_harness: Callable[..., SlackHarness], slack_server: LocalSlack
) -> None:
    """A mirror function deployed from another build answers in a shape this one cannot read: a sentence
    that says so; after an Apply, that the batches may have been applied (the answer came: it ran)."""
    settings = Settings(state_table="opsbot-state", dns_zones_json=zones_json(zone_env))
    real = mirror_handler(settings)

    def older(event: Any, context: Any) -> Any:
        op = event.get(worker.REQUEST_KEY, {}).get("op")
        if op == "status":
            return {"ok": True, "text": "DNS mirror status: …", "blocks": []}
        answer = real(event, context)
        return {**answer, "result": {"text": "Applied"}} if op == "apply" else answer

    serve_locally(MIRROR, older)
    try:
        harness = remote_harness(zone_env, make_harness)
        harness.command("/dns", "status")
        told = harness.last().text
        assert "The DNS mirror function's status could not be read" in told and "Traceback" not in told
        assert "same build" in told
        harness.command("/dns", "resync example.com")
        [preview] = [m for m in harness.slack.visible(OPS_CHANNEL[0]) if "DNS resync" in json.dumps(m.blocks)]
        harness.click(preview, "dns:apply")
    finally:
        serve_locally(MIRROR, None)
    assert "The DNS mirror function's apply result could not be read" in harness.last().text
    after = slack_server.find(preview.ts, OPS_CHANNEL[0])
    assert after is not None and "may have been applied" in json.dumps(after.blocks)
