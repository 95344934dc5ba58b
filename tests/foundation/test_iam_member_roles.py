"""member-account.yaml's roles allow every AWS call opsbot makes in a member account, and little else.

On the demo stack, the second account (``prod``) is given what opsbot's own account has (SES feedback,
devices, fan-out targets with a hooked DynamoDB stream, alarms, a hosted zone edited by hand), then every
subcommand of the command registry runs there with ``--account prod`` and one button of each kind its
replies offer is clicked; an alarm of prod goes through the intake and its post's buttons are clicked; the
SES feedback, device registration and DNS mirror functions do their work in prod. The doctor is aimed at
prod first (``/ops doctor --account prod`` and ``opsbot --account prod doctor``), while prod holds what the
demo's seeds give it: all green but the fan-out seed's deliberately broken target, so no check is refused
by the read role. Every botocore call is recorded with what made it. Then:

- each call made with a member role's credentials is allowed by that role's policy (the failure names the
  action and the commands that called it), and each action a role grants is called (least privilege);
- a read ran under the read-only role, a change (a ``:lock:`` subcommand or button, the functions that
  write) under the change role, as ``changeRoleArn`` promises (docs/accounts.md);
- nothing went to opsbot's own account but its own resources (the state table, the sts calls that
  assume the roles, the doctor's checks of opsbot's own wiring): a thread that lost the request's account
  would read opsbot's own data instead;
- every subcommand and button of the registry was run here, or is listed below with the reason.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import random
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from bot.aws.clients import client, use_target
from bot.local.apilogs_traffic import uuid1_at
from bot.local.console import Console
from bot.local.demo import DEMO_CHANNELS, DEMO_PEOPLE, LocalStack
from bot.local.seeds.accounts import PROD_ACCOUNT_ID, prod_target
from tests.foundation.test_iam_coverage import (
    NEEDS_NO_GRANT,
    CallRecorder,
    demo_stack,
    grants,
    iam_action,
    member_template,
)

__all__ = ["demo_stack"]  # the fixture, shared with the IAM coverage of opsbot's own functions

pytestmark = pytest.mark.slow  # the whole demo, seeded in process, and a second account seeded like it

READ, CHANGE = "ReadRole", "ChangeRole"
LEGACY_SPELLING = "Legacy.Reader@Example.COM"

# Subcommands not run in the member account, and why.
NOT_RUN = {
    "ops.help": "answered in the acknowledgement from the registry: no AWS call",
}

# Buttons not clicked in the member account, and why.
NOT_CLICKED = {
    "apilogs:tail": "starts a tail: the calls of /apilogs tail, which runs here",
    "apilogs:tail-path": "starts a tail of one path: the calls of /apilogs tail, which runs here",
    "apilogs:stop": "sets a tail's stop flag, in opsbot's state table",
    "mail:history": (
        "on the SES feedback alerts, whose buttons go to the channel's account (docs/accounts.md); its calls "
        "are /mail status's, which runs here"
    ),
    "apilogs:errors-lookup-more": (
        "Look up of a group's other requests (prod's groups hold one each): apilogs:errors-lookup's calls"
    ),
    "dns:force": "offered when a guard refuses a plan; its calls are Apply's (dns:apply), clicked here",
}

# Granted by a member role, but not called here: each needs something only real AWS provides.
ONLY_IN_AWS = {
    READ: {
        "logs:StartLiveTail": (
            "the live tail and the doctor's Live Tail probe (the demo's endpoint has none: the tail polls, "
            "and the probe says skip)"
        ),
    },
    CHANGE: {
        "ses:GetSuppressedDestination": "the SES account suppression list (OPSBOT_SES_SUPPRESSION off in the demo)",
        "ses:PutSuppressedDestination": "the SES account suppression list",
        "ses:DeleteSuppressedDestination": "the SES account suppression list",
    },
}

# What opsbot's own credentials may be used for during commands aimed at the member account.
OWN_ALLOWED = {"sts:AssumeRole", "sts:GetCallerIdentity"}  # assuming the roles; /ops accounts' check
# And for the doctor, which checks opsbot's own wiring in its own account wherever it is aimed
# (docs/ops.md): the subscription of opsbot's SES feedback topic (its state table is allowed above).
DOCTOR_OWN_ALLOWED = {"sns:ListSubscriptionsByTopic"}
# The doctor's checks in prod that are not ok in the demo, and why: (check, status) -> reason. Any other
# finding that is not ok fails the test (a refusal by the read role would be a warn or a fail).
DOCTOR_NOT_OK = {
    ("Live Tail permission", "skip"): "the demo's endpoint cannot stream Live Tail",
    ("feedback topic", "skip"): "SES feedback goes to the opsbot stack deployed in prod (docs/accounts.md)",
    ("registration rule", "skip"): "IoT registrations go to the opsbot stack deployed in prod",
    ("TSIG", "skip"): "the demo's DNS master allows transfers without a TSIG key",
    ("target", "fail"): "the fan-out seed's target 'billing' names its function by ARN, for /fanout check",
}


@dataclasses.dataclass(frozen=True)
class ProdFacts:
    kinesis_arn: str
    request_id: str
    zone_id: str
    bounced: str
    complained: str
    healthy: str
    device: dict[str, str]
    owned_serial: str
    owned_client_id: str


def seed_prod(stack: LocalStack) -> ProdFacts:
    """prod gets what the demo gives opsbot's own account, through the same seeds and real handlers."""
    from bot.aws.dynamo import to_item
    from bot.aws.state import StateTable
    from bot.local.seeds import SeedContext, alarms, device, fanout, mail

    ctx = SeedContext(
        settings=stack.settings, state=StateTable(stack.settings.state_table), now=datetime.now(UTC)
    )
    zone_id = stack.facts["accounts.prod_zone_id"]
    with use_target(prod_target(stack.settings.region)):
        for seed in (mail, device, fanout, alarms):
            seed.seed(ctx)
        # The customers table's stream hooked too, so /fanout health reads a DynamoDB source's table.
        client("lambda").create_event_source_mapping(
            EventSourceArn=ctx.facts["fanout.dynamodb_arn"], FunctionName="fanout", StartingPosition="LATEST"
        )
        # A row of the handler opsbot replaced, keyed by the address as SES spelled it: feedback for it
        # copies opsbot's state into that row (the SES feedback function, below).
        client("dynamodb").put_item(
            TableName=stack.settings.mailing_table,
            Item=to_item(
                {"UserId": LEGACY_SPELLING, "notificationType": "Delivery", "from": "old@example.org",
                 "timestamp": "2016-01-27T14:59:38.237Z", "state": "enable"}
            ),
        )  # fmt: skip
        # A record added by hand: /dns resync has a change to Apply.
        client("route53").change_resource_record_sets(
            HostedZoneId=zone_id,
            ChangeBatch={
                "Changes": [
                    {
                        "Action": "CREATE",
                        "ResourceRecordSet": {
                            "Name": "stray.corp.example.com.",
                            "Type": "TXT",
                            "TTL": 60,
                            "ResourceRecords": [{"Value": '"added by hand in prod"'}],
                        },
                    }
                ]
            },
        )
    facts = ctx.facts
    return ProdFacts(
        kinesis_arn=facts["fanout.kinesis_arn"],
        request_id=stack.facts["accounts.prod_request_id"],
        zone_id=zone_id,
        bounced=facts["mail.bounced"],
        complained=facts["mail.complained"],
        healthy=facts["mail.healthy"],
        device={k: facts[f"device.{k}"] for k in ("serial", "client_id", "code")},
        owned_serial=facts["device.activated_serial"],
        owned_client_id=facts["device.activated_client_id"],
    )


