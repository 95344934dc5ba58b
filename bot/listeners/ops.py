"""``/ops``: help for every command, what the caller may do, the policy in force, and the doctor."""

from __future__ import annotations

from typing import Any

from bot.listeners.args import ArgSpec, Flag, ParsedArgs, Positional, quoted
from bot.listeners.framework import Call, Command, Reply, Runtime, Subcommand, register_command, runtime_of
from bot.security.policy import Caller


def _help(runtime: Runtime, args: ParsedArgs, caller: Caller) -> Reply:
    from bot.listeners.framework import command_help
    from bot.listeners.framework.commands import LOCK_NOTE, is_mutating
    from bot.render.blocks import context, escape, header, section

    mutating = runtime.mutating_actions()
    wanted = str(args.get("command") or "").strip().lower().lstrip("/")
    if wanted:
        # `/ops help dns [resync]` answers as `/dns help [resync]` does.
        command = runtime.commands.get(wanted)
        if command is None:
            known = ", ".join(f"`{c.slash}`" for c in runtime.commands.values())
            text = f":warning: There is no command {escape(quoted(wanted))}. Commands: {known}."
            return Reply(text=text, blocks=[section(text)], outcome="usage")
        sub_name = str(args.get("subcommand") or "").strip().lower()
        sub = command.find(sub_name) if sub_name else None
        if sub_name and (sub is None or sub.hidden):
            text = f":warning: `{command.slash}` has no subcommand {escape(quoted(sub_name))}."
            return Reply(text=text, blocks=[section(text)], outcome="usage")
        return command_help(command, sub, mutating)

    blocks = [header("opsbot commands")]
    lines = []
    locks = False
    for command in runtime.commands.values():
        names = []
        for sub in command.subcommands:
            if sub.hidden or sub.name == command.default:
                continue
            locked = is_mutating(command, sub, mutating)
            locks = locks or locked
            names.append(sub.name + (" :lock:" if locked else ""))
        subs = ", ".join(names)
        default = command.find(command.default) if command.default else None
        lead = f" {escape(default.spec.usage())}" if default is not None else ""
        lines.append(f"*{command.slash}*{lead} — {command.summary}" + (f"\n      {subs}" if subs else ""))
    blocks.append(section("\n".join(lines)))
    footer = "Every command answers `help`, e.g. `/dns help` or `/ops help dns`."
    if locks:  # the lock's legend only where a line shows one
        footer += f" {LOCK_NOTE} `/ops whoami` shows your grants."
    blocks.append(context(footer))
    text = "opsbot commands:\n" + "\n".join(lines)
    return Reply(text=text, blocks=blocks)


def _whoami(call: Call) -> Reply:
    from bot.render.blocks import context, section

    runtime = call.runtime
    caller = call.caller
    try:
        policy = runtime.authorizer.policy()
        source = policy.source
    except Exception as error:  # a malformed policy is itself the answer here
        policy, source = None, f"malformed ({error})"
    allowed: list[str] = []
    denied: list[str] = []
    for action in sorted(runtime.known_actions()):
        mutating = action in runtime.mutating_actions()
        decision = runtime.decide(
            action, mutating=mutating, caller=caller, client=call.client, account=call.account
        )
        (allowed if decision.allowed else denied).append(f"`{action}`" + (" :lock:" if mutating else ""))
    groups = ""
    if policy is not None:
        wanted = {g for rule in policy.rules for g in rule.usergroups}
        found = runtime.authorizer.lookup_groups(caller.user_id, wanted, call.client) if wanted else None
        member_of = found.member_of if found is not None else frozenset()
        groups = ", ".join(f"<!subteam^{g}>" for g in sorted(member_of)) or "none named in the policy"
        if found is not None and found.unknown:
            groups += "; Slack would not list " + ", ".join(
                f"<!subteam^{g}> ({reason})" for g, reason in sorted(found.unknown.items())
            )
    lines = [
        f"*You are* <@{caller.user_id}> (`{caller.user_id}`) in <#{caller.channel_id}>, "
        f"team `{caller.team_id}`.",
        f"*User groups:* {groups or 'unknown'}",
        f"*You may run:* {', '.join(allowed) or 'nothing'}",
        f"*Not allowed here:* {', '.join(denied) or 'nothing'}",
        *_per_account(call),
    ]
    text = "\n".join(lines)
    return Reply(text=text, blocks=[section(text), context(f"Policy: {source}")])


def _per_account(call: Call) -> list[str]:
    """With several accounts: which accounts there are and what the caller may change in each."""
    runtime = call.runtime
    accounts = runtime.accounts()
    if not accounts.configured:
        return []
    mutating = sorted(runtime.mutating_actions())
    lines = [f"*Here, commands go to:* `{call.account or 'own'}` (region `{call.region}`)", "*Per account:*"]
    for account in accounts.entries:
        may = [
            f"`{action}`"
            for action in mutating
            if runtime.decide(
                action, mutating=True, caller=call.caller, client=call.client, account=account.name
            ).allowed
        ]
        regions = ", ".join(account.regions) if account.regions else "any region"
        default = " (default)" if account is accounts.default() else ""
        lines.append(
            f"• `{account.name}`{default} ({regions}): may change {', '.join(may) or 'nothing'}; "
            "reads follow the rules above"
        )
    return lines


