"""Read scopes (issue 11, defect 9): what /apilogs may read, per channel, through signed requests into the
real Bolt app. A read outside the scope is refused with a sentence naming what is allowed; a log group
outside it is never read, which the tests check on the AWS calls actually made (every boto3 call is
recorded)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from bot.aws.clients import client
from bot.config import Settings
from bot.core.apilogs.commands import plan_tail
from bot.core.apilogs.scope import ReadLimit, opsbot_log_prefixes
from bot.errors import NotAllowedError
from bot.local.seeds import apilogs as seed_module
from bot.security.policy import ReadScope
from tests.conftest import ONCALL_POLICY
from tests.support.slack import ALICE, OPS_CHANNEL, SlackHarness

GENERAL = ("C0GENERAL", "general")
# The log-reading calls, and where each names its groups.
LOG_READS = {"FilterLogEvents", "StartLiveTail", "DescribeLogGroups", "GetLogEvents", "StartQuery"}

Call = tuple[str, str, dict[str, Any]]


@pytest.fixture
def aws_calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Call]]:
    """Every AWS call any boto3 client makes: (service, operation, parameters)."""
    from botocore.client import BaseClient

    calls: list[Call] = []
    original = BaseClient._make_api_call

    def record(self: Any, operation: str, params: dict[str, Any]) -> Any:
        calls.append((self.meta.service_model.service_name, operation, dict(params)))
        return original(self, operation, params)

    monkeypatch.setattr(BaseClient, "_make_api_call", record)
    yield calls


def log_reads(calls: list[Call]) -> list[Call]:
    return [c for c in calls if c[0] == "logs" and c[1] in LOG_READS]


def groups_read(calls: list[Call]) -> set[str]:
    found: set[str] = set()
    for _, _, params in log_reads(calls):
        for key in ("logGroupName", "logGroupNamePrefix", "logGroupIdentifier"):
            if params.get(key):
                found.add(str(params[key]))
        found.update(str(g) for g in params.get("logGroupIdentifiers") or [])
    return found


@pytest.fixture
def scoped(make_harness: Callable[..., SlackHarness]) -> Callable[..., SlackHarness]:
    """The app with the on-call policy plus these read scopes."""

    def make(scopes: list[dict[str, Any]] | None) -> SlackHarness:
        policy: dict[str, Any] = dict(ONCALL_POLICY)
        if scopes is not None:
            policy["read_scopes"] = scopes
        return make_harness(OPSBOT_POLICY=json.dumps(policy))

    return make


def reply_of(harness: SlackHarness, channel: tuple[str, str] = OPS_CHANNEL) -> str:
    message = harness.last(ALICE)
    assert message.channel == channel[0]
    return message.text + json.dumps(message.blocks)


def test_lookup_inside_the_scope_reads_only_the_groups_it_allows(
    scoped: Callable[..., SlackHarness], demo: seed_module.DemoApi, aws_calls: list[Call]
) -> None:
    assert demo.failed is not None
    allowed = ("API-Gateway-Execution-Logs_", "/aws/apigateway/")
    harness = scoped(
        [{"channels": ["C0OPS"], "apis": ["shop-api"], "stages": ["prod"], "log_groups": list(allowed)}]
    )
    aws_calls.clear()
    harness.command("/apilogs", demo.failed.api_request_id)
    flat = reply_of(harness)
    assert "POST /orders" in flat and "502" in flat  # the API Gateway side, read
    read = groups_read(aws_calls)
    assert read and all(group.startswith(allowed) for group in read), read
    # The functions' groups were not read, and the answer says so.
    assert "Not read, outside what this channel may read" in flat and "/aws/lambda/orders-api" in flat


def test_lookup_of_an_api_outside_the_scope_is_refused_and_reads_no_logs(
    scoped: Callable[..., SlackHarness], demo: seed_module.DemoApi, aws_calls: list[Call]
) -> None:
    assert demo.failed is not None
    harness = scoped([{"channels": ["C0OPS"], "apis": ["billing-api"], "description": "billing team"}])
    aws_calls.clear()
    harness.command("/apilogs", f"{demo.failed.api_request_id} --api shop-api")
    text = harness.last(ALICE).text
    assert text == (
        f":no_entry: Reading API `shop-api` ({demo.api_id}) is not allowed in this channel: here, /apilogs may "
        "read only API `billing-api` (billing team)."
    )
    assert log_reads(aws_calls) == []


def test_a_stage_outside_the_scope_is_refused(
    scoped: Callable[..., SlackHarness], demo: seed_module.DemoApi, aws_calls: list[Call]
) -> None:
    assert demo.failed is not None
    harness = scoped([{"apis": ["shop-*"], "stages": ["staging"]}])
    aws_calls.clear()
    harness.command("/apilogs", f"{demo.failed.api_request_id} --stage prod")
    assert "Reading stage `prod` of shop-api is not allowed in this channel" in harness.last(ALICE).text
    assert "only API `shop-*`, stage `staging`" in harness.last(ALICE).text
    # Without --stage, the scope's one stage is the default: the API has no such stage.
    harness.command("/apilogs", demo.failed.api_request_id)
    assert "has no stage `staging`; its stages are: prod." in harness.last(ALICE).text
    # A scope naming no one stage: the API's stages inside it are offered, here none.
    globbed = scoped([{"apis": ["shop-*"], "stages": ["stag*"]}])
    globbed.command("/apilogs", demo.failed.api_request_id)
    assert "Reading any stage of shop-api is not allowed" in globbed.last(ALICE).text
    assert log_reads(aws_calls) == []


def test_a_channel_no_scope_applies_to_reads_nothing_and_a_listed_one_reads(
    scoped: Callable[..., SlackHarness], demo: seed_module.DemoApi, aws_calls: list[Call]
) -> None:
    assert demo.failed is not None
    harness = scoped([{"channels": ["C0GENERAL"], "apis": ["shop-api"]}])
    aws_calls.clear()
    harness.command("/apilogs", demo.failed.api_request_id)
    assert "none applies here" in harness.last(ALICE).text
    assert log_reads(aws_calls) == []
    harness.command("/apilogs", demo.failed.api_request_id, channel=GENERAL)
    assert "KeyError" in reply_of(harness, GENERAL)


def test_the_only_api_of_the_scope_is_the_default_and_others_are_not_offered(
    scoped: Callable[..., SlackHarness], demo: seed_module.DemoApi
) -> None:
    assert demo.failed is not None
    client("apigateway").create_rest_api(name="billing-api")
    client("apigateway").create_rest_api(name="hr-api")
    unscoped = scoped(None)
    unscoped.command("/apilogs", demo.failed.api_request_id)
    assert "Which API?" in unscoped.last(ALICE).text  # two APIs, no default: asked
    harness = scoped([{"apis": ["shop-api"]}])
    harness.command("/apilogs", demo.failed.api_request_id)
    assert "KeyError" in reply_of(harness)
    two = scoped([{"apis": ["shop-api", "billing-api"]}])
    two.command("/apilogs", demo.failed.api_request_id)
    asked = two.last(ALICE).text
    assert "Which API?" in asked and "billing-api" in asked and "hr-api" not in asked


def test_opsbots_own_function_logs_are_not_read_unless_the_scope_allows_them(
    scoped: Callable[..., SlackHarness],
    demo: seed_module.DemoApi,
    aws_calls: list[Call],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Here opsbot's stack is called ``orders``: ``orders-api`` is one of its functions, whose log holds
    opsbot's audit lines."""
    assert demo.failed is not None
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "orders-slack")
    harness = scoped(None)  # a policy without read scopes: everything else as before
    aws_calls.clear()
    harness.command("/apilogs", demo.failed.api_request_id)
    flat = reply_of(harness)
    assert "POST /orders" in flat
    read = groups_read(aws_calls)
    assert "/aws/lambda/orders-api" not in read and any(g.startswith("API-Gateway") for g in read)
    assert "opsbot&#39;s own logs" in flat or "opsbot's own logs" in flat
    allowed = scoped([{"opsbot_logs": True}])
    aws_calls.clear()
    allowed.command("/apilogs", demo.failed.api_request_id)
    assert "/aws/lambda/orders-api" in groups_read(aws_calls)
    assert "KeyError" in reply_of(allowed)


