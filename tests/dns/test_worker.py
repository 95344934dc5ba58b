"""The /dns work sent to the DNS mirror function: its requests, its answers, and Lambda's failures."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from botocore.response import StreamingBody

from bot.aws.functions import invoke, invoke_client, serve_locally
from bot.aws.route53 import change_client
from bot.config import Settings
from bot.core.dns import worker
from bot.core.dns.commands import mirror_handler
from bot.core.dns.config import MasterAddress
from bot.errors import AwsError, OpsbotError, UsageError
from bot.local.dns_master import free_port
from bot.local.slack_api import LocalSlack
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
    assert "dns:apply" in json.dumps(answer["blocks"])  # the new preview, with its own fingerprint
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

    def capture(params: dict[str, Any], **_: Any) -> None:
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

    preview = worker.handle({"op": "preview", "domain": "example.com", "buttons": True}, mirror)
    plan = json.loads(find_button(preview["blocks"], "dns:apply")[0]["value"])["plan"]

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
    assert "sync state was not recorded" in json.dumps(answer["blocks"])
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