def _accounts(call: Call) -> Reply:
    from bot.aws.clients import use_target
    from bot.core.ops.accounts import check_accounts
    from bot.render.ops import accounts_blocks

    with use_target(None):  # each role is checked from opsbot's own credentials
        report = check_accounts(call.settings, principal=call.user_id)
    text, blocks = accounts_blocks(report)
    failing = [c.account.label for c in report.checks if c.verdict != "ok"]
    return Reply(text=text, blocks=blocks, detail=("failing: " + ", ".join(failing)) if failing else "")


def _policy(call: Call) -> Reply:
    from bot.render.blocks import context, escape, section

    runtime = call.runtime
    try:
        policy = runtime.authorizer.policy()
    except Exception as error:
        text = f":x: opsbot's policy is malformed, so every action is denied: {error}"
        return Reply(text=text, blocks=[section(text)], outcome="error")
    lines = [
        f"*Policy* from {escape(policy.source)}. Read-only commands: *{policy.default_read}* by default."
    ]
    if not policy.rules:
        lines.append("No rules: every action that changes something is denied.")
    for number, rule in enumerate(policy.rules, start=1):
        actions = ", ".join(f"`{a}`" for a in rule.actions)
        why = f" — {escape(rule.description)}" if rule.description else ""
        lines.append(f"{number}. *{rule.effect}* {actions} to {rule.who()}{why}")
    mutating = ", ".join(f"`{a}`" for a in sorted(runtime.mutating_actions())) or "none"
    text = "\n".join(lines)
    return Reply(text=text, blocks=[section(text), context(f"Actions that need a grant: {mutating}")])


def _doctor_options(args: ParsedArgs, seconds: float) -> Any:
    from bot.core.ops.commands import DoctorOptions, parse_areas

    # --account and --region are the framework's (docs/accounts.md): the run's target says where to read.
    return DoctorOptions(
        expect_account=str(args.get("expect-account") or "").strip(),
        all_stages=bool(args.get("all")),
        areas=parse_areas(args.get("only")),
        timeout=seconds,
    )


def _validate_doctor(args: ParsedArgs) -> None:
    from bot.core.ops.commands import validate_options

    validate_options(_doctor_options(args, 1.0))


def _doctor(call: Call) -> Reply:
    from bot.core.ops.commands import doctor
    from bot.render.ops import doctor_blocks
    from bot.slack_web import SlackWebReader

    # The answer must be posted before Lambda stops this run: the checks get what is left, less the
    # time to render and post (a check still running then is reported as cut short).
    seconds = max(5.0, min(DOCTOR_SECONDS, call.seconds_left() - 10))
    report = doctor(
        call.settings,
        _doctor_options(call.args, seconds),
        slack=SlackWebReader(call.client),
        signing_secret_set=True,  # this request's signature was verified with it
    )
    text, blocks = doctor_blocks(report)
    summary = report.summary()
    return Reply(
        text=text,
        blocks=blocks,
        detail=", ".join(f"{n} {status}" for status, n in summary.items() if n),
    )


# Long enough for a region's reads, short enough for someone waiting in the channel.
DOCTOR_SECONDS = 45.0

# Added to the refusal of `--account 123456789012` given to the doctor (`opsbot doctor` too): its own
# `--account` took the id of the account the credentials had to be in, before `--account` named a
# configured account on every command.
ACCOUNT_ID_HINT = (
    "To check that the doctor's credentials are in account {id}, use `--expect-account {id}`; `--account` "
    "names an account of OPSBOT_ACCOUNTS to check, as on every command."
)

OPS = Command(
    name="ops",
    summary="help for every command, what you may do, the policy in force",
    subcommands=(
        Subcommand(
            "help",
            "List every opsbot command, or show one command's help (as `/dns help` does).",
            quick=_help,
            spec=ArgSpec(
                positionals=(
                    Positional("command", "a command's name, e.g. dns", optional=True),
                    Positional("subcommand", "one of its subcommands, e.g. resync", optional=True),
                )
            ),
            examples=("/ops help", "/ops help dns", "/ops help mail reenable"),
        ),
        Subcommand("whoami", "Show who you are to opsbot and which actions you may run.", run=_whoami,
                   working="Checking your permissions…"),
        Subcommand("policy", "Show the authorization policy in force.", run=_policy,
                   working="Reading the policy…"),
        Subcommand("accounts", "List the AWS accounts opsbot serves and check that each role can be "
                   "assumed (one sts:AssumeRole and sts:GetCallerIdentity each). Read-only.",
                   run=_accounts, working="Checking each account's role…"),
        Subcommand(
            "doctor",
            "Check the wiring every command depends on (Slack, AWS, each capability) and say how to fix "
            "what is missing. Read-only.",
            run=_doctor,
            validate=_validate_doctor,
            working="Checking Slack, AWS and each capability's wiring (read-only)…",
            spec=ArgSpec(
                flags=(
                    Flag("all", "every API stage of the region, not only the default API's", kind="bool"),
                    Flag("only", "areas to check, e.g. apilogs,mail (default: all)", metavar="AREAS"),
                    Flag("expect-account", "fail unless the checks are made in this account id", metavar="ID"),
                )
            ),
            examples=(
                "/ops doctor",
                "/ops doctor --only apilogs --all",
                "/ops doctor --region eu-west-1",
                "/ops doctor --account prod",
            ),
            account_id_hint=ACCOUNT_ID_HINT,
            diagnoses_config=True,
        ),
    ),
)  # fmt: skip


def register(app: Any) -> None:
    runtime_of(app)  # fail early if the app was not built by bot.app.build_app
    register_command(app, OPS)
