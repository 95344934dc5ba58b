"""``opsbot demo | console | serve | manifest``: run the app locally, or print the Slack app manifest."""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
from pathlib import Path
from typing import Any

from bot.errors import ConfigError, UsageError

MANIFEST_PATH = Path(__file__).resolve().parents[1] / "manifest.json"


def add_parser(subparsers: Any) -> None:
    demo = subparsers.add_parser(
        "demo",
        help="embedded AWS + demo data + local Slack, with a console to type slash commands",
        description="Start an embedded AWS (moto) with demo data and a local Slack, then a console where "
        "you type slash commands and click buttons. Reads commands from standard input when it is not a "
        "terminal, and exits at its end. The embedded AWS listens on 127.0.0.1:4599 (or a free port when "
        "that one is taken, as the banner says), so that the opsbot CLI of another terminal can work on "
        'the demo\'s data while it runs: eval "$(opsbot demo --print-env)".',
    )
    demo.add_argument(
        "--run", action="append", default=[], metavar="COMMAND",
        help="run this console command (e.g. \"/ops help\") and exit; repeatable",
    )  # fmt: skip
    demo.add_argument(
        "--print-env", action="store_true",
        help="print the environment (shell export lines) that points the opsbot CLI at the demo running "
        "in another terminal, and exit",
    )  # fmt: skip
    demo.add_argument(
        "--aws-port", type=_port, default=None, metavar="PORT",
        help="the embedded AWS's port on 127.0.0.1 (default 4599; 0 for any free port); with --print-env, "
        "where the running demo listens",
    )  # fmt: skip
    demo.set_defaults(func=_demo)

    console = subparsers.add_parser(
        "console",
        help="the demo console against the AWS account of this environment (or --embedded-aws)",
    )
    console.add_argument("--run", action="append", default=[], metavar="COMMAND")
    console.add_argument("--embedded-aws", action="store_true", help="use an embedded AWS with demo data")
    console.set_defaults(func=_console)

    serve = subparsers.add_parser(
        "serve", help="serve the app over HTTP (or Socket Mode) for a real workspace"
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=3000)
    serve.add_argument("--socket-mode", action="store_true", help="connect with SLACK_APP_TOKEN instead")
    serve.add_argument("--embedded-aws", action="store_true", help="use an embedded AWS with demo data")
    serve.set_defaults(func=_serve)

    manifest = subparsers.add_parser("manifest", help="print the Slack app manifest with the request URL")
    where = manifest.add_mutually_exclusive_group()
    where.add_argument("--url", help="the SlackEventsUrl output of the deployed stack")
    where.add_argument("--stack", help="read SlackEventsUrl from this CloudFormation stack's outputs")
    manifest.set_defaults(func=_manifest)


def _quiet_console(args: argparse.Namespace) -> None:
    """The console shows the bot's replies; opsbot's INFO lines (one per seeded item, an audit line per
    command) would bury them. Lambda and ``opsbot serve`` keep INFO; an explicit OPSBOT_LOG_LEVEL or
    ``--verbose`` wins here too."""
    import os

    if not getattr(args, "verbose", False):
        os.environ.setdefault("OPSBOT_LOG_LEVEL", "WARNING")


def _port(raw: str) -> int:
    if not raw.isdigit() or not 0 <= int(raw) <= 65535:
        raise argparse.ArgumentTypeError(f"a port is a whole number from 0 to 65535, not {raw!r}")
    return int(raw)


def require_embedded_aws() -> None:
    """The embedded AWS is moto's server, an optional dependency: say how to get it rather than fail with
    ModuleNotFoundError (``pip install opsbot`` installs only what the bot itself needs)."""
    import importlib.util

    missing = [m for m in ("moto", "flask", "flask_cors") if importlib.util.find_spec(m) is None]
    if missing:
        raise ConfigError(
            "The embedded AWS needs moto's server, which is not installed here: install opsbot with its "
            "demo extra, pip install '.[demo]' in a checkout (`make demo` does it)."
        )


