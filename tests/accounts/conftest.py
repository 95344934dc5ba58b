"""Two AWS accounts in moto: opsbot's own (123456789012) and a member account (222222222222) reached by
an assumed role, each with its own data. moto does not enforce trust policies or external ids (see the
architecture's known gaps): the refusals are tested with botocore's Stubber and AWS's documented answers."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from bot.aws.clients import Target, use_target

OWN_ACCOUNT = "123456789012"
PROD_ACCOUNT = "222222222222"
PROD_ROLE = f"arn:aws:iam::{PROD_ACCOUNT}:role/opsbot-read"
PROD_CHANGE_ROLE = f"arn:aws:iam::{PROD_ACCOUNT}:role/opsbot-change"
STAGING_ROLE = "arn:aws:iam::333333333333:role/opsbot-read"

ACCOUNTS = {
    "own": {"regions": ["us-east-1"]},
    "prod": {
        "roleArn": PROD_ROLE,
        "changeRoleArn": PROD_CHANGE_ROLE,
        "externalId": "opsbot-prod-1",
        "regions": ["us-east-1", "ap-southeast-1"],
    },
    "staging": {"roleArn": STAGING_ROLE, "externalId": "opsbot-staging", "regions": ["us-east-1"]},
}


def accounts_json(**changes: Any) -> str:
    return json.dumps({**ACCOUNTS, **changes})


@pytest.fixture
def in_prod(aws: None) -> Callable[[], Any]:
    """A context manager: AWS calls inside go to the prod account (as a seed would make them)."""

    def enter() -> Any:
        return use_target(
            Target(
                account="prod", role_arn=PROD_ROLE, external_id="x-seed", region="us-east-1", principal="seed"
            )
        )

    return enter


@pytest.fixture
def sts_calls() -> Iterator[list[dict[str, Any]]]:
    """Every sts:AssumeRole request the code under test sends (parameters as botocore sends them)."""
    from bot.aws import clients

    seen: list[dict[str, Any]] = []

    def hook(service: str, created: Any) -> None:
        if service == "sts":
            created.meta.events.register(
                "provide-client-params.sts.AssumeRole", lambda params, **_: seen.append(dict(params))
            )

    remove = clients.add_client_hook(hook)
    yield seen
    remove()
