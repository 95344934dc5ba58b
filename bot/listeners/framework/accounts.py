"""``--account`` and ``--region`` on every command, once, for every listener (docs/accounts.md).

The framework takes the two flags off a command's text before the subcommand's own parser sees it (a
subcommand that declared a flag of that name itself would keep it; none does), chooses the
account and region (``--account``, else the channel's account in the policy, else the default account, else
opsbot's own), refuses an unknown account or a region outside the account's list before any AWS call, and
runs the work inside ``bot.aws.clients.use_target`` so that every client of the request goes there with
credentials naming the Slack user.

Buttons carry the account and region they were made for: the framework wraps the value of every button of
a reply made under an account (``wrap_buttons``) and unwraps it on the click (``unwrap_value``), which is
authorized again for that account. Nothing here does I/O.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from bot.errors import UsageError, echo
from bot.listeners.args import tokenize
from bot.listeners.framework.declarations import Command, Reply

if TYPE_CHECKING:  # imported on first use: the Lambda cold start loads no bot.core
    from bot.core.common.accounts import Account, Accounts

GLOBAL_FLAGS = ("account", "region")
# A button's account when it was made in opsbot's own account and that account has no name.
OWN_MARK = "-"

# A button value made under an account: "<marker><account>|<region>|<the listener's own value>".
BUTTON_MARKER = "@acct:"
# Slack's limit on a button's value.
MAX_BUTTON_VALUE = 2000


@dataclass(frozen=True)
class GlobalFlags:
    account: str = ""
    region: str = ""

    @property
    def given(self) -> bool:
        return bool(self.account or self.region)


def _requote(token: str) -> str:
    if token and not any(c.isspace() or c in "\"'\\" for c in token):
        return token
    return '"' + token.replace("\\", "\\\\").replace('"', '\\"') + '"'


def split_globals(command: Command, text: str) -> tuple[str, GlobalFlags]:
    """(the text without ``--account``/``--region``, their values). The text is returned untouched when
    neither flag is there, so every command parses exactly as before. Raises UsageError."""
    lowered = text.lower()
    if "--account" not in lowered and "--region" not in lowered:
        return text, GlobalFlags()
    tokens = tokenize(text)
    sub = command.find(tokens[0].lower()) if tokens else None
    if sub is None and command.default:
        sub = command.find(command.default)
    own = {flag.name for flag in sub.spec.flags} if sub is not None else set()
    kept: list[str] = []
    found: dict[str, str] = {}
    index = 0
    while index < len(tokens):
        token = tokens[index]
        name, _, inline = token[2:].partition("=") if token.startswith("--") else ("", "", "")
        name = name.lower()
        if name in GLOBAL_FLAGS and name not in own:
            if inline:
                value = inline
            elif index + 1 < len(tokens) and not tokens[index + 1].startswith("--"):
                value = tokens[index + 1]
                index += 1
            else:
                raise UsageError(f"`--{name}` needs a value, e.g. `--{name} {_example(name)}`.")
            if name in found and found[name] != value:
                raise UsageError(f"`--{name}` is given twice ({echo(found[name])} and {echo(value)}).")
            found[name] = value.strip()
        else:
            kept.append(token)
        index += 1
    if not found:
        return text, GlobalFlags()
    return " ".join(_requote(t) for t in kept), GlobalFlags(found.get("account", ""), found.get("region", ""))


# ``--account NAME`` / ``--region R`` (or ``=VALUE``) anywhere in free text, such as a mention's.
_FREE_TEXT_FLAG = re.compile(r"(?<!\S)--(account|region)\b(?:=(\S*)|[ \t]+(?!--)(\S+))?", re.IGNORECASE)


def split_free_text_globals(text: str) -> tuple[str, GlobalFlags]:
    """(``text`` without ``--account``/``--region``, their values) for text that is no command line: a
    mention's (``@opsbot --account prod <pasted error>``). Words only, no shell quoting, so a pasted
    message with an odd quote still parses. Raises UsageError for a flag without a value, or given twice
    with two values."""
    found: dict[str, str] = {}
    for match in _FREE_TEXT_FLAG.finditer(text):
        name = match[1].lower()
        value = (match[2] or match[3] or "").strip()
        if not value:
            raise UsageError(f"`--{name}` needs a value, e.g. `--{name} {_example(name)}`.")
        if name in found and found[name] != value:
            raise UsageError(f"`--{name}` is given twice ({echo(found[name])} and {echo(value)}).")
        found[name] = value
    if not found:
        return text, GlobalFlags()
    return _FREE_TEXT_FLAG.sub(" ", text), GlobalFlags(found.get("account", ""), found.get("region", ""))


def _example(name: str) -> str:
    return "prod" if name == "account" else "eu-west-1"


def check_in_ack(
    accounts: Accounts, flags: GlobalFlags, own_region: str, *, account_id_hint: str = ""
) -> None:
    """What can be refused from the text alone (the ack makes no I/O): an unknown account, a malformed
    region, a region outside the named (or the default) account's list. The channel's account is checked
    in the lazy half, where the policy is at hand. ``account_id_hint`` (the subcommand's) is added when
    ``--account`` was given an account id that names no account."""
    if not flags.given:
        return
    try:
        accounts.choose(asked=flags.account, region=flags.region, own_region=own_region)
    except UsageError as error:
        from bot.core.common.accounts import with_account_id_hint

        raise with_account_id_hint(error, flags.account, account_id_hint) from None


def describe(account: Account, region: str, *, account_id: str = "") -> str:
    """The context line of a reply: which account and region it is about. ``account_id``: the number,
    when the caller knows it and the entry cannot say (opsbot's own has no role ARN to read it from)."""
    where = f"`{account.name}`" if account.name else "opsbot's own account"
    number = account.account_id or account_id
    number = f" ({number})" if number else ""
    return f":cloud: Account {where}{number} · region `{region}`"


def with_context_line(reply: Reply, line: str) -> Reply:
    """``reply`` naming its account and region: a context block at the end (or a line of text)."""
    from bot.render.blocks import context

    if reply.blocks is not None and len(reply.blocks) < 50:
        return replace(reply, blocks=[*reply.blocks, context(line)])
    if reply.blocks is None:
        return replace(reply, text=f"{reply.text}\n{line}")
    return reply


def wrap_value(value: str, account: str, region: str) -> str:
    """A button value that says which account and region it was made for; unchanged when it would pass
    Slack's limit (the click then follows the channel's default account)."""
    _, _, _, inner = unwrap_value(value)
    wrapped = f"{BUTTON_MARKER}{account}|{region}|{inner}"
    return wrapped if len(wrapped) <= MAX_BUTTON_VALUE else value


def unwrap_value(value: str) -> tuple[bool, str, str, str]:
    """(wrapped, account, region, the listener's own value)."""
    if not value.startswith(BUTTON_MARKER):
        return False, "", "", value
    parts = value[len(BUTTON_MARKER) :].split("|", 2)
    if len(parts) != 3:
        return False, "", "", value
    return True, parts[0], parts[1], parts[2]


def wrap_buttons(
    blocks: list[dict[str, Any]] | None, account: str, region: str
) -> list[dict[str, Any]] | None:
    """A copy of ``blocks`` whose buttons (link buttons aside) carry ``account`` and ``region``."""
    if not blocks:
        return blocks
    copied = copy.deepcopy(blocks)

    def visit(node: Any) -> None:
        if isinstance(node, dict):
            if (
                node.get("type") == "button"
                and "value" in node
                and not str(node.get("action_id", "")).startswith("link:")
                and "url" not in node
            ):
                node["value"] = wrap_value(str(node["value"]), account, region)
            for child in node.values():
                visit(child)
        elif isinstance(node, list):
            for child in node:
                visit(child)

    visit(copied)
    return copied


def unwrap_action(action: Mapping[str, Any]) -> tuple[Mapping[str, Any], GlobalFlags | None]:
    """(the clicked element as the listener made it, the account and region it carried or None)."""
    wrapped, account, region, inner = unwrap_value(str(action.get("value", "")))
    if not wrapped:
        return action, None
    return {**action, "value": inner}, GlobalFlags(account, region)