def seed_target_pages(stack: LocalStack, facts: ProdFacts) -> None:
    """Enough targets (each with a function ARN where a name belongs: a finding each) for the list and the
    check to take pages. After the doctor: these findings are the seed's on purpose, not the wiring's."""
    from bot.aws.fanout import register_like_cli

    with use_target(prod_target(stack.settings.region)):
        for number in range(60):
            register_like_cli(
                "fanoutTargets",
                source_arn=facts.kinesis_arn,
                target_id=f"batch{number:02d}",
                target_type="lambda",
                destination=f"arn:aws:lambda:us-east-1:{PROD_ACCOUNT_ID}:function:batch{number:02d}",
                active=True,
            )


def prod_commands(facts: ProdFacts) -> Iterator[tuple[str, frozenset[str]]]:
    """(command line, buttons of its reply left for a later command). Order matters where a click
    changes what later commands see."""
    days_ago = uuid1_at(int(time.time() * 1000) - 2 * 86_400_000, random.Random(7))
    device = facts.device
    nothing: frozenset[str] = frozenset()
    yield from (
        ("/ops whoami", nothing),
        ("/ops policy", nothing),
        ("/ops accounts", nothing),
        (f"/apilogs {facts.request_id}", nothing),
        # Before the log groups existed: the answer says so (DescribeLogGroups).
        (f"/apilogs {days_ago}", nothing),
        ("/apilogs errors --since 2h", nothing),
        ("/apilogs tail --since 1h --for 5s", nothing),  # Look up on its failing requests
        (f"/mail status {facts.bounced}", nothing),  # Re-enable
        (f"/mail status {facts.healthy}", nothing),  # Suppress
        ("/mail stats", nothing),
        ("/mail list --state disable --limit 1", nothing),  # More addresses
        (f"/mail reenable {facts.complained}", nothing),
        ("/mail suppress reader01@example.com", nothing),
        (f"/device show {facts.owned_serial}", nothing),  # every client id of a serial number
        (f"/device show {facts.owned_serial} {facts.owned_client_id}", nothing),  # one device
        ("/device list --activated no --limit 10", nothing),
        (
            f"/device activate {device['serial']} {device['client_id']} {device['code']} you@example.com",
            nothing,
        ),
        (f"/device deactivate {device['serial']} {device['client_id']}", nothing),
        ("/dns status", nothing),
        ("/dns plan corp.example.com", nothing),
        ("/dns resync corp.example.com", frozenset({"dns:apply"})),  # Cancel
        ("/dns resync corp.example.com", nothing),  # Apply
        ("/fanout list", nothing),
        ("/fanout check", nothing),
        ("/fanout check --deep", nothing),
        ("/fanout health", nothing),  # Pause
        ("/fanout resume clicks", nothing),
        ("/fanout pause clicks", nothing),
        ("/fanout health", nothing),  # Resume
        ("/fanout activate orders search", nothing),
        ("/fanout deactivate orders replica", nothing),
    )


