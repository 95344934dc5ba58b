"""`opsbot demo` end to end: embedded AWS, demo data, local Slack, the real app, scripted commands."""

from __future__ import annotations

import json
import os
import pty
import queue
import re
import shlex
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # `opsbot demo` in subprocesses, each seeding the embedded AWS

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
    manifest = json.loads((ROOT / "bot" / "manifest.json").read_text())
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


# One demo for two checks: each demo seeds every capability in a new process (10-25 s of a `make test`).
def test_demo_reads_commands_from_stdin_exits_at_end_and_honours_an_explicit_log_level() -> None:
    result = run_demo(stdin="/ops help\n/ops nope\n/ops whoami\n", env={"OPSBOT_LOG_LEVEL": "INFO"})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "OPSBOT COMMANDS" in result.stdout
    assert "has no subcommand `nope`" in result.stdout
    assert "You may run:" in result.stdout  # the line after a refused one is still read
    assert "Traceback" not in result.stderr
    # The level asked for wins over the console's quiet default: INFO's audit lines are written.
    assert '"audit"' in result.stderr and "ops.whoami" in result.stderr


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class RunningDemo:
    """`opsbot demo` in a subprocess on a terminal (a pty, so it is interactive, as for a person), typed
    into and read as its output comes."""

    def __init__(self, *args: str) -> None:
        clean = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SLACK_", "OPSBOT_"))}
        self.master, terminal = pty.openpty()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bot", "demo", *args],
            stdin=terminal, stdout=terminal, stderr=terminal, cwd=ROOT, env={**clean, "TERM": "dumb"},
        )  # fmt: skip
        os.close(terminal)
        self.chunks: queue.Queue[str] = queue.Queue()
        self.output = ""
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        while True:
            try:
                data = os.read(self.master, 65536)
            except OSError:  # the terminal closed with the process
                return
            if not data:
                return
            self.chunks.put(data.decode(errors="replace"))

    def expect(self, text: str, timeout: float = 180) -> str:
        """Read until ``text`` appears after what earlier calls consumed; returns that stretch."""
        deadline = time.monotonic() + timeout
        start = len(self.output)
        while text not in self.output[start:]:
            try:
                self.output += self.chunks.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"{text!r} did not appear:\n" + self.output[-4000:]) from None
        return self.output[start:]

    def type(self, line: str) -> None:
        os.write(self.master, (line + "\n").encode())

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        os.close(self.master)


def opsbot(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        capture_output=True, text=True, timeout=120, cwd=ROOT, env=env, check=False,
    )  # fmt: skip


@pytest.mark.serial  # asserts on the wall clock: run apart from the parallel run
def test_the_console_reads_while_a_tail_runs_and_print_env_points_the_cli_at_the_running_demo() -> None:
    port = free_port()
    demo = RunningDemo("--aws-port", str(port))
    prompt = "alice@#ops> "
    try:
        banner = demo.expect(prompt)
        # The banner says how to reach this demo from another terminal (its port is not the default).
        assert f'eval "$(opsbot demo --print-env --aws-port {port})"' in banner
        assert "as long as this demo runs" in banner
        failed_id = re.search(r"/apilogs (\S+)\s+\(a failed POST /orders", banner)
        assert failed_id, banner

        clean = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SLACK_", "OPSBOT_"))}
        printed = opsbot("demo", "--print-env", "--aws-port", str(port), env={**clean, "AWS_PROFILE": "none"})
        assert printed.returncode == 0, printed.stderr
        lines = printed.stdout.splitlines()
        assert lines[0] == "unset AWS_PROFILE" and all(line.startswith("export ") for line in lines[1:])
        # The banner's lines, and they are shell: read them as a shell would.
        assert all(f"  {line}\r\n" in banner for line in lines)
        env = dict(shlex.split(line.removeprefix("export "))[0].split("=", 1) for line in lines[1:])
        assert env["AWS_ENDPOINT_URL"] == f"http://127.0.0.1:{port}"
        assert {"OPSBOT_STATE_TABLE", "OPSBOT_DEFAULT_API", "OPSBOT_DNS_ZONES", "AWS_REGION"} <= set(env)
        assert json.loads(env["OPSBOT_DNS_ZONES"])[0]["domain"] == "corp.example.com"
        assert "OPSBOT_DNS_FUNCTION" not in env and not any(k.startswith("SLACK_") for k in env)

        # The opsbot CLI of another terminal, with just that environment, works on the demo's data.
        lookup = opsbot("apilogs", failed_id.group(1), env={**clean, **env})
        assert lookup.returncode == 0, lookup.stderr
        assert "502" in lookup.stdout and "KeyError" in lookup.stdout
        zones = opsbot("dns", "status", env={**clean, **env})
        assert zones.returncode == 0 and "corp.example.com" in zones.stdout, zones.stderr

        # A tail goes on in the background: the prompt comes back, commands are read and answered.
        demo.type("/apilogs tail --since 1s --for 2m")
        stop = re.search(r"\[(\d+)\] Stop", demo.expect("] Stop"))
        assert stop
        demo.expect(prompt, timeout=30)
        demo.type("/ops whoami")
        demo.expect("You may run:", timeout=60)
        demo.type(f"click {stop.group(1)}")
        demo.expect("Tail stopped with the Stop button", timeout=60)
        # Quit is read while a tail runs, and does not wait for it.
        demo.type("/apilogs tail --for 2m")
        demo.expect("] Stop")
        asked = time.monotonic()
        demo.type("quit")
        assert demo.process.wait(timeout=60) == 0
        assert time.monotonic() - asked < 20, "quit waited for the tail"
        demo.expect("stopping the work still running", timeout=5)
    finally:
        demo.kill()

    # The embedded AWS lived only as long as the demo: now there is nothing to print.
    gone = opsbot("demo", "--print-env", "--aws-port", str(port), env=clean)
    assert gone.returncode == 3 and "No opsbot demo is running" in gone.stderr, gone.stderr
