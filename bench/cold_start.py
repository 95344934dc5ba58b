"""Cold start: fresh-process import time of handlers.slack vs a minimal Bolt app on the same Lambda adapter.

Each sample is a new Python process that imports the module and builds the app, as a Lambda cold start
does; samples of the two alternate so that machine noise hits both equally. opsbot is measured as
`sam build` packages it (`make build-SlackFunction`: its modules precompiled, because Lambda's read-only
file system would make every cold start compile them) and, for comparison, from source with no bytecode.
The dependencies come precompiled on both sides, as pip installs them. Target: ratio <= 1.25 (packaged).

    .venv/bin/python bench/cold_start.py [--runs 15]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET_RATIO = 1.25

OURS = """
import time
started = time.perf_counter()
import handlers.slack
print(time.perf_counter() - started)
"""

# The smallest Bolt app on the same adapter: one command, token verification off (it would call
# auth.test at construction, which a cold start cannot afford either).
BASELINE = """
import time
started = time.perf_counter()
from slack_bolt import App
from slack_bolt.adapter.aws_lambda import SlackRequestHandler
app = App(token="xoxb-bench", signing_secret="bench", process_before_response=True, token_verification_enabled=False)
app.command("/ops")(lambda ack: ack("ok"))
slack_handler = SlackRequestHandler(app)
def handler(event, context):
    return slack_handler.handle(event, context)
print(time.perf_counter() - started)
"""


def sample(code: str, *, path: Path = ROOT) -> float:
    env = {
        **os.environ,
        "SLACK_BOT_TOKEN": "xoxb-bench",
        "SLACK_SIGNING_SECRET": "bench",
        "SLACK_BOT_USER_ID": "U0BENCH",
        "SLACK_TEAM_ID": "T0BENCH",
        "OPSBOT_POLICY": '{"rules": [{"allow": ["*"], "usergroups": ["S0ONCALL"]}]}',
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT, check=True
    )
    return float(out.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        artifact = Path(work) / "artifact"
        artifact.mkdir()
        subprocess.run(
            ["make", "-s", "build-SlackFunction", f"ARTIFACTS_DIR={artifact}", "PIP_INSTALL=true", f"PYTHON={sys.executable}"],
            cwd=ROOT, check=True,
        )  # fmt: skip
        # The same modules without bytecode (PYTHONDONTWRITEBYTECODE keeps it that way): what a package
        # built by a plain copy of the sources costs on Lambda.
        plain = artifact.parent / "plain"
        for package in ("bot", "handlers"):
            shutil.copytree(ROOT / package, plain / package, ignore=shutil.ignore_patterns("__pycache__"))
        sample(OURS, path=artifact), sample(OURS, path=plain), sample(BASELINE)  # warm the file cache
        packaged, source, baseline = [], [], []
        for _ in range(args.runs):
            packaged.append(sample(OURS, path=artifact))
            source.append(sample(OURS, path=plain))
            baseline.append(sample(BASELINE))
    m_base = statistics.median(baseline)

    def line(name: str, samples: list[float]) -> str:
        ms = [s * 1000 for s in samples]
        return f"{name:<34} median {statistics.median(ms):7.1f} ms  (min {min(ms):.1f}, max {max(ms):.1f})"

    ratio = statistics.median(packaged) / m_base
    print(f"runs per side                      {args.runs}")
    print(line("handlers.slack, as packaged", packaged))
    print(line("handlers.slack, from source", source) + f"  ratio {statistics.median(source) / m_base:.3f}")
    print(line("minimal Bolt app", baseline))
    print(
        f"ratio (packaged)                   {ratio:.3f}  (target <= {TARGET_RATIO})  {'PASS' if ratio <= TARGET_RATIO else 'FAIL'}"
    )
    return 0 if ratio <= TARGET_RATIO else 1


if __name__ == "__main__":
    raise SystemExit(main())