def doctor_in_prod(session: Session) -> None:
    """The doctor aimed at prod, in Slack and from a terminal, on prod as the demo's seeds leave it: every
    area checked, all green but what DOCTOR_NOT_OK explains (no check refused by the read role, none that
    could not be made); the calls it made there are checked against the read role below with every other
    command's."""
    from bot.core.ops.doctor import AREAS

    answer = session.command("/ops doctor", frozenset())
    assert re.search(r"1 FAIL, \d+ ok, 4 skip in account prod \(222222222222\), us-east-1", answer), answer
    assert "target `Kinesis stream orders / billing`" in answer, answer
    code, printed = session.cli("--account", "prod", "doctor", "--json", role=READ)
    document = json.loads(printed)
    assert document["scope"].startswith(f"account prod ({PROD_ACCOUNT_ID}), us-east-1"), document["scope"]
    not_ok = [
        check
        for check in document["checks"]
        if check["status"] != "ok"
        and not ((check["check"], check["status"]) in DOCTOR_NOT_OK and "denied" not in check["detail"])
    ]
    assert not not_ok, json.dumps(not_ok, indent=1)
    assert [c["target"] for c in document["checks"] if c["status"] == "fail"] == [
        "Kinesis stream orders / billing"
    ]
    assert code == 1  # that target
    assert {check["area"] for check in document["checks"]} == set(AREAS)


