"""Cold start as Lambda runs it: the SlackFunction's build and its layers' imported by the
template's runtime Python in a fresh interpreter, then its first request, against a minimal Bolt app.

Both sides are built the way `sam build` builds them, with the template's runtime Python (python3.12; the
bench says so and skips when this machine has none): opsbot by `make build-SlackFunction` (bot/ and
handlers/ copied and compiled), plus `make build-<Layer>` for every layer the template builds with its
Makefile (DependenciesLayer: requirements.lock's wheels for the runtime's platform, compiled; the layer's
`python/` folder is on the path after the function's, as Lambda puts /opt/python after /var/task). The baseline is a minimal Bolt app with one
lazy listener on Bolt's Lambda adapter, its dependencies (slack_bolt and boto3, the same versions as
opsbot's) pip-installed with --target by the same interpreter. boto3 is packaged on both sides: the
path holds only the artifact, where Lambda would add its runtime's own copy.

Each sample is `python3.12 -S -I -c ...`: no site-packages, no PYTHON* variables, and sys.path set to
the artifact's folders (then the standard library) before any import. It times the import of the
handler module, then two signed `/ops whoami` requests through the Lambda handler. The first request is
the cold one: it creates the Lambda client of the lazy self-invocation and invokes the function
(InvocationType=Event), and opsbot, as deployed, first reads the Slack secrets from Secrets Manager;
both answer from a moto server on 127.0.0.1 in this process (Lambda without Docker: Invoke is answered,
nothing runs). The baseline takes its secrets from the environment, as a minimal app does; opsbot with
the secrets in the environment is printed too. Peak RSS is the child's VmHWM after the import and after
both requests (not ru_maxrss: Linux carries the forking parent's peak over exec, so every child reported
this bench's own 110 MiB).
Sizes are the folders unzipped and zipped with deflate, as `sam deploy` uploads them.

Targets (ratios to the baseline, medians of the same run): import <= 1.25, first request <= 1.6.

    .venv/bin/python bench/cold_start.py [--runs 15] [--rebuild]
"""

from __future__ import annotations

import argparse
import base64
import glob
import hashlib
import io
import json
import logging
import os
import re
import shutil
import statistics
import subprocess
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / ".bench-cache" / "cold-start"
TARGET_IMPORT_RATIO = 1.25
# The first request pays for one more client and round trip (the Secrets Manager read) than the
# baseline's: four runs on 2026-12-07 (a loaded 2-core machine) measured ratios 0.82 to 1.36, so 1.6 is
# the worst of those plus room for noise; rerun on an idle machine before tightening it.
TARGET_FIRST_REQUEST_RATIO = 1.6
SIGNING_SECRET = "bench-signing-secret"
BOT_TOKEN = "xoxb-bench"
FUNCTION = "opsbot-slack"
SECRET_ID = "opsbot/slack"

BASELINE_APP = '''"""The smallest Bolt app on Lambda with one lazy listener: ack, then a self-invocation for the work."""
import os

from slack_bolt import App
from slack_bolt.adapter.aws_lambda import SlackRequestHandler
from slack_bolt.authorization import AuthorizeResult

# Authorized from configuration, as opsbot is: Bolt's default calls auth.test on the first request.
app = App(
    signing_secret=os.environ["SLACK_SIGNING_SECRET"],
    process_before_response=True,
    authorize=lambda **_: AuthorizeResult(enterprise_id=None, team_id=os.environ["SLACK_TEAM_ID"],
                                          bot_token=os.environ["SLACK_BOT_TOKEN"],
                                          bot_user_id=os.environ["SLACK_BOT_USER_ID"]),
)


def ack_ops(ack):
    ack("working...")


def run_ops(respond):
    respond("done")


app.command("/ops")(ack=ack_ops, lazy=[run_ops])
slack_handler = SlackRequestHandler(app)


def handler(event, context):
    return slack_handler.handle(event, context)
'''

