"""``opsbot demo`` / ``opsbot console``: embedded AWS + demo data + local Slack + the real app + a console.

The console talks to the same Bolt app that runs on Lambda, over HTTP with signed requests; the only
differences are where AWS and Slack's Web API are (moto and a local server on 127.0.0.1).
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TextIO

from bot.config import Settings
from bot.local.console import Console, Person
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

    def stop(self) -> None:
        from bot.aws.functions import forget_local_functions

        self.server.shutdown()
        self.slack.stop()
        forget_local_functions()  # the seeds' in-process functions (the DNS mirror)
        if self.aws is not None:
            self.aws.stop()


def start_local_stack(*, embedded_aws: bool, seed: bool) -> LocalStack:
    """Everything the demo needs, started in this process; the environment is pointed at it."""
    from bot.app import build_app
    from bot.local.server import TrackingLazyRunner, make_server, serve_in_thread, server_url

    aws = None
    if embedded_aws:
        from bot.local.aws import start_embedded_aws

        aws = start_embedded_aws()
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
    runner = TrackingLazyRunner(logging.getLogger("opsbot.lazy"))
    app = build_app(settings, lazy_runner=runner)
    server = make_server(app)
    serve_in_thread(server)
    return LocalStack(slack, settings, app, runner, server, server_url(server), aws, banner, facts)


def run_console(
    *,
    embedded_aws: bool,
    seed: bool,
    runs: Sequence[str],
    stdin: TextIO | None = None,
    out: TextIO | None = None,
) -> int:
    out = out or sys.stdout
    stdin = stdin or sys.stdin
    stack = start_local_stack(embedded_aws=embedded_aws, seed=seed)
    try:
        console = Console(
            slack=stack.slack,
            app_url=stack.app_url,
            signing_secret=stack.settings.slack_signing_secret,
            runner=stack.runner,
            people=DEMO_PEOPLE,
            channels=dict(DEMO_CHANNELS),
            out=out,
        )
        interactive = not runs and stdin.isatty()
        where = (
            f"embedded AWS at {stack.aws.endpoint}" if stack.aws else "the AWS account of this environment"
        )
        console.say(f"opsbot {'demo' if seed else 'console'}: {where}, local Slack at {stack.slack.url}")
        console.say("You are alice (on call) in #ops; `as bob` to be someone who may only look.")
        for line in stack.banner:
            console.say("  " + line)
        if interactive:
            console.say("Type /ops help to start, `help` for console commands, `quit` to leave.")
        # Seeds may have posted alerts before the console subscribed: show them now.
        for message in stack.slack.visible():
            console._show(message, "")
        if runs:
            for line in runs:
                if not console.handle(line):
                    break
        else:
            console.loop(stdin, interactive=interactive)
        if stack.slack.violations:
            console.say("\nSlack would have rejected some messages:")
            for violation in stack.slack.violations:
                console.say("  " + violation)
            return 1
        return 0
    finally:
        stack.stop()