def alarm_notifications(stack: LocalStack) -> list[dict[str, Any]]:
    """prod's alarms as CloudWatch notifies them: the API's, a function's, a stream-driven function's
    (iterator age) and a custom metric's, so Errors since takes each of its ways."""
    from bot.local.seeds.alarms import API_ALARM, LAMBDA_ALARM, notification

    with use_target(prod_target(stack.settings.region)):
        api, function = notification(API_ALARM), notification(LAMBDA_ALARM)
    stream = {
        **function,
        "AlarmName": "fanout-iterator-age",
        "AlarmArn": function["AlarmArn"].replace(LAMBDA_ALARM, "fanout-iterator-age"),
        "Trigger": {
            **function["Trigger"],
            "MetricName": "IteratorAge",
            "Dimensions": [{"name": "FunctionName", "value": "fanout"}],
        },
    }
    custom = {
        **function,
        "AlarmName": "checkout-declines",
        "AlarmArn": function["AlarmArn"].replace(LAMBDA_ALARM, "checkout-declines"),
        "Trigger": {
            **function["Trigger"],
            "Namespace": "Checkout",
            "MetricName": "Declines",
            "Dimensions": [],
        },
    }
    assert {n["AWSAccountId"] for n in (api, function, stream, custom)} == {PROD_ACCOUNT_ID}
    return [api, function, stream, custom]


class Session:
    """The console, the recorder and what each label (a command, a click, a function) was expected to
    run as."""

    def __init__(self, stack: LocalStack, recorder: CallRecorder) -> None:
        from bot.listeners.framework import runtime_of

        self.stack = stack
        self.recorder = recorder
        self.runtime = runtime_of(stack.app)
        self.out = io.StringIO()
        self.console = Console(
            slack=stack.slack,
            app_url=stack.app_url,
            signing_secret=stack.settings.slack_signing_secret,
            runner=stack.runner,
            people=DEMO_PEOPLE,
            channels=dict(DEMO_CHANNELS),
            out=self.out,
            wait_seconds=120,
        )
        self.expected: dict[str, str] = {}  # label -> the member role it must run as
        self.ran: set[str] = set()  # policy actions of the subcommands run
        self.clicked: set[str] = set()  # action ids of the buttons clicked

    def as_label(self, label: str, role: str) -> None:
        self.expected[label] = role
        self.recorder.label = label

    def command(self, line: str, leave: frozenset[str]) -> str:
        """Runs ``line`` with ``--account prod``; returns what the console showed."""
        start = len(self.out.getvalue())
        words = line.split()
        command = self.runtime.commands[words[0].lstrip("/")]
        sub = command.find(words[1]) if len(words) > 1 else None
        sub = sub or command.find(command.default)
        assert sub is not None, line
        self.ran.add(command.action_of(sub))
        label = f"{line} --account prod"
        self.as_label(label, CHANGE if sub.mutating else READ)
        before = len(self.console.buttons)
        self.console.handle(label)
        self.click_new(before, label, leave)
        return self.out.getvalue()[start:]

    def message(self, word: str, text: str) -> None:
        """``mention TEXT`` or ``shortcut TEXT`` in the console (a read: apilogs.lookup), then the buttons
        of its answers."""
        label = f"{word} {text}"
        self.as_label(label, READ)
        before = len(self.console.buttons)
        self.console.handle(label)
        self.click_new(before, label)

    def cli(self, *argv: str, role: str) -> tuple[int, str]:
        """``opsbot ARGV`` in this process, as a terminal with the demo's credentials runs it."""
        from bot.cli import main

        self.as_label("opsbot " + " ".join(argv), role)
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            code = main(list(argv))
        return code, out.getvalue()

    def click_new(self, since: int, origin: str, leave: frozenset[str] = frozenset()) -> None:
        """One button of each kind not clicked yet, among those shown since ``since`` (the replies of
        clicks included), as long as its message still shows it."""
        index = since
        while index < len(self.console.buttons):
            button, message, revision = self.console.buttons[index]
            index += 1
            action = button.action_id
            if button.url or action in self.clicked | leave or action in NOT_CLICKED:
                continue
            if message.deleted or message.revision != revision:
                continue
            spec = self.runtime.buttons.get(action)
            assert spec is not None, f"{action} is in no listener's registry"
            self.clicked.add(action)
            self.as_label(
                f"{button.text} [{action}] on the reply to {origin}", CHANGE if spec.mutating else READ
            )
            self.console.handle(f"click {index}")
            if self.console.pending is not None:  # a confirmation dialog: answered as a user would
                self.console.handle("confirm")