# The child: paths first, then the timed import, then two requests (events on stdin, signed by the parent).
CHILD = """
import sys
sys.path[:0] = {paths!r}
import json, resource, time

def peak_kib():
    # VmHWM is this process image's peak. ru_maxrss is not: Linux carries the forking parent's over exec.
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

events = json.loads(sys.stdin.read())
started = time.perf_counter()
import {module} as module
imported = time.perf_counter()
import_rss = peak_kib()

class Context:
    function_name = {function!r}
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:" + {function!r}
    aws_request_id = "c6af9ac6-7b61-11e6-9a41-93e812345678"
    def get_remaining_time_in_millis(self):
        return 30000

times, answers = [], []
for event in events:
    began = time.perf_counter()
    answer = module.handler(event, Context())
    times.append(time.perf_counter() - began)
    answers.append([answer["statusCode"], answer.get("body", "")])
rss = peak_kib()
print(json.dumps({{"import": imported - started, "requests": times, "answers": answers, "rss_kib": rss,
                  "import_rss_kib": import_rss,
                  "modules": len(sys.modules)}}))
"""


def find_python(version: str) -> Path | None:
    """``pythonX.Y`` on PATH if it runs (a pyenv shim may not), else pyenv's versions."""
    candidates = [shutil.which(f"python{version}") or ""]
    pyenv = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv")
    candidates += sorted(
        glob.glob(str(pyenv / "versions" / f"{version}.*" / "bin" / f"python{version}")), reverse=True
    )
    for candidate in filter(None, candidates):
        try:
            out = subprocess.run([candidate, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                                 capture_output=True, text=True, timeout=30)  # fmt: skip
        except OSError:
            continue
        if out.returncode == 0 and out.stdout.strip() == version:
            return Path(candidate)
    return None


def template_runtime() -> tuple[str, list[str]]:
    """The runtime's Python version (Globals or the SlackFunction) and the layers built by the Makefile."""
    text = (ROOT / "template.yaml").read_text()
    match = re.search(r"^\s+Runtime:\s*python(\d+\.\d+)", text, re.MULTILINE)
    if match is None:
        raise SystemExit("template.yaml names no python runtime")
    layers = re.findall(r"^  (\w+):\n    Type: AWS::Serverless::LayerVersion\n", text, re.MULTILINE)
    return match.group(1), [name for name in layers if f"build-{name}:" in (ROOT / "Makefile").read_text()
                            or f"build-{name} " in (ROOT / "Makefile").read_text()]  # fmt: skip


def _digest(python: Path, *paths: Path) -> str:
    """What a build depends on: the interpreter, the Makefile, the requirements and the sources."""
    digest = hashlib.sha256(str(python.resolve()).encode())
    for path in paths:
        files = (
            sorted(p for p in path.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
            if path.is_dir()
            else [path]
        )
        for file in files:
            digest.update(str(file.relative_to(ROOT)).encode() + b"\0" + file.read_bytes())
    return digest.hexdigest()[:16]


def _cached(name: str, key: str, build: Any) -> Path:
    """``CACHE/name-key``, built by ``build(folder)`` unless an earlier run left it (older keys removed)."""
    folder = CACHE / f"{name}-{key}"
    if (folder / ".complete").exists():
        return folder
    for old in CACHE.glob(f"{name}-*"):
        shutil.rmtree(old)
    folder.mkdir(parents=True)
    started = time.monotonic()
    build(folder)
    (folder / ".complete").touch()
    print(f"built {name} in {time.monotonic() - started:.1f} s ({folder.relative_to(ROOT)})")
    return folder


def _make(target: str, python: Path) -> Any:
    def build(folder: Path) -> None:
        subprocess.run(["make", "-s", target, f"LAMBDA_PYTHON={python}", f"ARTIFACTS_DIR={folder}"], cwd=ROOT, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip

    return build


def _version(folder: Path, distribution: str) -> str:
    (info,) = folder.glob(f"{distribution}-*.dist-info")
    return info.name[len(distribution) + 1 : -len(".dist-info")]


@dataclass
class Side:
    name: str
    module: str
    paths: list[Path]  # function first, then the layers' python/


def build_sides(python: Path, layers: list[str]) -> tuple[Side, Side]:
    sources = [
        ROOT / "Makefile",
        ROOT / "requirements.lock",
        ROOT / "bot",
        ROOT / "handlers",
        ROOT / "template.yaml",
    ]
    function = _cached("SlackFunction", _digest(python, *sources), _make("build-SlackFunction", python))
    layer_dirs = [
        _cached(
            layer,
            _digest(python, ROOT / "Makefile", ROOT / "requirements.lock"),
            _make(f"build-{layer}", python),
        )
        / "python"
        for layer in layers
    ]
    deps_home = layer_dirs[0] if layer_dirs else function
    pins = [f"slack-bolt=={_version(deps_home, 'slack_bolt')}", f"boto3=={_version(deps_home, 'boto3')}"]

    def baseline_deps(folder: Path) -> None:
        target = folder / "python" if layer_dirs else folder
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--target", str(target), *pins], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip

    deps = _cached("baseline-deps", hashlib.sha256(f"{python.resolve()} {pins} {bool(layer_dirs)}".encode()).hexdigest()[:16],
                   baseline_deps)  # fmt: skip
    app_key = hashlib.sha256(f"{python.resolve()} {BASELINE_APP}".encode()).hexdigest()[:16]

    def baseline_app(folder: Path) -> None:
        (folder / "baseline_app.py").write_text(BASELINE_APP)
        subprocess.run([str(python), "-m", "compileall", "-q", "--invalidation-mode", "unchecked-hash", str(folder)],
                       check=True)  # fmt: skip

    if layer_dirs:  # the app alone in the function, its dependencies in a layer, like opsbot's
        app = _cached("baseline-app", app_key, baseline_app)
        baseline_paths = [app, deps / "python"]
    else:

        def baseline_function(
            folder: Path,
        ) -> None:  # the dependencies and the app in one folder, like opsbot's
            shutil.copytree(deps, folder, dirs_exist_ok=True)
            (folder / ".complete").unlink()
            baseline_app(folder)

        key = hashlib.sha256(f"{app_key} {deps.name}".encode()).hexdigest()[:16]
        app = _cached("baseline-function", key, baseline_function)
        baseline_paths = [app]
    return Side("opsbot", "handlers.slack", [function, *layer_dirs]), Side("minimal Bolt app", "baseline_app",
                                                                          baseline_paths)  # fmt: skip


def sizes(paths: list[Path]) -> tuple[int, int]:
    """(bytes unzipped, bytes zipped with deflate) of the folders, as uploaded."""
    unzipped = zipped = 0
    for path in paths:
        root = path.parent if path.name == "python" else path  # a layer's zip holds python/
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for file in sorted(p for p in root.rglob("*") if p.is_file() and p.name != ".complete"):
                unzipped += file.stat().st_size
                archive.write(file, file.relative_to(root))
        zipped += len(buffer.getvalue())
    return unzipped, zipped


def slash_event(text: str) -> dict[str, Any]:
    """An HTTP API (payload 2.0) event carrying a slash command signed as Slack signs it."""
    from bot.local.requests import signature, slash_command_body

    body = slash_command_body("/ops", text, user_id="U0ALICE", user_name="alice", channel_id="C0OPS",
                              channel_name="ops", team_id="T0BENCH",
                              response_url="https://hooks.slack.invalid/commands/1")  # fmt: skip
    ts = str(int(time.time()))
    headers = {"content-type": "application/x-www-form-urlencoded", "x-slack-request-timestamp": ts,
               "x-slack-signature": signature(SIGNING_SECRET, ts, body), "x-forwarded-for": "3.91.23.45"}  # fmt: skip
    return {"version": "2.0", "routeKey": "POST /slack/events", "rawPath": "/slack/events", "rawQueryString": "",
            "headers": headers, "requestContext": {"http": {"method": "POST", "path": "/slack/events",
                                                            "sourceIp": "3.91.23.45"}},
            "body": base64.b64encode(body.encode()).decode(), "isBase64Encoded": True}  # fmt: skip


class InvokeCounter(logging.Handler):
    """Counts the Invoke requests moto's server answered (its werkzeug request log)."""

    def __init__(self) -> None:
        super().__init__()
        self.invokes = 0

    def emit(self, record: logging.LogRecord) -> None:
        if "/invocations" in record.getMessage():
            self.invokes += 1


def _seed(endpoint: str) -> None:
    """The secret, and the function the lazy half invokes."""
    import boto3

    session = boto3.session.Session(
        aws_access_key_id="bench", aws_secret_access_key="bench", region_name="us-east-1"
    )
    session.client("secretsmanager", endpoint_url=endpoint).create_secret(
        Name=SECRET_ID, SecretString=json.dumps({"signing_secret": SIGNING_SECRET, "bot_token": BOT_TOKEN})
    )
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                      "Principal": {"Service": "lambda.amazonaws.com"}}]}  # fmt: skip
    role = session.client("iam", endpoint_url=endpoint).create_role(
        RoleName=FUNCTION, AssumeRolePolicyDocument=json.dumps(trust)
    )["Role"]["Arn"]
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("handlers/slack.py", "def handler(event, context):\n    return {}\n")
    session.client("lambda", endpoint_url=endpoint).create_function(
        FunctionName=FUNCTION, Runtime="python3.12", Role=role, Handler="handlers.slack.handler",
        Code={"ZipFile": archive.getvalue()},
    )  # fmt: skip


