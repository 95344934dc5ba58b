"""The CLI's --account, --region and --profile: on every command, before or after its name."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bot.aws.fanout import FANOUT_TABLE_DEFINITION, register_like_cli
from bot.aws.state import create_table
from bot.cli import main
from tests.accounts.conftest import PROD_ACCOUNT, accounts_json
from tests.fanout.conftest import KINESIS_ARN


@pytest.fixture
def two_tables(aws: None, in_prod: Callable[[], Any], monkeypatch: pytest.MonkeyPatch) -> None:
    create_table("fanoutTargets", FANOUT_TABLE_DEFINITION)
    register_like_cli(
        "fanoutTargets", source_arn=KINESIS_ARN, target_id="own-t", target_type="sqs", destination="q"
    )
    with in_prod():
        create_table("fanoutTargets", FANOUT_TABLE_DEFINITION)
        register_like_cli(
            "fanoutTargets",
            source_arn=KINESIS_ARN.replace("123456789012", PROD_ACCOUNT),
            target_id="prod-t",
            target_type="sqs",
            destination="q",
        )
    monkeypatch.setenv("OPSBOT_ACCOUNTS", accounts_json())


def targets(capsys: pytest.CaptureFixture[str], *argv: str) -> list[str]:
    assert main(list(argv)) == 0
    document = json.loads(capsys.readouterr().out)
    return [t["id"] for source in document["sources"] for t in source["targets"]]


def test_account_before_or_after_the_command(
    two_tables: None, capsys: pytest.CaptureFixture[str], sts_calls: list[dict[str, Any]]
) -> None:
    assert targets(capsys, "fanout", "list", "--json") == ["own-t"]
    assert targets(capsys, "--account", "prod", "fanout", "list", "--json") == ["prod-t"]
    assert targets(capsys, "fanout", "list", "--json", "--account=prod", "--region", "us-east-1") == [
        "prod-t"
    ]
    assert sts_calls[0]["RoleSessionName"].startswith("opsbot-cli-")
    assert sts_calls[0]["ExternalId"] == "opsbot-prod-1"


def test_bad_account_or_region_is_a_usage_error_with_json(
    two_tables: None, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["fanout", "list", "--json", "--account", "nope"]) == 2
    document = json.loads(capsys.readouterr().out)
    assert document["reason"] == "usage" and "`own`, `prod`, `staging`" in document["message"]
    assert main(["fanout", "list", "--json", "--account", "prod", "--region", "eu-west-1"]) == 2
    assert "not configured for region `eu-west-1`" in json.loads(capsys.readouterr().out)["message"]
    assert main(["fanout", "list", "--account"]) == 2


def test_profile_uses_its_credentials_as_they_are(
    two_tables: None,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    sts_calls: list[dict[str, Any]],
) -> None:
    credentials = tmp_path / "credentials"
    credentials.write_text("[ops]\naws_access_key_id = testing\naws_secret_access_key = testing\n")
    config = tmp_path / "config"
    config.write_text("[profile ops]\nregion = us-east-1\n")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    assert targets(capsys, "--profile", "ops", "fanout", "list", "--json") == ["own-t"]
    assert sts_calls == []  # no role assumed
    assert main(["--profile", "ops", "--account", "prod", "fanout", "list"]) == 2
    assert "give one of them" in capsys.readouterr().err


def test_the_doctors_region_and_account_are_the_global_flags() -> None:
    """`opsbot doctor --region R --account NAME` means what it means on every command (docs/accounts.md);
    the account id the credentials must be in is `--expect-account`, the doctor's own."""
    from bot.cli import build_parser, take_global_flags

    argv, chosen = take_global_flags(
        build_parser(), ["doctor", "--region", "eu-west-1", "--account", "prod", "--expect-account", "1" * 12]
    )
    assert argv == ["doctor", "--expect-account", "1" * 12]
    assert chosen == {"region": "eu-west-1", "account": "prod"}
    argv, chosen = take_global_flags(build_parser(), ["--region", "eu-west-1", "doctor"])
    assert argv == ["doctor"] and chosen == {"region": "eu-west-1"}