def test_member_roles_allow_every_command_in_a_second_account(demo_stack: LocalStack) -> None:
    from bot.aws.targets import in_event_account
    from bot.core.device.commands import registration_handler
    from bot.core.dns.commands import mirror_handler
    from bot.intake.alarms import AlarmsApp
    from bot.intake.ses_feedback import SesFeedbackApp
    from bot.local import mail_samples
    from bot.local.seeds.alarms import sqs_event
    from bot.local.seeds.device import registration_payload

    stack = demo_stack
    settings = stack.settings
    facts = seed_prod(stack)
    # Built before recording: the demo's side (DescribeAlarms, the topic) is CloudWatch's, not opsbot's.
    alarm_events = [(n["AlarmName"], sqs_event(n)) for n in alarm_notifications(stack)]
    # The feedback and registration functions of opsbot's stack, told to work in prod.
    in_prod = dataclasses.replace(settings, extra={**settings.extra, "OPSBOT_FUNCTION_ACCOUNT": "prod"})

    with CallRecorder() as recorder:
        session = Session(stack, recorder)
        doctor_in_prod(session)
        with recorder.paused():
            seed_target_pages(stack, facts)
        for line, leave in prod_commands(facts):
            session.command(line, leave)
        # A mention aimed at prod (the demo binds no channel to it), and Share in thread on its answer.
        session.message("mention", f"--account prod what happened to {facts.request_id}?")

        # prod's alarms through the intake (with the graph: moto cannot draw it, the call is made), then
        # their posts' buttons.
        intake = AlarmsApp(settings)
        for name, event in alarm_events:
            label = f"the alarms intake (AlarmsFunction): {name} of prod"
            session.as_label(label, READ)
            before = len(session.console.buttons)
            assert intake(event, None) == {"batchItemFailures": []}
            session.click_new(before, label)

        session.as_label("the SES feedback function, OPSBOT_FUNCTION_ACCOUNT=prod", CHANGE)
        now_ms = int(time.time() * 1000)
        feedback = mail_samples.sqs_event(
            [
                mail_samples.bounce(["new.bounce@example.com"], now_ms),
                mail_samples.delivery([facts.healthy], now_ms),
                mail_samples.complaint([LEGACY_SPELLING], now_ms),
            ]
        )
        run = in_event_account(SesFeedbackApp(in_prod), "ses-feedback", in_prod)
        assert run(feedback, None) == {"batchItemFailures": []}

        session.as_label("the device registration function, OPSBOT_FUNCTION_ACCOUNT=prod", CHANGE)
        in_event_account(registration_handler(in_prod), "device-registration", in_prod)(
            registration_payload(51), None
        )

        session.as_label("the DNS mirror function's schedule, prod's zone", CHANGE)
        mirror_handler(settings)({"domain": "corp.example.com", "zone_id": facts.zone_id}, None)
        recorder.label = ""

    transcript = session.out.getvalue()
    for failure in ("Something went wrong", "could not assume role"):
        assert failure not in transcript, transcript

    # Every subcommand and button of the registry ran in prod, or is listed with its reason.
    runtime = session.runtime
    every = {cmd.action_of(sub) for cmd in runtime.commands.values() for sub in cmd.subcommands}
    not_run = sorted(every - session.ran - set(NOT_RUN))
    assert not not_run, f"subcommands not run in prod (add them to prod_commands): {not_run}"
    assert session.ran & set(NOT_RUN) == set()
    not_clicked = sorted(set(runtime.buttons) - session.clicked - set(NOT_CLICKED))
    assert not not_clicked, f"buttons no reply in prod offered (add a command that shows them): {not_clicked}"
    assert session.clicked & set(NOT_CLICKED) == set()

    callers = recorder.callers

    def called_by(where: str, action: str, table: str = "") -> str:
        return "; ".join(sorted(callers.get((where, action, table), {"(no label)"})))

    # Nothing went to opsbot's own account but its own resources.
    def own_allowed(action: str, labels: set[str]) -> bool:
        return action in OWN_ALLOWED or (
            action in DOCTOR_OWN_ALLOWED and all(" doctor" in label for label in labels)
        )

    leaks = [
        f"{action}{' on table ' + table if table else ''} by {sorted(labels)}"
        for (where, action, table), labels in sorted(callers.items())
        if where == "" and not own_allowed(action, labels) and table != settings.state_table
    ]
    assert not leaks, f"calls made in opsbot's own account while aimed at prod: {leaks}"

    # A read ran as the read-only role, a change as the change role.
    wrong = sorted(
        f"{label} called {action} as {where} (expected {session.expected[label]})"
        for (where, action, _), labels in callers.items()
        if where in (READ, CHANGE)
        for label in labels
        if session.expected.get(label) != where
    )
    assert not wrong, wrong

    # Each role's policy allows each of its calls (DynamoDB calls on the tables it names), and each
    # action it grants is called.
    member = member_template()
    for role in (READ, CHANGE):
        assert role in recorder.elsewhere, (role, sorted(recorder.elsewhere))
        calls = recorder.elsewhere[role].calls
        allowed = grants(stack, role, member)
        missing = []
        for (service, operation), tables in sorted(calls.items()):
            action = iam_action(service, operation)
            if action in NEEDS_NO_GRANT:
                continue
            for table in sorted(tables) or [None]:
                if not any(
                    action in actions and (table is None or (named and (table in named or "*" in named)))
                    for actions, named in allowed
                ):
                    where = f" on table {table}" if table else ""
                    missing.append(f"{action}{where}, called by {called_by(role, action, table or '')}")
        assert not missing, f"member-account.yaml's {role} does not allow: " + json.dumps(missing, indent=1)

        # Per table for the statements that name tables: a table's grant is for what is called on it.
        used = {(iam_action(*key), table) for key, tables in calls.items() for table in tables or {""}}
        used_actions = {action for action, _ in used}
        exceptions = set(ONLY_IN_AWS[role])
        unused = sorted(
            {
                f"{action} on table {table}" if table else action
                for actions, named in allowed
                for action in actions
                for table in (sorted(named) if named and "*" not in named else [""])
                if action not in exceptions
                and ((action, table) not in used if table else action not in used_actions)
            }
        )
        assert not unused, f"{role} grants what nothing called here (least privilege): {unused}"
        assert not exceptions & used_actions, sorted(exceptions & used_actions)  # they stay true
    # The run reached every capability's calls in prod (a recorder that saw nothing would pass above).
    assert re.search(r"ChangeResourceRecordSets", json.dumps(sorted(recorder.elsewhere[CHANGE].calls)))
