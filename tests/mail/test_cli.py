"""``opsbot mail``: one JSON document with --json, sentences and non-zero exits for bad input."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from botocore.stub import Stubber

from bot.aws.state import StateTable
from bot.cli import main
from tests.support.events import EVENTS_DIR


@pytest.fixture
def cli_env(mailing_table: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPSBOT_MAILING_TABLE", mailing_table)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["mail", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_feed_then_status_json(cli_env: None, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "feed", str(EVENTS_DIR / "sns_ses_complaint.json"), "--json")
    assert code == 0
    assert json.loads(out)["batches"][0]["disabled"] == ["angry@example.com"]
    code, out, _ = run(capsys, "status", "Angry@Example.com", "--json")
    document = json.loads(out)  # exactly one JSON document
    assert code == 0
    assert (document["address"], document["state"], document["sticky"]) == (
        "angry@example.com",
        "disable",
        True,
    )
    assert document["complaintFeedbackType"] == "abuse"
    code, out, _ = run(capsys, "status", "angry@example.com")
    assert code == 0 and out.startswith(
        "angry@example.com: Disabled — complaint since 2024-05-03T12:00:05.000Z"
    )


def test_invalid_address_exits_non_zero_with_a_sentence(
    cli_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "status", "not-an-address", "--json")
    assert code == 2
    # stdout holds exactly one document on every outcome; the sentence also goes to stderr.
    assert json.loads(out) == {"ok": False, "reason": "usage", "message": "`not-an-address` is not an e-mail "
                               "address (expected one @, as in jane@example.com)."}  # fmt: skip
    assert "`not-an-address` is not an e-mail address" in err


def test_reenable_and_suppress_are_audited(
    cli_env: None, state_table: str, capsys: pytest.CaptureFixture[str]
) -> None:
    run(capsys, "feed", str(EVENTS_DIR / "sns_ses_bounce_permanent.json"))
    code, out, _ = run(capsys, "reenable", "jane.doe@example.com", "--json")
    assert code == 0
    result = json.loads(out)
    assert (result["changed"], result["before"], result["state"]) == (True, "disable", "enable")
    code, out, _ = run(capsys, "suppress", "jane.doe@example.com", "--reason", "complaint")
    assert code == 0 and "Suppressed by" in out  # it had just been re-enabled
    code, _, err = run(capsys, "reenable", "ghost@example.com")
    assert code == 1 and "nothing to re-enable" in err  # not found
    day = datetime.now(UTC).date().isoformat()
    records = StateTable(state_table).audit_of_day(day)
    outcomes = sorted((r["command"], r["outcome"]) for r in records)
    assert outcomes == [
        ("opsbot mail reenable", "error"),
        ("opsbot mail reenable", "ok"),
        ("opsbot mail suppress", "ok"),
    ]
    assert all(r["kind"] == "cli" and r["user"].startswith("cli:") for r in records)


def test_reenable_that_only_changes_the_suppression_list_is_audited_as_a_change(
    cli_env: None, state_table: str, sesv2: Stubber, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    monkeypatch.setenv("OPSBOT_SES_SUPPRESSION", "1")
    run(capsys, "feed", str(EVENTS_DIR / "sns_ses_delivery.json"))
    address = "happy@example.com"
    sesv2.add_response("delete_suppressed_destination", {}, {"EmailAddress": address})
    sesv2.add_client_error(
        "get_suppressed_destination", service_error_code="NotFoundException", http_status_code=404
    )
    code, out, _ = run(capsys, "reenable", address)
    assert code == 0
    assert out.startswith(f"{address}: Re-enabled (already enabled in the mailing table) by ")
    assert "removed from the SES suppression list" in out and "nothing changed" not in out
    records = StateTable(state_table).audit_of_day(datetime.now(UTC).date().isoformat())
    assert [(r["command"], r["outcome"]) for r in records] == [("opsbot mail reenable", "ok")]


def test_stats_json(cli_env: None, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "stats", "--since", "3d", "--json")
    document = json.loads(out)
    assert code == 0
    assert document["counts"]["recipients"] == 0
    assert document["bounceRate"] is None and document["bounceLevel"] == "unknown"
    code, _, err = run(capsys, "stats", "--since", "tomorrow-ish")
    assert code == 2 and "Cannot read" in err


def test_feed_reports_unreadable_files(
    cli_env: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    code, _, err = run(capsys, "feed", str(broken))
    assert code == 2 and "is not JSON" in err
    code, _, err = run(capsys, "feed", str(tmp_path / "missing.json"))
    assert code == 2 and "Cannot read" in err


def test_an_address_with_its_display_name(cli_env: None, capsys: pytest.CaptureFixture[str]) -> None:
    run(capsys, "feed", str(EVENTS_DIR / "sns_ses_complaint.json"))
    for argv in (["Angry Person <angry@example.com>"], ["Angry", "Person", "<angry@example.com>"],
                 ['"Person, Angry" <angry@example.com>'], ["<mailto:angry@example.com|angry@example.com>"]):  # fmt: skip
        code, out, _ = run(capsys, "status", *argv, "--json")
        assert code == 0 and json.loads(out)["address"] == "angry@example.com"
    code, out, _ = run(capsys, "reenable", "Angry Person <angry@example.com>", "--json")
    assert code == 0 and json.loads(out)["state"] == "enable"
