"""`make smoke`: the doctor and one read-only command of every family against a real AWS account.

Runs only with ``OPSBOT_SMOKE=1`` and AWS credentials in the environment (a sandbox account; nothing is
changed: every command here only reads). Otherwise it says so in one sentence and exits 0, so `make smoke`
is safe to type anywhere. CI does not run it.

Each command runs as a user would type it (``python -m bot ... --json``) and must answer with one JSON
document and exit code 0 or 1 (1: a check failed or something was not found, which is still an answer);
anything else — a traceback, no JSON, a configuration error (3), a timeout — is a smoke failure.

    OPSBOT_SMOKE=1 AWS_PROFILE=sandbox make smoke
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass

TIMEOUT = 120.0


@dataclass(frozen=True)
class Outcome:
    command: str
    code: int | None  # None: timed out
    seconds: float
    summary: str
    passed: bool


def commands(environ: dict[str, str]) -> list[list[str]]:
    found = [
        ["doctor", "--json"],
        ["mail", "stats", "--json"],
        ["mail", "list", "--json"],
        ["device", "list", "--json"],
        ["dns", "status", "--json"],
        ["fanout", "list", "--json"],
        ["fanout", "check", "--json"],
    ]
    if environ.get("OPSBOT_DEFAULT_API"):
        found.insert(1, ["apilogs", "tail", "--for", "5s", "--json"])
    return found


def summarise(document: object) -> str:
    if isinstance(document, dict):
        if "summary" in document:
            return ", ".join(f"{n} {k}" for k, n in document["summary"].items())
        if document.get("ok") is False:
            return f"{document.get('reason')}: {document.get('message')}"
        return "keys: " + ", ".join(sorted(document)[:6])
    if isinstance(document, list):
        return f"{len(document)} items"
    return type(document).__name__


def run(words: list[str]) -> Outcome:
    typed = "opsbot " + " ".join(words)
    started = time.monotonic()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "bot", *words],
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return Outcome(typed, None, time.monotonic() - started, f"no answer within {TIMEOUT:g} s", False)
    seconds = time.monotonic() - started
    last_line = (done.stderr.strip().splitlines() or [""])[-1]
    try:
        document = json.loads(done.stdout)
    except json.JSONDecodeError:
        shown = last_line or (done.stdout.strip().splitlines() or ["(no output)"])[-1][:120]
        return Outcome(typed, done.returncode, seconds, f"not one JSON document: {shown}", False)
    passed = done.returncode in (0, 1) and "Traceback" not in done.stderr
    summary = summarise(document) if document is not None else last_line
    return Outcome(typed, done.returncode, seconds, summary, passed)


def main() -> int:
    if os.environ.get("OPSBOT_SMOKE") != "1":
        print(
            "make smoke: skipped (set OPSBOT_SMOKE=1 with credentials for a sandbox account to run it; it only reads)."
        )
        return 0
    import boto3

    if boto3.session.Session().get_credentials() is None:
        print("make smoke: skipped (OPSBOT_SMOKE=1 but no AWS credentials in this environment).")
        return 0
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    print(f"smoke test against region {region} (read-only)")
    outcomes = [run(words) for words in commands(dict(os.environ))]
    width = max(len(o.command) for o in outcomes)
    for outcome in outcomes:
        mark = "pass" if outcome.passed else "FAIL"
        code = "timeout" if outcome.code is None else f"exit {outcome.code}"
        print(f"{mark}  {outcome.command:<{width}}  {code:<8} {outcome.seconds:6.1f} s  {outcome.summary}")
    failed = [o for o in outcomes if not o.passed]
    print(f"{len(outcomes) - len(failed)} of {len(outcomes)} commands answered cleanly")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
