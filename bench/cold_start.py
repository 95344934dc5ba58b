"""Cold start: fresh-process import time of handlers.slack vs a minimal Bolt app on the same Lambda adapter.

Each sample is a new Python process that imports the module and builds the app, as a Lambda cold start
does; samples of the two alternate so that machine noise hits both equally. opsbot is measured as
`sam build` packages it (`make build-SlackFunction`: its modules precompiled, because Lambda's read-only
file system would make every cold start compile them) and, for comparison, from source with no bytecode.
The dependencies come precompiled on both sides, as pip installs them. Target: ratio <= 1.25 (packaged).

Then the first ack after a cold start, as deployed: the Slack secrets in Secrets Manager (a moto server on
127.0.0.1), read on that first request (the only network call it makes), against the same with the
secrets in the environment (serve, demo). Each sample is a new process: import, then two signed requests.

    .venv/bin/python bench/cold_start.py [--runs 15] [--first-ack-only]
"""

from __future__ import annotations

import argparse
import logging
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


BENCH_ENV = {
    "SLACK_BOT_TOKEN": "xoxb-bench",
    "SLACK_SIGNING_SECRET": "bench",
    "SLACK_BOT_USER_ID": "U0BENCH",
    "SLACK_TEAM_ID": "T0BENCH",
    "OPSBOT_POLICY": '{"rules": [{"allow": ["*"], "usergroups": ["S0ONCALL"]}]}',
    "PYTHONDONTWRITEBYTECODE": "1",
}


def sample(code: str, *, path: Path = ROOT) -> float:
    env = {**os.environ, **BENCH_ENV}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=path, check=True
    )
    return float(out.stdout.strip().splitlines()[-1])


FIRST_ACK = """
import json, time, base64
started = time.perf_counter()
import handlers.slack
imported = time.perf_counter()
from bot.local.requests import signature, slash_command_body

def event():
    body = slash_command_body("/ops", "help", user_id="U0ALICE", user_name="alice", channel_id="C0OPS",
                              channel_name="ops", team_id="T0BENCH", response_url="https://hooks.slack.invalid/1")
    ts = str(int(time.time()))
    headers = {"content-type": "application/x-www-form-urlencoded", "x-slack-request-timestamp": ts,
               "x-slack-signature": signature("bench", ts, body)}
    return {"version": "2.0", "headers": headers, "requestContext": {"http": {"method": "POST"}},
            "body": base64.b64encode(body.encode()).decode(), "isBase64Encoded": True}

class Context:
    function_name = "opsbot-slack"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:opsbot-slack"
    def get_remaining_time_in_millis(self):
        return 300000

# Time the secret read itself (client creation included) without changing what it does.
import bot.slack_secrets
read = bot.slack_secrets.SlackSecrets._read
reads = []
def timed(self):
    began = time.perf_counter()
    try:
        return read(self)
    finally:
        reads.append(time.perf_counter() - began)
bot.slack_secrets.SlackSecrets._read = timed

first, second = event(), event()
t0 = time.perf_counter()
assert handlers.slack.handler(first, Context())["statusCode"] == 200
t1 = time.perf_counter()
assert handlers.slack.handler(second, Context())["statusCode"] == 200
t2 = time.perf_counter()
print(json.dumps([imported - started, t1 - t0, t2 - t1, sum(reads), len(reads)]))
"""


def _seed(endpoint: str) -> None:
    """The secret, and the function itself (the ack hands its lazy half to an Invoke of it)."""
    import io
    import json
    import zipfile

    import boto3

    session = boto3.session.Session(
        aws_access_key_id="bench", aws_secret_access_key="bench", region_name="us-east-1"
    )
    session.client("secretsmanager", endpoint_url=endpoint).create_secret(
        Name="opsbot/slack", SecretString=json.dumps({"signing_secret": "bench", "bot_token": "xoxb-bench"})
    )
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                      "Principal": {"Service": "lambda.amazonaws.com"}}]}  # fmt: skip
    role = session.client("iam", endpoint_url=endpoint).create_role(
        RoleName="opsbot-slack", AssumeRolePolicyDocument=json.dumps(trust)
    )["Role"]["Arn"]
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("handlers/slack.py", "def handler(event, context):\n    return {}\n")
    session.client("lambda", endpoint_url=endpoint).create_function(
        FunctionName="opsbot-slack", Runtime="python3.12", Role=role, Handler="handlers.slack.handler",
        Code={"ZipFile": archive.getvalue()},
    )  # fmt: skip


def first_ack(runs: int) -> None:
    """Import, first ack and second ack of fresh processes: secrets read from Secrets Manager (moto) on
    the first request, or taken from the environment."""
    import json

    from moto.core.config import default_user_config
    from moto.server import ThreadedMotoServer

    # The server runs in this process: the function's self-invocation is answered without Docker.
    default_user_config["lambda"]["use_docker"] = False
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request otherwise
    try:
        host, port = server.get_host_and_port()
        aws = {"AWS_ENDPOINT_URL": f"http://{host}:{port}", "AWS_ACCESS_KEY_ID": "bench",
               "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1"}  # fmt: skip
        _seed(aws["AWS_ENDPOINT_URL"])
        sides: dict[str, list[list[float]]] = {"secrets manager": [], "environment": []}
        for number in range(runs + 1):  # the first of each side warms the file cache
            for side, extra in (("secrets manager", {**aws, "OPSBOT_SLACK_SECRET_ID": "opsbot/slack"}),
                                ("environment", aws)):  # fmt: skip
                env = {**os.environ, **BENCH_ENV, **extra}
                if side == "secrets manager":
                    env.pop("SLACK_SIGNING_SECRET"), env.pop("SLACK_BOT_TOKEN")
                out = subprocess.run([sys.executable, "-c", FIRST_ACK], capture_output=True, text=True, env=env,
                                     cwd=ROOT, check=True)  # fmt: skip
                if number:
                    sides[side].append(json.loads(out.stdout.strip().splitlines()[-1]))
    finally:
        server.stop()
    print(f"first ack after a cold start ({runs} processes per side, Secrets Manager on moto at 127.0.0.1):")
    for side, samples in sides.items():
        imp, first, second = (statistics.median(s[i] * 1000 for s in samples) for i in range(3))
        print(
            f"  secrets from {side:<16} import {imp:6.1f} ms  first ack {first:6.1f} ms  second ack {second:5.1f} ms"
        )
    read_ms = [s[3] * 1000 for s in sides["secrets manager"]]
    assert all(s[4] == 1 for s in sides["secrets manager"]) and all(s[4] == 0 for s in sides["environment"])
    print(
        f"  the secret read itself (one per container, client creation included): median "
        f"{statistics.median(read_ms):.1f} ms, max {max(read_ms):.1f} ms; Slack allows 3000 ms for the ack"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--first-ack-only", action="store_true", help="only the first-ack figures")
    args = parser.parse_args()
    if args.first_ack_only:
        first_ack(args.runs)
        return 0
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
    first_ack(args.runs)
    return 0 if ratio <= TARGET_RATIO else 1


if __name__ == "__main__":
    raise SystemExit(main())
