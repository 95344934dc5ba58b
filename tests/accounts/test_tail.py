"""A tail aimed at a member account reads that account's log groups: its poll workers and its Live Tail
reader are threads of their own, and they carry the request's account, region and person with them
(a thread without them would read opsbot's own account's groups of the same name)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from bot.aws.clients import Target, client, use_target
from bot.core.apilogs.tail import Tail
from tests.accounts.conftest import PROD_ACCOUNT, PROD_ROLE
from tests.apilogs.conftest import put_lines

GROUP = "/aws/lambda/orders-api"


@pytest.mark.parametrize("mode", ["poll", "live"])
def test_a_tail_in_a_member_account_reads_that_accounts_groups(
    aws: None, in_prod: Callable[[], Any], sts_calls: list[dict[str, Any]], mode: str
) -> None:
    start = int(time.time() * 1000) - 5_000
    client("logs").create_log_group(logGroupName=GROUP)
    put_lines(GROUP, "s", [(start + 1, "opsbot's own account")])
    with in_prod():
        client("logs").create_log_group(logGroupName=GROUP)
        put_lines(GROUP, "s", [(start + 1, "prod")])
        arn = client("logs").describe_log_groups(logGroupNamePrefix=GROUP)["logGroups"][0]["logGroupArn"]
    assert f":{PROD_ACCOUNT}:" in arn

    alice = Target(
        account="prod", role_arn=PROD_ROLE, external_id="x-prod", region="us-east-1", principal="U0ALICE"
    )
    seen: list[str] = []
    with use_target(alice):
        tail = Tail(
            [GROUP],
            start_ms=start,
            mode=mode,
            interval=0.05,
            group_arn=lambda _: arn,
            deadline=time.monotonic() + 5,
        )
        generator = tail.batches()
        for batch in generator:
            seen.extend(e.message for e in batch.events)
            if seen:
                break
        generator.close()
    assert seen == ["prod"]
    assert tail.summary.mode.startswith(mode)
    # Every call went with Alice's credentials for prod (no thread fell back to opsbot's own).
    assert {c["RoleSessionName"] for c in sts_calls} - {"opsbot-seed"} == {"opsbot-U0ALICE"}
