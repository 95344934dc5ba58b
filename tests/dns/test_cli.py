from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import pytest

from bot.cli import main
from bot.core.dns.tsig import TsigKey
from bot.local.dns_master import zone_text
from tests.dns.conftest import BASE_RECORDS, DOMAIN, ZoneEnv


@pytest.fixture
def configured(zone_env: ZoneEnv, monkeypatch: pytest.MonkeyPatch) -> ZoneEnv:
    monkeypatch.setenv("OPSBOT_STATE_TABLE", zone_env.state.name)
    monkeypatch.setenv(
        "OPSBOT_DNS_ZONES",
        json.dumps(
            [{"domain": "example.com", "master": str(zone_env.zone.master), "zone_id": zone_env.zone.zone_id}]
        ),
    )
    return zone_env


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["dns", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_plan_then_resync_then_status(configured: ZoneEnv, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "plan", "example.com")
    assert code == 0 and "9 to create, 0 to update, 0 to delete in 1 batch" in out
    code, out, _ = run(capsys, "resync", "example.com", "--json")
    document = json.loads(out)
    assert code == 0 and (document["changes"], document["batches"], document["applied"]) == (9, 1, False)
    code, out, err = run(capsys, "resync", "example.com", "--apply", "--json")
    document = json.loads(out)
    assert code == 0 and document["applied"] is True and document["applied_batches"] == [1]
    assert "batch 1/1: applied" in err
    code, out, _ = run(capsys, "status", "--json")
    (zone,) = json.loads(out)["zones"]
    assert code == 0 and zone["master_serial"] == 100
    assert (zone["verdict"], zone["serial_drift"], zone["pending"], zone["in_sync"]) == (
        "in sync",
        "none",
        0,
        True,
    )
    assert zone["reason"].startswith("Route 53 and the master are at serial 100; the last full check (")
    code, out, _ = run(capsys, "status", "example.com")
    assert out.splitlines()[0].startswith(f"example.com -> {configured.zone.zone_id}: in sync: Route 53 and")
    assert "pending" not in out and "?" not in out
    assert zone["last_check"]["outcome"] == "applied" and zone["last_check"]["master_serial"] == 100
    code, out, _ = run(capsys, "mirror", "example.com", "--json")
    assert code == 0 and json.loads(out)["status"] == "up-to-date"


def test_resync_refused_by_a_guard_exits_1_until_forced(
    configured: ZoneEnv, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    zone = {
        "domain": "example.com",
        "master": str(configured.zone.master),
        "zone_id": configured.zone.zone_id,
    }
    # This zone has 9 record sets: guard it although it is below the default minimum of 10.
    monkeypatch.setenv("OPSBOT_DNS_ZONES", json.dumps([zone | {"guard_min_records": 5}]))
    assert run(capsys, "resync", "example.com", "--apply")[0] == 0
    configured.set_records(101, BASE_RECORDS[:2])
    code, out, _ = run(capsys, "resync", "example.com", "--apply", "--json")
    document = json.loads(out)
    assert code == 1 and document["applied"] is False and "deletes" in document["refused"][0]
    code, out, _ = run(capsys, "resync", "example.com", "--apply", "--force")
    assert code == 0 and "(forced)" in out


def test_everything_from_the_command_line(
    zone_env: ZoneEnv, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    key = TsigKey("cli-key.", "hmac-sha256", base64.b64encode(os.urandom(32)).decode())
    zone_env.master.stop()
    from bot.local.dns_master import LocalMaster

    with LocalMaster(zone_text(DOMAIN, 7, BASE_RECORDS), DOMAIN, key=key) as master:
        key_file = tmp_path / "key.json"
        key_file.write_text(json.dumps({"name": key.name, "algorithm": key.algorithm, "secret": key.secret}))
        args = ["--master", str(master.address), "--zone-id", zone_env.zone.zone_id, "--no-state"]
        code, out, err = run(capsys, "plan", "example.com", *args)
        assert code == 1 and "refused the transfer" in err
        code, out, _ = run(
            capsys, "resync", "example.com", *args, "--tsig-key-file", str(key_file), "--apply", "--json"
        )
        assert code == 0 and json.loads(out)["applied"] is True
        assert key.secret not in out


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        (["plan", "example.com"], 2, "not a configured zone. Configured: none (set OPSBOT_DNS_ZONES)."),
        (["plan", "example.com", "--zone-id", "Z1"], 2, "give both --master and --zone-id"),
        (["plan", "exa mple.com"], 2, "contains spaces"),
        (["plan", "example.com", "--master", "10.0.0.1:0", "--zone-id", "Z1"], 2, "port"),
        (["plan", "example.com", "--master", "10.0.0.1", "--zone-id", "bad id"], 2, "hosted zone id"),
    ],
)
def test_bad_input_exits_non_zero_with_a_sentence(
    argv: list[str], code: int, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    got, out, err = run(capsys, *argv)
    assert got == code and message in err and out == ""


def test_a_negative_limit_is_refused_by_argparse(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["dns", "plan", "example.com", "--limit", "-5"]) == 2
    assert "'-5' is not a whole number of changes" in capsys.readouterr().err
    # With --json, stdout holds the failure's document, even for what argparse refused.
    assert main(["dns", "plan", "example.com", "--limit", "-5", "--json"]) == 2
    document = json.loads(capsys.readouterr().out)
    assert document["ok"] is False and document["reason"] == "usage"
    assert "'-5' is not a whole number of changes" in document["message"]


def test_broken_configuration(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("OPSBOT_DNS_ZONES", "[{")
    code, _, err = run(capsys, "status")
    assert code == 3 and "OPSBOT_DNS_ZONES is not valid JSON" in err
