from __future__ import annotations

import json
import socket
import threading
import urllib.error
import urllib.request
from typing import Any

import pytest

from bot.cli import main
from bot.local.requests import signed_headers, slash_command_body
from bot.local.server import make_server, server_url
from bot.local.serving import shutdown_now
from tests.conftest import FAKE_AWS_ENV
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
        shutdown_now(server)
        server.server_close()
        harness.wait()


def raw_post(server: Any, head: str, body: bytes = b"") -> tuple[int, str]:
    """Send a hand-made POST (headers urllib would not send) and read the status line and body."""
    host, port = server.server_address[:2]
    with socket.create_connection((host, port), timeout=10) as conn:
        conn.sendall(f"POST /slack/events HTTP/1.1\r\nHost: x\r\n{head}\r\n".encode() + body)
        data = b""
        while chunk := conn.recv(65536):
            data += chunk
    status_line, _, rest = data.partition(b"\r\n")
    return int(status_line.split()[1]), rest.partition(b"\r\n\r\n")[2].decode()


@pytest.mark.parametrize(
    ("head", "body", "status", "says"),
    [
        ("Content-Length: abc\r\n", b"", 400, "Content-Length must be a whole number"),
        ("Content-Length: -5\r\n", b"", 400, "Content-Length must be a whole number"),
        (f"Content-Length: {2 * 1024 * 1024}\r\n", b"", 413, "larger than 1048576 bytes"),
        ("Content-Length: 4\r\nX-Slack-Request-Timestamp: 1\r\nX-Slack-Signature: v0=00\r\n", b"\xff\xfe\xfa\x80",
         401, "invalid request"),
    ],
)  # fmt: skip
def test_http_server_refuses_malformed_requests_with_a_status(
    harness: SlackHarness, capfd: pytest.CaptureFixture[str], head: str, body: bytes, status: int, says: str
) -> None:
    server = make_server(harness.app)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        answered, text = raw_post(server, head, body)
        assert answered == status and says in text
        with urllib.request.urlopen(server_url(server).replace("/slack/events", "/health")) as health:
            assert health.status == 200  # the server still serves
    finally:
        shutdown_now(server)
        server.server_close()
    assert "Traceback" not in capfd.readouterr().err


# -- the CLI's local modes, as a user starts them (a separate process) ---------------------------------


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _cli_env(**extra: str) -> dict[str, str]:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SLACK_", "OPSBOT_"))}
    env.update(FAKE_AWS_ENV)
    # Nothing may leave this machine: AWS and Slack point at a port nobody listens on unless told otherwise.
    env["AWS_ENDPOINT_URL"] = f"http://127.0.0.1:{_closed_port()}"
    env["SLACK_API_URL"] = f"http://127.0.0.1:{_closed_port()}/api/"
    env.update(extra)
    return env


@pytest.mark.slow  # `opsbot serve --embedded-aws` in a subprocess
def test_serve_with_embedded_aws_answers_signed_requests() -> None:
    """`opsbot serve --embedded-aws`: demo data in an embedded AWS, the real app on a local port."""
    import subprocess
    import sys

    env = _cli_env(SLACK_SIGNING_SECRET=SIGNING_SECRET, SLACK_BOT_TOKEN="xoxb-test")
    env.pop("AWS_ENDPOINT_URL")  # the embedded AWS sets it
    process = subprocess.Popen(
        [sys.executable, "-m", "bot", "serve", "--embedded-aws", "--port", "0"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert process.stdout is not None
        lines = []
        for line in process.stdout:
            lines.append(line)
            if line.startswith("opsbot listening on "):
                break
        url = lines[-1].split()[3].rstrip(";")
        assert url.startswith("http://127.0.0.1:") and url.endswith("/slack/events"), lines[-5:]
        assert any(line.startswith("embedded AWS at http://127.0.0.1:") for line in lines)
        body = slash_command_body(
            "/ops",
            "help",
            user_id=ALICE[0],
            user_name=ALICE[1],
            channel_id=OPS_CHANNEL[0],
            channel_name="ops",
            team_id="T0TEST",
        )
        request = urllib.request.Request(
            url, data=body.encode(), headers=signed_headers(SIGNING_SECRET, body)
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200 and "/apilogs" in json.loads(response.read())["text"]
        forged = urllib.request.Request(
            url, data=body.encode(), headers=signed_headers("not-the-secret", body)
        )
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(forged, timeout=10)
        assert refused.value.code == 401
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.mark.slow  # `opsbot console` in a subprocess
def test_console_runs_commands_and_answers_without_aws() -> None:
    """`opsbot console --run`: the bot answers even when AWS cannot be reached (the audit is then logged)."""
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "bot", "console", "--run", "/ops help", "--run", "/ops nosuch"],
        env=_cli_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "alice in #ops: /ops help" in done.stdout and "/fanout" in done.stdout
    assert "has no subcommand `nosuch`" in done.stdout
    assert "could not be stored" in done.stderr and "Traceback" not in done.stderr


def _subcommands() -> list[list[str]]:
    """Every ``opsbot <command> [<subcommand>]`` that takes --json."""
    import argparse

    from bot.cli import build_parser

    found: list[list[str]] = []

    def walk(parser: argparse.ArgumentParser, words: list[str]) -> None:
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not subs:
            if any("--json" in a.option_strings for a in parser._actions):
                found.append(words)
            return
        for name, child in subs[0].choices.items():
            walk(child, [*words, name])

    walk(build_parser(), [])
    return found


def test_every_json_subcommand_answers_bad_input_with_one_json_document(
    capsys: pytest.CaptureFixture[str],
) -> None:
    import json

    from bot.cli import main

    commands = _subcommands()
    assert ["mail", "status"] in commands and ["apilogs"] in commands and ["dns", "plan"] in commands
    for words in commands:
        assert main([*words, "--json", "--no-such-option"]) == 2, words
        out, err = capsys.readouterr()
        document = json.loads(out)  # exactly one document on stdout
        assert document["ok"] is False and document["reason"] == "usage", words
        assert err.strip() == f"opsbot: {document['message']}", words  # the same sentence on stderr
