"""The doctor's Slack checks, `/ops doctor` through signed requests into the real Bolt app, and
`opsbot doctor` from the command line."""

from __future__ import annotations

import json

import pytest

from bot.config import Settings
from bot.core.ops.checks import slack as checks
from bot.core.ops.checks.slack import SlackAuth, SlackChannel
from bot.core.ops.doctor import Finding, run_probes
from bot.errors import OpsbotError
from bot.local.slack_api import LocalSlack
from tests.support.slack import SlackHarness


class FakeReader:
    def __init__(
        self, scopes: tuple[str, ...] | None, channels: dict[str, SlackChannel] | None = None
    ) -> None:
        self.scopes = scopes
        self.channels = channels or {}

    def auth(self) -> SlackAuth:
        if self.scopes == ("revoked",):
            raise OpsbotError("Slack answered token_revoked to auth.test")
        return SlackAuth("acme", "T0ACME", "U0BOT", self.scopes)

    def channel(self, channel_id: str) -> SlackChannel:
        if channel_id not in self.channels:
            raise OpsbotError("Slack answered channel_not_found to conversations.info")
        return self.channels[channel_id]


def slack_findings(
    reader: FakeReader | None, *, signing: bool = True, alert: str = "C0ALERTS"
) -> list[Finding]:
    settings = Settings.from_env({"OPSBOT_ALERT_CHANNEL": alert})
    return run_probes(checks.probes(settings, reader, signing_secret_set=signing), timeout=5).findings


def by_check(findings: list[Finding]) -> dict[str, Finding]:
    return {f.check: f for f in findings}


def test_every_scope_granted_and_a_member_of_the_alert_channel_is_ok() -> None:
    reader = FakeReader(
        checks.manifest_scopes(), {"C0ALERTS": SlackChannel("C0ALERTS", "alerts", True, False)}
    )
    found = by_check(slack_findings(reader))
    assert {f.status for f in found.values()} == {"ok"}
    assert set(found) == {"signing secret", "token", "scopes", "can post in the mail alert channel"}


def test_a_missing_scope_fails_and_says_to_reinstall() -> None:
    granted = tuple(s for s in checks.manifest_scopes() if s != "usergroups:read")
    finding = by_check(slack_findings(FakeReader(granted)))["scopes"]
    assert finding.status == "fail"
    assert "usergroups:read" in finding.detail and "reinstall" in finding.fix


def test_no_scope_header_is_a_skip_and_a_revoked_token_fails() -> None:
    assert by_check(slack_findings(FakeReader(None)))["scopes"].status == "skip"
    token = by_check(slack_findings(FakeReader(("revoked",))))["token"]
    assert token.status == "fail" and "token_revoked" in token.detail


def test_a_channel_the_bot_is_not_in_fails_with_the_invite() -> None:
    reader = FakeReader(
        checks.manifest_scopes(), {"C0ALERTS": SlackChannel("C0ALERTS", "alerts", False, False)}
    )
    finding = by_check(slack_findings(reader))["can post in the mail alert channel"]
    assert finding.status == "fail" and "/invite @opsbot" in finding.fix
    archived = FakeReader(
        checks.manifest_scopes(), {"C0ALERTS": SlackChannel("C0ALERTS", "alerts", True, True)}
    )
    assert (
        by_check(slack_findings(archived))["can post in the mail alert channel"].detail
        == "the channel is archived"
    )
    unknown = by_check(slack_findings(FakeReader(checks.manifest_scopes()), alert="C0GONE"))
    assert unknown["can post in the mail alert channel"].status == "fail"


def test_no_signing_secret_and_no_token_are_said() -> None:
    found = by_check(slack_findings(None, signing=False))
    assert found["signing secret"].status == "fail"
    assert found["token"].status == "skip" and "SLACK_BOT_TOKEN" in found["token"].fix
    # A terminal without the app's secrets cannot know: not a failure of the deployment.
    assert by_check(slack_findings(None, signing=None))["signing secret"].status == "skip"


# -- through Slack ---------------------------------------------------------------------------------


