"""`opsbot demo` end to end: embedded AWS, demo data, local Slack, the real app, scripted commands."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_demo(
    *args: str, stdin: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SLACK_", "OPSBOT_"))}
    return subprocess.run(
        [sys.executable, "-m", "bot", "demo", *args],
        input=stdin if stdin is not None else "",
        capture_output=True,
        text=True,
        timeout=240,
        cwd=ROOT,
        env={**clean, **(env or {})},
        check=False,
    )


LOG_LINE = re.compile(r"^(DEBUG|INFO|WARNING|ERROR|CRITICAL)[ :]", re.MULTILINE)


def manifest_commands() -> list[str]:
    manifest = json.loads((ROOT / "manifest.json").read_text())
    return [command["command"] for command in manifest["features"]["slash_commands"]]


def test_demo_run_lists_the_commands_and_whoami_answers() -> None:
    result = run_demo("--run", "/ops help", "--run", "/ops whoami", "--run", "as bob", "--run", "/ops whoami")
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "OPSBOT COMMANDS" in out
    help_part = out.split("alice in #ops: /ops help", 1)[1].split("alice in #ops: /ops whoami", 1)[0]
    commands = manifest_commands()
    assert len(commands) >= 6
    for command in commands:
        assert re.search(rf"^  {re.escape(command)}\b", help_part, re.MULTILINE), (command, help_part)
    alice, bob = out.split("bob in #ops: /ops whoami", 1)
    assert "You may run:" in alice and "@alice" in alice
    assert "You are @bob" in bob
    # opsbot logs at INFO on Lambda; the console keeps the replies readable (no seeding or audit lines).
    assert LOG_LINE.findall(out) == [] and "opsbot.audit" not in out
    assert LOG_LINE.findall(result.stderr) == [], result.stderr[:2000]


def test_an_explicit_log_level_is_honoured_by_the_demo() -> None:
    result = run_demo("--run", "/ops whoami", env={"OPSBOT_LOG_LEVEL": "INFO"})
    assert result.returncode == 0, result.stdout + result.stderr
    assert '"audit"' in result.stderr and "ops.whoami" in result.stderr


def test_demo_reads_commands_from_stdin_and_exits_at_end() -> None:
    result = run_demo(stdin="/ops help\n/ops nope\n")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "OPSBOT COMMANDS" in result.stdout
    assert "has no subcommand `nope`" in result.stdout
    assert "Traceback" not in result.stderr