def run_child(python: Path, side: Side, env: dict[str, str]) -> dict[str, Any]:
    code = CHILD.format(paths=[str(p) for p in side.paths], module=side.module, function=FUNCTION)
    events = json.dumps([slash_event("whoami"), slash_event("whoami")])
    out = subprocess.run([str(python), "-S", "-I", "-c", code], input=events, capture_output=True, text=True,
                         env=env, cwd=tempfile.gettempdir())  # fmt: skip
    if out.returncode != 0:
        raise SystemExit(f"{side.name} failed:\n{out.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    for status, body in result["answers"]:
        if status != 200 or not body:
            raise SystemExit(f"{side.name} answered {status} {body[:300]!r}, not the ack")
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--rebuild", action="store_true", help=f"forget the builds cached in {CACHE}")
    args = parser.parse_args()
    version, layers = template_runtime()
    python = find_python(version)
    if python is None:
        print(f"SKIPPED: the template's runtime is python{version}, and this machine has no python{version} "
              "(neither on PATH nor under pyenv's versions): the cold start is measured only with the runtime's "
              "interpreter, whose bytecode the build ships.")  # fmt: skip
        return 0
    if args.rebuild and CACHE.exists():
        shutil.rmtree(CACHE)
    print(
        f"runtime python{version} (template.yaml): {python}  layers built by the Makefile: {layers or 'none'}"
    )
    ours, baseline = build_sides(python, layers)

    from moto.core.config import default_user_config
    from moto.server import ThreadedMotoServer

    default_user_config["lambda"]["use_docker"] = False  # Invoke is answered in this process, nothing runs
    counter = InvokeCounter()
    werkzeug = logging.getLogger("werkzeug")
    werkzeug.handlers, werkzeug.propagate = [counter], False
    werkzeug.setLevel(logging.INFO)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    home = tempfile.mkdtemp(prefix="cold-start-home-")  # no ~/.aws of this machine's in the children
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        _seed(endpoint)
        common = {"PATH": "/usr/bin:/bin", "HOME": home, "LANG": "C.UTF-8", "AWS_ENDPOINT_URL": endpoint,
                  "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_SESSION_TOKEN": "bench",
                  "AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1",
                  "AWS_LAMBDA_FUNCTION_NAME": FUNCTION, "SLACK_BOT_USER_ID": "U0BENCH", "SLACK_TEAM_ID": "T0BENCH",
                  "OPSBOT_POLICY": json.dumps({"rules": [{"allow": ["*"], "usergroups": ["S0ONCALL"]}]})}  # fmt: skip
        in_env = {"SLACK_SIGNING_SECRET": SIGNING_SECRET, "SLACK_BOT_TOKEN": BOT_TOKEN}
        variants = [
            ("opsbot, secrets from Secrets Manager", ours, {**common, "OPSBOT_SLACK_SECRET_ID": SECRET_ID}),
            ("opsbot, secrets from the environment", ours, {**common, **in_env}),
            ("minimal Bolt app (baseline)", baseline, {**common, **in_env}),
        ]
        samples: dict[str, list[dict[str, Any]]] = {name: [] for name, _, _ in variants}
        for number in range(args.runs + 1):  # the first round warms the file cache and is not counted
            for name, side, env in variants:  # alternating, so that machine noise hits every side alike
                before = counter.invokes
                result = run_child(python, side, env)
                invokes = counter.invokes - before
                if invokes != 2:
                    raise SystemExit(f"{name}: {invokes} self-invocations for two requests, not 2")
                if number:
                    samples[name].append(result)
    finally:
        server.stop()
        shutil.rmtree(home, ignore_errors=True)

    def med(name: str, key: str) -> float:
        values = [s[key] if key != "first" and key != "second" else s["requests"][key == "second"]
                  for s in samples[name]]  # fmt: skip
        return statistics.median(values)

    def spread(name: str, key: str) -> str:
        values = [
            1000 * (s["import"] if key == "import" else s["requests"][key == "second"]) for s in samples[name]
        ]
        return f"{statistics.median(values):7.1f} ms (min {min(values):6.1f}, max {max(values):6.1f})"

    print(
        f"{args.runs} fresh `{python.name} -S -I` processes per side; each: import, then 2 signed /ops whoami"
    )
    print(f"{'':<38} {'import':<32} {'first request':<32} {'second':>9}  peak RSS: import, requests  modules")
    for name in samples:
        rss = [
            statistics.median(s[key] for s in samples[name]) / 1024 for key in ("import_rss_kib", "rss_kib")
        ]
        print(f"{name:<38} {spread(name, 'import'):<32} {spread(name, 'first'):<32} {1000 * med(name, 'second'):6.1f} ms"
              f"  {rss[0]:6.1f} MiB, {rss[1]:6.1f} MiB  {samples[name][0]['modules']}")  # fmt: skip
    for side in (ours, baseline):
        unzipped, zipped = sizes(side.paths)
        print(f"package of the {side.name:<22} {unzipped / 2**20:6.1f} MiB unzipped, {zipped / 2**20:5.1f} MiB "
              f"zipped ({', '.join(str(p.relative_to(ROOT)) for p in side.paths)})")  # fmt: skip
    deployed, base = "opsbot, secrets from Secrets Manager", "minimal Bolt app (baseline)"
    import_ratio = med(deployed, "import") / med(base, "import")
    first_ratio = med(deployed, "first") / med(base, "first")
    missed = []
    for label, ratio, target in (("import", import_ratio, TARGET_IMPORT_RATIO),
                                 ("first request", first_ratio, TARGET_FIRST_REQUEST_RATIO)):  # fmt: skip
        ok = ratio <= target
        print(f"ratio {label:<14} {ratio:.3f}  (target <= {target})  {'PASS' if ok else 'FAIL'}")
        if not ok:
            missed.append(f"{label} ratio {ratio:.3f} > {target}")
    cold = med(deployed, "import") + med(deployed, "first")
    print(f"import + first request, as deployed: {1000 * cold:.1f} ms (Slack allows 3000 ms; Lambda's own "
          "start-up of the runtime comes on top)")  # fmt: skip
    if missed:
        print("TARGET MISSED: " + "; ".join(missed))
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
