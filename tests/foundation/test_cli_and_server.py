from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request

import pytest

from bot.cli import main
from bot.local.requests import signed_headers, slash_command_body
from bot.local.server import make_server, server_url
from tests.support.slack import ALICE, OPS_CHANNEL, SIGNING_SECRET, SlackHarness


def test_no_command_prints_help_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "usage: opsbot" in capsys.readouterr().out


def test_socket_mode_without_app_token_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-x")
    monkeypatch.setenv("SLACK_SIGNING_SECRET", "s")
    assert main(["serve", "--socket-mode"]) == 3
    assert "SLACK_APP_TOKEN is not set" in capsys.readouterr().err


def test_serve_without_slack_secrets_says_which(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--port", "0"]) == 3
    assert "SLACK_SIGNING_SECRET and SLACK_BOT_TOKEN are not set" in capsys.readouterr().err


def test_http_server_verifies_and_dispatches(harness: SlackHarness) -> None:
    server = make_server(harness.app)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = server_url(server)
        with urllib.request.urlopen(url.replace("/slack/events", "/health")) as health:
            assert json.loads(health.read()) == {"ok": True}
        body = slash_command_body(
            "/ops", "help", user_id=ALICE[0], user_name=ALICE[1], channel_id=OPS_CHANNEL[0],
            channel_name=OPS_CHANNEL[1], team_id=harness.slack.team_id,
            response_url=harness.slack.new_response_url(OPS_CHANNEL[0], ALICE[0]),
        )  # fmt: skip
        request = urllib.request.Request(
            url, data=body.encode(), headers=signed_headers(SIGNING_SECRET, body)
        )
        with urllib.request.urlopen(request) as response:
            assert response.status == 200 and "opsbot commands" in json.loads(response.read())["text"]
        forged = urllib.request.Request(url, data=body.encode(), headers=signed_headers("wrong", body))
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(forged)
        assert info.value.code == 401
    finally:
        server.shutdown()
        server.server_close()
        harness.wait()
