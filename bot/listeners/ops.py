"""``/ops``: help for every command, what the caller may do, and the policy in force."""

from __future__ import annotations

from typing import Any

from bot.listeners.args import ArgSpec, ParsedArgs, Positional, quoted
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
        decision = runtime.decide(action, mutating=mutating, caller=caller, client=call.client)
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
    ]
    text = "\n".join(lines)
    return Reply(text=text, blocks=[section(text), context(f"Policy: {source}")])


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
    ),
)  # fmt: skip


def register(app: Any) -> None:
    runtime_of(app)  # fail early if the app was not built by bot.app.build_app
    register_command(app, OPS)
