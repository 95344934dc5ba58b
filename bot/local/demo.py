"""``opsbot demo`` / ``opsbot console``: embedded AWS + demo data + local Slack + the real app + a console.

The console talks to the same Bolt app that runs on Lambda, over HTTP with signed requests; the only
differences are where AWS and Slack's Web API are (moto and a local server on 127.0.0.1).

While the demo runs, the demo API keeps receiving requests (``LiveTraffic``: new log lines for a tail),
and its embedded AWS listens on a known port (``DEMO_AWS_PORT``) where it also keeps the environment the
``opsbot`` CLI of another terminal needs (``--print-env`` reads it back). Quitting stops the work still
running (a tail, as its Stop button would) rather than waiting for it.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import shlex
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TextIO

from bot.config import Settings
from bot.errors import ConfigError
from bot.local.console import Console, Person
from bot.local.serving import shutdown_now
from bot.local.slack_api import LocalSlack

logger = logging.getLogger("opsbot.demo")

DEMO_PEOPLE = (Person("U0ALICE", "alice"), Person("U0BOB", "bob"))
DEMO_CHANNELS = {"C0OPS": "ops", "C0ALERTS": "ops-alerts"}
ONCALL_GROUP = "S0ONCALL"
# Alice is on call (a member of the group that may change things); Bob may only look.
DEMO_POLICY = {
    "description": "demo: the on-call group may do everything; everyone else may read",
    "rules": [{"allow": ["*"], "usergroups": [ONCALL_GROUP], "description": "on-call engineers"}],
}


# The embedded AWS of ``opsbot demo`` listens on this port when it is free, so that another terminal finds
# the running demo there (``opsbot demo --print-env``); ``--aws-port`` chooses another.
DEMO_AWS_PORT = 4599
# Where the running demo keeps the environment of ``--print-env``: in its own embedded AWS, which exists
# exactly as long as the demo runs (a file could outlive a demo that was killed).
ENV_PARAMETER = "/opsbot-demo/cli-environment"
# How long the end of the demo waits for background work told to stop (a tail ends within a poll round).
STOP_WAIT_SECONDS = 10.0


@dataclass
class LocalStack:
    slack: LocalSlack
    settings: Settings
    app: Any
    runner: Any
    server: Any
    app_url: str
    aws: Any = None
    banner: list[str] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)
    traffic: Any = None  # bot.local.apilogs_traffic.LiveTraffic while it runs
    cli_env: dict[str, str] = field(default_factory=dict)

    def stop_background_work(self, timeout: float = STOP_WAIT_SECONDS) -> int:
        """Ask the work still running to stop, as its Stop buttons would, and wait for it a little.
        Returns how many lazy functions were running."""
        running = int(self.runner.running)
        if running:
            for tail_id in running_tails(self.slack):
                try:
                    stop_tail(self.settings, tail_id)
                except Exception:  # the end of the demo goes on: the threads are daemons
                    logger.debug("could not stop tail %s", tail_id, exc_info=True)
            self.runner.wait_idle(timeout)
        return running

    def stop(self) -> None:
        from bot.aws.functions import forget_local_functions

        if self.traffic is not None:
            self.traffic.stop()
        self.stop_background_work()
        shutdown_now(self.server)
        self.slack.stop()
        forget_local_functions()  # the seeds' in-process functions (the DNS mirror)
        if self.aws is not None:
            self.aws.stop()


def running_tails(slack: LocalSlack) -> list[str]:
    """The tails whose message still offers Stop (a tail's message loses its Stop button when it ends)."""
    from bot.listeners.framework.accounts import unwrap_value
    from bot.render.apilogs import ACTION_STOP

    found = []
    for message in slack.visible():
        for block in message.blocks:
            for element in block.get("elements", []) if block.get("type") == "actions" else []:
                if element.get("action_id") == ACTION_STOP and element.get("value"):
                    # With OPSBOT_ACCOUNTS the button's value also names its account and region.
                    found.append(unwrap_value(str(element["value"]))[3])
    return found


def stop_tail(settings: Settings, tail_id: str) -> None:
    """What the Stop button does (``bot.listeners.apilogs``): the flag the tail polls."""
    import time

    from bot.aws.state import StateTable
    from bot.core.apilogs.commands import stop_flag_key

    StateTable(settings.state_table).set_flag(
        stop_flag_key(tail_id), {"by": "", "at": int(time.time())}, ttl_seconds=3600
    )


def cli_environment(settings: Settings, aws: Any) -> dict[str, str]:
    """What the ``opsbot`` CLI in another process needs to work on the demo's data: the embedded AWS
    (endpoint, region, its dummy credentials) and the names the seeds chose (tables, default API, zones).

    ``OPSBOT_DNS_FUNCTION`` is left out: the demo's mirror function runs inside the demo's process, and
    the CLI does DNS work itself anyway. Slack's variables too: the CLI does not talk to Slack."""
    from bot.local.aws import FAKE_CREDENTIALS

    env = {
        "AWS_ENDPOINT_URL": aws.endpoint,
        "AWS_REGION": aws.region,
        "AWS_DEFAULT_REGION": aws.region,
        **FAKE_CREDENTIALS,
        "OPSBOT_STATE_TABLE": settings.state_table,
        "OPSBOT_MAILING_TABLE": settings.mailing_table,
        "OPSBOT_DEVICE_TABLE": settings.device_table,
        "OPSBOT_FANOUT_FUNCTION": settings.fanout_function,
        "OPSBOT_FANOUT_TABLE": ",".join(settings.fanout_tables),
        "OPSBOT_DEFAULT_API": settings.default_api,
        "OPSBOT_DEFAULT_STAGE": settings.default_stage,
        "OPSBOT_DNS_ZONES": settings.dns_zones_json,
        "OPSBOT_ACCOUNTS": settings.accounts_json,
        "OPSBOT_MAIL_FEEDBACK_TOPIC": settings.extra.get("OPSBOT_MAIL_FEEDBACK_TOPIC", ""),
        "OPSBOT_DEVICE_FUNCTION": settings.extra.get("OPSBOT_DEVICE_FUNCTION", ""),
    }
    return {name: value for name, value in env.items() if value}


def export_lines(env: dict[str, str]) -> list[str]:
    """``env`` as POSIX shell lines (``eval "$(opsbot demo --print-env)"``). A profile named in the
    environment would be looked up (and missing) before the dummy credentials are used: unset it."""
    return ["unset AWS_PROFILE", *(f"export {name}={shlex.quote(value)}" for name, value in env.items())]


def publish_cli_environment(env: dict[str, str]) -> None:
    from bot.aws.clients import client

    client("ssm").put_parameter(
        Name=ENV_PARAMETER,
        Value=json.dumps(env),
        Type="String",
        Overwrite=True,
        Description="opsbot demo: the environment of `opsbot demo --print-env`",
    )


def read_cli_environment(port: int = DEMO_AWS_PORT, region: str = "us-east-1") -> dict[str, str]:
    """The environment a demo running on 127.0.0.1:``port`` published (``--print-env``).

    A clear ConfigError when nothing answers there, or something that is not an opsbot demo."""
    import boto3
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError

    from bot.local.aws import FAKE_CREDENTIALS

    where = f"127.0.0.1:{port}"
    # Only this process: a profile named in the environment would be looked up (and may not exist).
    os.environ.pop("AWS_PROFILE", None)
    ssm = boto3.session.Session(
        aws_access_key_id=FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        aws_session_token=FAKE_CREDENTIALS["AWS_SESSION_TOKEN"],
        region_name=region,
    ).client(
        "ssm",
        endpoint_url=f"http://{where}",
        config=Config(retries={"total_max_attempts": 1}, connect_timeout=3, read_timeout=10),
    )
    try:
        raw = ssm.get_parameter(Name=ENV_PARAMETER)["Parameter"]["Value"]
        env = json.loads(raw)
    except EndpointConnectionError:
        raise ConfigError(
            f"No opsbot demo is running on {where}: the demo's embedded AWS lives only while the demo runs.",
            hint="Start `opsbot demo` (or `make demo`) in another terminal first; if its banner names "
            "another port, pass it with --aws-port.",
        ) from None
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "ParameterNotFound":
            raise ConfigError(
                f"The AWS on {where} holds no opsbot demo environment: the demo may still be starting "
                "(its banner prints the environment when it is ready), or another program uses that port.",
                hint="Try again once the demo's banner shows; pass the port the banner names with --aws-port.",
            ) from None
        raise ConfigError(
            f"What answers on {where} is not a running opsbot demo ({error}).",
            hint="Pass the port the demo's banner names with --aws-port.",
        ) from None
    except (BotoCoreError, ValueError, KeyError):
        raise ConfigError(
            f"What answers on {where} is not a running opsbot demo.",
            hint="Pass the port the demo's banner names with --aws-port.",
        ) from None
    if not isinstance(env, dict):
        raise ConfigError(f"What answers on {where} is not a running opsbot demo.")
    return {str(k): str(v) for k, v in env.items()}


def start_local_stack(
    *, embedded_aws: bool, seed: bool, live_traffic: bool = False, aws_port: int = 0
) -> LocalStack:
    """Everything the demo needs, started in this process; the environment is pointed at it.

    ``live_traffic`` keeps requests arriving at the demo API (what a tail shows); ``aws_port`` is the
    embedded AWS's port (0: a free one; a port in use raises OSError)."""
    from bot.app import build_app
    from bot.local.server import TrackingLazyRunner, make_server, serve_in_thread, server_url

    aws = None
    if embedded_aws:
        from bot.local.aws import start_embedded_aws

        aws = start_embedded_aws(port=aws_port)
    slack = LocalSlack(
        usergroups={ONCALL_GROUP: ["U0ALICE"]},
        users={p.user_id: p.name for p in DEMO_PEOPLE},
        channels=dict(DEMO_CHANNELS),
    ).start()
    os.environ.update(
        {
            "SLACK_API_URL": slack.api_url,
            "SLACK_BOT_TOKEN": slack.bot_token,
            "SLACK_SIGNING_SECRET": secrets.token_hex(16),
            "SLACK_BOT_USER_ID": slack.bot_user_id,
            "SLACK_TEAM_ID": slack.team_id,
            "OPSBOT_ALERT_CHANNEL": "C0ALERTS",
        }
    )
    if embedded_aws:
        os.environ["OPSBOT_POLICY"] = json.dumps(DEMO_POLICY)
        os.environ.pop("OPSBOT_POLICY_PARAMETER", None)
    banner: list[str] = []
    facts: dict[str, Any] = {}
    if embedded_aws:
        from bot.aws.state import StateTable, create_state_table
        from bot.local.seeds import SeedContext, seed_all

        settings = Settings.from_env()
        create_state_table(settings.state_table)
        if seed:
            ctx = SeedContext(settings, StateTable(settings.state_table), datetime.now(UTC), slack=slack)
            banner = seed_all(ctx)
            facts = ctx.facts
    # Seeds may have set variables the app reads (default API, DNS zones...): read them now.
    settings = Settings.from_env()
    cli_env: dict[str, str] = {}
    if aws is not None:
        cli_env = cli_environment(settings, aws)
        publish_cli_environment(cli_env)
    traffic = facts.get("apilogs.live_traffic") if live_traffic else None
    if traffic is not None:
        traffic.start()
    # Daemon threads: work still running when the console quits must not keep the process alive.
    runner = TrackingLazyRunner(logging.getLogger("opsbot.lazy"), daemon=True)
    app = build_app(settings, lazy_runner=runner)
    server = make_server(app)
    serve_in_thread(server)
    return LocalStack(
        slack, settings, app, runner, server, server_url(server), aws, banner, facts, traffic, cli_env
    )


def _start_demo_stack(aws_port: int | None, *, embedded_aws: bool, seed: bool) -> tuple[LocalStack, str]:
    """The stack on the demo's port (``DEMO_AWS_PORT`` unless ``aws_port`` says otherwise). When the default
    port is taken (another demo), on a free one, with a sentence saying so; a port asked for is not
    replaced."""
    if not embedded_aws:
        return start_local_stack(embedded_aws=False, seed=False), ""
    wanted = DEMO_AWS_PORT if aws_port is None else aws_port
    try:
        return start_local_stack(embedded_aws=True, seed=seed, live_traffic=True, aws_port=wanted), ""
    except OSError as error:
        if aws_port is not None:  # a port asked for by name: another would not be what was asked
            raise ConfigError(
                f"Port {aws_port} of 127.0.0.1 is in use ({error.strerror}); the demo's AWS cannot listen there.",
                hint="Choose another with --aws-port (0 for any free port).",
            ) from None
        note = f"(port {wanted} is in use ({error.strerror}), so the embedded AWS took a free port)"
        return start_local_stack(embedded_aws=True, seed=seed, live_traffic=True, aws_port=0), note


def cli_banner(stack: LocalStack, note: str = "") -> list[str]:
    """How to point the ``opsbot`` CLI of another terminal at this demo."""
    port = stack.aws.port
    command = "opsbot demo --print-env" + ("" if port == DEMO_AWS_PORT else f" --aws-port {port}")
    return [
        "The opsbot CLI works on this demo's data from another terminal, as long as this demo runs (its "
        "embedded AWS lives in this process)" + (f" {note}" if note else "") + ":",
        f'  eval "$({command})"',
        "or paste:",
        *("  " + line for line in export_lines(stack.cli_env)),
    ]


def run_console(
    *,
    embedded_aws: bool,
    seed: bool,
    runs: Sequence[str],
    stdin: TextIO | None = None,
    out: TextIO | None = None,
    aws_port: int | None = None,
) -> int:
    out = out or sys.stdout
    stdin = stdin or sys.stdin
    stack, port_note = _start_demo_stack(aws_port, embedded_aws=embedded_aws, seed=seed)
    console: Console | None = None
    try:
        interactive = not runs and stdin.isatty()
        console = Console(
            slack=stack.slack,
            app_url=stack.app_url,
            signing_secret=stack.settings.slack_signing_secret,
            runner=stack.runner,
            people=DEMO_PEOPLE,
            channels=dict(DEMO_CHANNELS),
            out=out,
            interactive=interactive,
        )
        where = (
            f"embedded AWS at {stack.aws.endpoint}" if stack.aws else "the AWS account of this environment"
        )
        console.say(f"opsbot {'demo' if seed else 'console'}: {where}, local Slack at {stack.slack.url}")
        console.say("You are alice (on call) in #ops; `as bob` to be someone who may only look.")
        for line in stack.banner:
            console.say("  " + line)
        if stack.traffic is not None:
            console.say("  shop-api keeps receiving requests while the demo runs: a tail shows them arrive.")
        if stack.aws is not None:
            for line in cli_banner(stack, port_note):
                console.say(line)
        if interactive:
            console.say(
                "Type /ops help to start, `help` for console commands, `quit` to leave. Work that takes a "
                "while (a tail) goes on in the background while you type."
            )
        # Seeds may have posted alerts before the console subscribed: show them now.
        for message in stack.slack.visible():
            console._show(message, "")
        if runs:
            for line in runs:
                if not console.handle(line):
                    break
        else:
            console.loop(stdin, interactive=interactive)
        # Quit (or the script's end) stops what still runs, so that the demo ends promptly; its last
        # messages are still checked against Slack's limits below.
        console.close()
        stack.stop_background_work()
        if stack.slack.violations:
            console.say("\nSlack would have rejected some messages:")
            for violation in stack.slack.violations:
                console.say("  " + violation)
            return 1
        return 0
    finally:
        if console is not None:
            console.close()
        stack.stop()


def print_environment(aws_port: int | None = None, out: TextIO | None = None) -> int:
    """``opsbot demo --print-env``: the running demo's environment for the CLI, as shell lines."""
    env = read_cli_environment(DEMO_AWS_PORT if aws_port is None else aws_port)
    (out or sys.stdout).write("\n".join(export_lines(env)) + "\n")
    return 0
