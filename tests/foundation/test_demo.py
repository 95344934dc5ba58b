"""`opsbot demo` end to end: embedded AWS, demo data, local Slack, the real app, scripted commands."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_demo(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SLACK_", "OPSBOT_"))}
    return subprocess.run(
        [sys.executable, "-m", "bot", "demo", *args],
        input=stdin if stdin is not None else "",
        capture_output=True,
        text=True,
        timeout=240,
        cwd=ROOT,
        env=env,
        check=False,
    )


def test_demo_run_lists_the_commands_and_whoami_answers() -> None:
    result = run_demo("--run", "/ops help", "--run", "/ops whoami", "--run", "as bob", "--run", "/ops whoami")
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "OPSBOT COMMANDS" in out and "/ops" in out
    help_part = out.split("alice in #ops: /ops help", 1)[1]
    for command in ("/ops",):
        assert command in help_part
    alice, bob = out.split("bob in #ops: /ops whoami", 1)
    assert "You may run:" in alice and "@alice" in alice
    assert "You are @bob" in bob


def test_demo_reads_commands_from_stdin_and_exits_at_end() -> None:
    result = run_demo(stdin="/ops help\n/ops nope\n")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "OPSBOT COMMANDS" in result.stdout
    assert "has no subcommand 'nope'" in result.stdout
    assert "Traceback" not in result.stderr
