"""OPSBOT_ACCOUNTS: parsing, validation sentences and the default chain (pure)."""

from __future__ import annotations

import json

import pytest

from bot.core.common.accounts import (
    OWN_ACCOUNT,
    parse_accounts,
    person_of,
    role_name_of,
    session_name,
    source_identity,
)
from bot.errors import ConfigError, UsageError
from tests.accounts.conftest import ACCOUNTS, PROD_ROLE, accounts_json


def test_unset_means_no_accounts_and_the_own_account() -> None:
    accounts = parse_accounts("")
    assert not accounts.configured and not accounts.several
    assert accounts.choose(own_region="eu-west-1") == (OWN_ACCOUNT, "eu-west-1")
    assert accounts.choose(region="us-west-2", own_region="eu-west-1") == (OWN_ACCOUNT, "us-west-2")


def test_parse_and_default_chain() -> None:
    accounts = parse_accounts(accounts_json())
    assert accounts.names() == ("own", "prod", "staging") and accounts.several
    # No default marked: the entry without roleArn (opsbot's own) is the default.
    assert accounts.choose(own_region="us-east-1")[0].name == "own"
    # The channel's account comes before the default; --account before both.
    assert accounts.choose(channel_account="staging", own_region="us-east-1")[0].name == "staging"
    assert accounts.choose(asked="PROD", channel_account="staging", own_region="us-east-1")[0].name == "prod"
    marked = parse_accounts(accounts_json(prod={**ACCOUNTS["prod"], "default": True}))
    assert marked.choose(own_region="us-east-1")[0].name == "prod"
    prod = marked.get("prod")
    assert prod is not None and prod.account_id == "222222222222"
    assert prod.role_for(mutating=False) == PROD_ROLE and prod.role_for(mutating=True).endswith(
        "opsbot-change"
    )


def test_region_default_and_refusal() -> None:
    accounts = parse_accounts(accounts_json())
    assert (
        accounts.choose(asked="prod", region="ap-southeast-1", own_region="us-east-1")[1] == "ap-southeast-1"
    )
    # The own region when the account allows it, else the account's first region.
    assert accounts.choose(asked="prod", own_region="eu-west-1")[1] == "us-east-1"
    with pytest.raises(UsageError) as refused:
        accounts.choose(asked="prod", region="eu-west-1", own_region="us-east-1")
    assert "Account `prod` is not configured for region `eu-west-1`" in str(refused.value)
    assert "`us-east-1`, `ap-southeast-1`" in str(refused.value)
    with pytest.raises(UsageError, match="not an AWS region name"):
        accounts.choose(region="mars-1", own_region="us-east-1")


def test_unknown_account_lists_the_configured_ones() -> None:
    with pytest.raises(UsageError) as unknown:
        parse_accounts(accounts_json()).named("production")
    assert "There is no account `production`. The configured accounts are: `own`, `prod`, `staging`." in str(
        unknown.value
    )
    with pytest.raises(UsageError, match="no accounts configured"):
        parse_accounts("").named("prod")


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("{", "is not valid JSON"),
        ("[]", "must be a JSON object of accounts"),
        (json.dumps({"prod": {"rolearn": "x"}}), "unknown keys: rolearn"),
        (json.dumps({"prod": {"roleArn": "arn:aws:iam::1:role/x"}}), "is not an IAM role ARN"),
        (
            json.dumps({"prod": {"roleArn": PROD_ROLE, "regions": ["moon"]}}),
            "'moon', which is not an AWS region",
        ),
        (
            json.dumps({"a": {"default": True}, "b": {"roleArn": PROD_ROLE, "default": True}}),
            "several accounts as default",
        ),
        (json.dumps({"a": {}, "b": {}}), "several entries without roleArn"),
        (json.dumps({"a b": {}}), "not a usable account name"),
        (json.dumps({"a": {"externalId": "xx"}}), "externalId but no roleArn"),
        (json.dumps({"a": {"roleArn": PROD_ROLE, "externalId": "a b"}}), "externalId must be"),
        (
            json.dumps({"a": {"roleArn": PROD_ROLE, "changeRoleArn": "arn:aws:iam::999999999999:role/c"}}),
            "different accounts",
        ),
    ],
)
def test_malformed_configuration_is_a_sentence(text: str, says: str) -> None:
    with pytest.raises(ConfigError, match=says):
        parse_accounts(text)


def test_session_names_follow_sts_rules() -> None:
    assert session_name("U0ALICE") == "opsbot-U0ALICE"
    assert session_name("opsbot-dns_mirror") == "opsbot-dns_mirror"
    assert source_identity("U0ALICE") == "U0ALICE"
    assert session_name("cli-jo hn/x") == "opsbot-cli-jo-hn-x"
    assert len(session_name("U" * 100)) == 64
    # STS's \w is ASCII's: a login or user name with other letters is sanitised, not refused by STS.
    assert session_name("cli-josé") == "opsbot-cli-jos-" and source_identity("cli-ünal") == "cli--nal"


@pytest.mark.parametrize(
    ("arn", "person", "role"),
    [
        # IAM Identity Center: the session name is the user's.
        (
            "arn:aws:sts::111122223333:assumed-role/AWSReservedSSO_Ops_0123abcd/jane.doe@example.com",
            "jane.doe@example.com",
            "AWSReservedSSO_Ops_0123abcd",
        ),
        ("arn:aws:iam::111122223333:user/admins/jane", "jane", ""),
        ("arn:aws-cn:sts::111122223333:federated-user/bob", "bob", ""),
        ("arn:aws:iam::111122223333:root", "", ""),
        ("not an arn", "", ""),
        ("", "", ""),
    ],
)
def test_the_person_a_caller_identity_names(arn: str, person: str, role: str) -> None:
    assert (person_of(arn), role_name_of(arn)) == (person, role)