def test_ops_doctor_answers_with_sections_worst_first(
    harness: SlackHarness, slack_server: LocalSlack
) -> None:
    slack_server.scopes = tuple(s for s in slack_server.scopes if s != "files:write")
    ack = harness.command("/ops", "doctor --only slack,aws,apilogs")
    assert ack.status == 200
    answer = harness.last()
    text = json.dumps(answer.blocks)
    assert "opsbot doctor" in text
    assert "files:write" in text and "reinstall" in text  # the failing scope check, with its fix
    sections = [b["text"]["text"] for b in answer.blocks if b["type"] == "section"]
    assert sections[1].startswith("*Slack*")  # the area with a failure comes first
    assert "Not wired yet" in sections[0]
    assert any("*AWS*" in s for s in sections)


def test_ops_doctor_refuses_bad_input_in_the_ack(harness: SlackHarness) -> None:
    assert "not an AWS region" in harness.command("/ops", "doctor --region mars").text
    assert "Unknown area" in harness.command("/ops", "doctor --only weather").text
    assert "12 digits" in harness.command("/ops", "doctor --expect-account 42").text


def test_ops_doctor_is_listed_in_help(harness: SlackHarness) -> None:
    assert "doctor" in harness.command("/ops", "help").text


# -- from the terminal -----------------------------------------------------------------------------


def test_cli_doctor_json_document_and_exit_code(state_table: str, capsys: pytest.CaptureFixture[str]) -> None:
    from bot.cli import main

    code = main(["doctor", "--only", "aws,apilogs", "--json"])
    document = json.loads(capsys.readouterr().out)
    assert set(document["summary"]) == {"ok", "warn", "fail", "skip"}
    assert all(set(c) == {"area", "check", "target", "status", "detail", "fix"} for c in document["checks"])
    assert code == (1 if document["summary"]["fail"] else 0)
    assert code == 1  # moto's account has no API Gateway CloudWatch role
    assert document["checks"][0]["status"] == "fail"


def test_cli_doctor_table_and_usage_errors(state_table: str, capsys: pytest.CaptureFixture[str]) -> None:
    from bot.cli import main

    assert main(["doctor", "--only", "aws"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split() == ["STATUS", "AREA", "CHECK", "TARGET"]
    assert "state table" in out
    assert main(["doctor", "--only", "nope"]) == 2
    assert "Unknown area" in capsys.readouterr().err


def test_cli_doctor_with_aws_unreachable_says_it_once_and_exits_1(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Nothing listens on 127.0.0.1:9: the identity check fails, every other AWS area is one skip."""
    from bot.aws.clients import clear_caches
    from bot.cli import main

    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    clear_caches()
    code = main(["doctor", "--json", "--timeout", "20"])
    document = json.loads(capsys.readouterr().out)
    assert code == 1
    checks = document["checks"]
    identity = next(c for c in checks if c["check"] == "identity")
    assert identity["status"] == "fail" and "endpoint" in identity["fix"]
    skipped = {c["area"] for c in checks if c["check"] == "AWS reads"}
    assert skipped == {"aws", "apilogs", "mail", "device", "dns", "fanout"}
    assert document["seconds"] < 15


class Unreachable(FakeReader):
    def auth(self) -> SlackAuth:
        from bot.core.ops.checks.slack import SlackUnreachable

        raise SlackUnreachable("Slack could not be reached for auth.test (URLError)")

    def channel(self, channel_id: str) -> SlackChannel:
        self.auth()
        raise AssertionError


def test_slack_out_of_reach_is_not_blamed_on_the_token() -> None:
    found = by_check(slack_findings(Unreachable(None)))
    assert found["token"].status == "warn" and "could not be reached" in found["token"].detail
    assert "slack.com" in found["token"].fix and "OAuth" not in found["token"].fix
    assert found["can post in the mail alert channel"].status == "skip"


def test_cli_doctor_says_why_the_slack_secret_could_not_be_read(
    state_table: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """OPSBOT_SLACK_SECRET_ID names a secret that does not exist: Slack is not checked, and the answer
    says why, instead of a failing signing secret and the advice to put it there."""
    from bot.cli import main

    monkeypatch.setenv("OPSBOT_SLACK_SECRET_ID", "opsbot/nowhere")
    monkeypatch.delenv("SLACK_BOT_TOKEN", raising=False)
    monkeypatch.delenv("SLACK_SIGNING_SECRET", raising=False)
    main(["doctor", "--only", "slack", "--json"])
    checks = {c["check"]: c for c in json.loads(capsys.readouterr().out)["checks"]}
    assert checks["signing secret"]["status"] == "skip"
    assert checks["token"]["status"] == "warn" and "opsbot/nowhere" in checks["token"]["detail"]
