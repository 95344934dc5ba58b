"""Cold start: fresh-process import time of handlers.slack vs a minimal Bolt app on the same Lambda adapter.

Each sample is a new Python process that imports the module and builds the app, as a Lambda cold start
does; samples of the two alternate so that machine noise hits both equally. Target: ratio <= 1.25.

    .venv/bin/python bench/cold_start.py [--runs 15]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
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


def sample(code: str) -> float:
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
    sample(OURS), sample(BASELINE)  # warm the OS file cache and .pyc files for both
    ours, baseline = [], []
    for _ in range(args.runs):
        ours.append(sample(OURS))
        baseline.append(sample(BASELINE))
    m_ours, m_base = statistics.median(ours), statistics.median(baseline)
    ratio = m_ours / m_base
    print(f"runs per side       {args.runs}")
    print(
        f"handlers.slack      median {m_ours * 1000:7.1f} ms  (min {min(ours) * 1000:.1f}, max {max(ours) * 1000:.1f})"
    )
    print(
        f"minimal Bolt app    median {m_base * 1000:7.1f} ms  (min {min(baseline) * 1000:.1f}, max {max(baseline) * 1000:.1f})"
    )
    print(
        f"ratio               {ratio:.3f}  (target <= {TARGET_RATIO})  {'PASS' if ratio <= TARGET_RATIO else 'FAIL'}"
    )
    return 0 if ratio <= TARGET_RATIO else 1


if __name__ == "__main__":
    raise SystemExit(main())