def test_tail_outside_the_scope_is_refused_before_anything_is_posted_or_read(
    scoped: Callable[..., SlackHarness], demo: seed_module.DemoApi, aws_calls: list[Call]
) -> None:
    harness = scoped([{"apis": ["billing-api"]}])
    aws_calls.clear()
    harness.command("/apilogs", "tail --api shop-api --for 5s")
    assert ":no_entry: Reading API `shop-api`" in harness.last(ALICE).text
    assert log_reads(aws_calls) == [] and harness.slack.calls_to("chat.postMessage") == []


def test_a_tail_leaves_out_the_groups_outside_the_scope(
    demo: seed_module.DemoApi, aws_calls: list[Call]
) -> None:
    limit = ReadLimit(ReadScope(log_groups=("/aws/lambda/orders-", "/aws/lambda/users-")))
    aws_calls.clear()
    plan = plan_tail(
        Settings.from_env({"AWS_REGION": "us-east-1"}), api="shop-api", duration="5s", limit=limit
    )
    assert plan.groups == ["/aws/lambda/orders-api", "/aws/lambda/users-api"]
    (note,) = [n for n in plan.tail.summary.notes if n.startswith("Not read")]
    assert "API-Gateway-Execution-Logs_" in note and "/aws/lambda/payments-api" in note
    assert log_reads(aws_calls) == []
    with pytest.raises(NotAllowedError, match="None of the log groups of shop-api"):
        plan_tail(
            Settings.from_env({"AWS_REGION": "us-east-1"}),
            api="shop-api",
            limit=ReadLimit(ReadScope(log_groups=("/aws/lambda/billing-",))),
        )


def test_opsbots_own_log_prefixes_come_from_its_lambda_environment() -> None:
    assert opsbot_log_prefixes({}) == ()
    assert opsbot_log_prefixes(
        {"AWS_LAMBDA_FUNCTION_NAME": "opsbot-slack", "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/opsbot-slack"}
    ) == ("/aws/lambda/opsbot-", "/aws/lambda/opsbot-slack")
    assert opsbot_log_prefixes({"AWS_LAMBDA_FUNCTION_NAME": "custom"}) == ("/aws/lambda/custom",)