def _demo(args: argparse.Namespace) -> int:
    from bot.local.demo import print_environment, run_console

    if args.print_env:
        if args.run:
            raise UsageError("--print-env prints the environment of a demo already running; drop --run.")
        return print_environment(args.aws_port)
    require_embedded_aws()
    _quiet_console(args)
    return run_console(embedded_aws=True, seed=True, runs=args.run, aws_port=args.aws_port)


def _console(args: argparse.Namespace) -> int:
    from bot.local.demo import run_console

    if args.embedded_aws:
        require_embedded_aws()
    _quiet_console(args)
    return run_console(embedded_aws=args.embedded_aws, seed=args.embedded_aws, runs=args.run)


def _serve(args: argparse.Namespace) -> int:
    import os

    from bot.app import build_app
    from bot.config import Settings
    from bot.local.server import TrackingLazyRunner, make_server

    logging.getLogger().setLevel(logging.INFO)
    if args.embedded_aws:
        require_embedded_aws()
        from bot.aws.state import StateTable, create_state_table
        from bot.local.aws import start_embedded_aws
        from bot.local.seeds import SeedContext, seed_all

        aws = start_embedded_aws()
        settings = Settings.from_env()
        create_state_table(settings.state_table)
        from datetime import UTC, datetime

        for line in seed_all(SeedContext(settings, StateTable(settings.state_table), datetime.now(UTC))):
            print(line)
        print(f"embedded AWS at {aws.endpoint}")
    settings = Settings.from_env()
    settings.require_slack()
    if args.socket_mode:
        if not os.environ.get("SLACK_APP_TOKEN"):
            raise ConfigError(
                "SLACK_APP_TOKEN is not set.",
                hint="Create an app-level token with connections:write and enable Socket Mode.",
            )
        from slack_bolt.adapter.socket_mode import SocketModeHandler

        app = build_app(settings)
        print("opsbot connected with Socket Mode; Ctrl-C to stop.")
        SocketModeHandler(app, os.environ["SLACK_APP_TOKEN"]).start()
        return 0
    app = build_app(settings, lazy_runner=TrackingLazyRunner(logging.getLogger("opsbot.lazy")))
    server = make_server(app, args.host, args.port)
    print(f"opsbot listening on http://{args.host}:{server.server_address[1]}/slack/events; Ctrl-C to stop.")
    try:
        server.serve_forever()
    finally:
        server.server_close()
    return 0


def manifest_with_url(manifest: dict[str, Any], url: str) -> dict[str, Any]:
    if not re.match(r"^https://\S+$", url):
        raise UsageError(f"The request URL must be an https:// URL, not {url!r}.")
    filled = json.loads(json.dumps(manifest))
    for command in filled.get("features", {}).get("slash_commands", []):
        command["url"] = url
    filled.setdefault("settings", {}).setdefault("interactivity", {"is_enabled": True})["request_url"] = url
    events = filled["settings"].get("event_subscriptions")
    if isinstance(events, dict):  # mentions (app_mention) arrive at the same URL
        events["request_url"] = url
    return filled


def _stack_url(stack: str) -> str:
    from bot.aws.clients import client
    from bot.aws.errors import aws_errors

    with aws_errors(resource=f"stack {stack}"):
        outputs = client("cloudformation").describe_stacks(StackName=stack)["Stacks"][0].get("Outputs", [])
    for output in outputs:
        if output.get("OutputKey") == "SlackEventsUrl":
            return str(output["OutputValue"])
    raise ConfigError(f"Stack {stack} has no SlackEventsUrl output; is it an opsbot stack?")


def _manifest(args: argparse.Namespace) -> int:
    if not MANIFEST_PATH.exists():
        raise ConfigError(f"{MANIFEST_PATH} is missing; run opsbot from its source checkout.")
    manifest = json.loads(MANIFEST_PATH.read_text())
    url = args.url or (_stack_url(args.stack) if args.stack else "")
    if url:
        manifest = manifest_with_url(manifest, url)
    sys.stdout.write(json.dumps(manifest, indent=2) + "\n")
    return 0
