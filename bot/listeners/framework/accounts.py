"""``--account`` and ``--region`` on every command, once, for every listener (docs/accounts.md).

The framework takes the two flags off a command's text before the subcommand's own parser sees it (a
subcommand that declared a flag of that name itself would keep it; none does), chooses the
account and region (``--account``, else the channel's account in the policy, else the default account, else
opsbot's own), refuses an unknown account or a region outside the account's list before any AWS call, and
runs the work inside ``bot.aws.clients.use_target`` so that every client of the request goes there with
credentials naming the Slack user.

Buttons carry the account and region they were made for: the framework wraps the value of every button
and menu option of a reply made under an account (``wrap_buttons``) and unwraps it on the click
(``unwrap_action``), which goes through ``Runtime.place`` and is authorized again for that account exactly
as a typed ``--account`` would be (docs/accounts.md, "What protects a button's account"). A form opened by a
command keeps them in its private_metadata (``FORM_PLACE``). Nothing here does I/O.
"""

from __future__ import annotations

import copy
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from bot.errors import UsageError, echo
from bot.listeners.args import AUTOCORRECTED_DASHES, dashed_flag, dashed_flag_error, tokenize
from bot.listeners.framework.declarations import Command, Reply

if TYPE_CHECKING:  # imported on first use: the Lambda cold start loads no bot.core
    from bot.core.common.accounts import Account

logger = logging.getLogger("opsbot.listeners")

GLOBAL_FLAGS = ("account", "region")
# A value repeated in a message as typed (an account or region name); anything else is not echoed.
_PLAIN_VALUE = re.compile(r"[A-Za-z0-9_.-]{1,40}", re.ASCII)
# A button's account when it was made in opsbot's own account and that account has no name. On a click it
# is opsbot's own account as commands reach it then (Accounts.own); it cannot be typed (not a valid name).
OWN_MARK = "-"

# A button value made under an account: "<marker><account>|<region>|<the listener's own value>".
BUTTON_MARKER = "@acct:"
# Slack's limits on a button's value and on an option's (overflow menus, selects).
SLACK_MAX_BUTTON_VALUE = 2000
SLACK_MAX_OPTION_VALUE = 150
# The most the wrapping adds to a value: the marker, an account name (40 characters at most,
# bot.core.common.accounts.MAX_NAME), a region (25, MAX_REGION) and two separators. The renderers keep
# this much of Slack's limits free (bot.render.blocks.MAX_BUTTON_VALUE, MAX_OPTION_VALUE).
ACCOUNT_ROOM = len(BUTTON_MARKER) + 40 + 25 + 2
# The key of a form's private_metadata that holds the account and region its command was aimed at
# (``{"account": "prod", "region": "us-east-1"}``, either may be absent): the submission goes there.
FORM_PLACE = "opsbot_place"


@dataclass(frozen=True)
class GlobalFlags:
    account: str = ""
    region: str = ""
    # Read from a button's (or option's) value rather than typed: OWN_MARK may name the account only here.
    carried: bool = False

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
    if any(dash in text for dash in AUTOCORRECTED_DASHES):
        tokens = tokenize(text)
        for index, token in enumerate(tokens):
            if dashed_flag(token) in GLOBAL_FLAGS:
                name = dashed_flag(token)
                given = token.partition("=")[2] or (tokens[index + 1] if index + 1 < len(tokens) else "")
                plain = _PLAIN_VALUE.fullmatch(given) is not None
                raise dashed_flag_error(token, name, given if plain else _example(name))
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


def wrap_value(value: str, account: str, region: str, *, limit: int = SLACK_MAX_BUTTON_VALUE) -> str | None:
    """``value`` saying which account and region it was made for; None when that would pass ``limit``
    (Slack's limit on the element: the element is then not drawn, ``wrap_buttons``).

    The listener's value is kept as it is, even one that looks wrapped (text from a user or from AWS
    that starts with the marker): a click reads only the outermost wrapping, so it cannot re-aim itself.
    A value already wrapped for this very account and region (a message's blocks sent again) is left
    as it is."""
    if unwrap_value(value)[:3] == (True, account, region):
        return value
    wrapped = f"{BUTTON_MARKER}{account}|{region}|{value}"
    return wrapped if len(wrapped) <= limit else None


def unwrap_value(value: str) -> tuple[bool, str, str, str]:
    """(wrapped, account, region, the listener's own value): the outermost wrapping only."""
    if not value.startswith(BUTTON_MARKER):
        return False, "", "", value
    parts = value[len(BUTTON_MARKER) :].split("|", 2)
    if len(parts) != 3:
        return False, "", "", value
    return True, parts[0], parts[1], parts[2]


# The element types whose clicks Slack sends back an option (``selected_option``/``selected_options``)
# rather than a value: every option carries the account, as a button's value does.
_OPTION_KEYS = ("options", "option_groups", "initial_option", "initial_options")


def _options_of(element: dict[str, Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for option in element.get("options") or []:
        found.append(option)
    for group in element.get("option_groups") or []:
        found.extend(group.get("options") or [] if isinstance(group, dict) else [])
    if isinstance(element.get("initial_option"), dict):
        found.append(element["initial_option"])
    found.extend(element.get("initial_options") or [])
    return [o for o in found if isinstance(o, dict) and "value" in o]


def _carries(element: dict[str, Any], account: str, region: str) -> bool:
    """Wrap the values of one interactive element in place; False when one of them cannot carry the
    account (too long), and the element must not be drawn (a click would go to another account)."""
    if element.get("type") == "button":
        if "url" in element or str(element.get("action_id", "")).startswith("link:"):
            return True  # a link button opens its URL: its click only records that (register_link_buttons)
        # A button without a value gets one too: its click must not follow the channel's account either.
        wrapped = wrap_value(str(element.get("value", "")), account, region)
        if wrapped is None:
            return False
        element["value"] = wrapped
        return True
    if not any(key in element for key in _OPTION_KEYS):
        return True
    options = _options_of(element)
    values = [wrap_value(str(o["value"]), account, region, limit=SLACK_MAX_OPTION_VALUE) for o in options]
    if any(v is None for v in values):
        return False
    for option, value in zip(options, values, strict=True):
        option["value"] = value
    return True


def wrap_buttons(
    blocks: list[dict[str, Any]] | None, account: str, region: str
) -> list[dict[str, Any]] | None:
    """A copy of ``blocks`` whose buttons (link buttons aside) and menu options (overflow, selects, radio
    buttons, checkboxes) carry ``account`` and ``region``. An element whose value cannot carry them
    within Slack's limit is left out (with its ``actions`` block when it was the only one): the
    renderers keep ``ACCOUNT_ROOM`` free, so that happens only to a value that ignored it."""
    if not blocks:
        return blocks
    kept: list[dict[str, Any]] = []
    for block in copy.deepcopy(blocks):
        if not isinstance(block, dict):
            kept.append(block)
            continue
        if isinstance(block.get("elements"), list) and block.get("type") == "actions":
            elements = [
                e for e in block["elements"] if not isinstance(e, dict) or _carries(e, account, region)
            ]
            if len(elements) != len(block["elements"]):
                logger.warning("an element too long to carry account %r was left out", account)
            if not elements:
                continue
            block["elements"] = elements
        for key in ("accessory", "element"):
            element = block.get(key)
            if isinstance(element, dict) and not _carries(element, account, region):
                logger.warning("an element too long to carry account %r was left out", account)
                if key == "element":  # an input block has no sense without its element
                    block = {}
                    break
                del block[key]
        if block:
            kept.append(block)
    return kept


def unwrap_action(action: Mapping[str, Any]) -> tuple[Mapping[str, Any], GlobalFlags | None]:
    """(the clicked element as the listener made it, the account and region it carried or None).

    A button sends its ``value``; an overflow, a select or radio buttons the chosen ``selected_option``;
    checkboxes and multi-selects ``selected_options``, which must all carry the same account. Raises
    UsageError for a selection that mixes accounts (no element opsbot draws does)."""
    if "value" in action:
        wrapped, account, region, inner = unwrap_value(str(action.get("value", "")))
        if not wrapped:
            return action, None
        return {**action, "value": inner}, GlobalFlags(account, region, carried=True)
    selected = action.get("selected_option")
    if isinstance(selected, Mapping) and "value" in selected:
        wrapped, account, region, inner = unwrap_value(str(selected["value"]))
        if not wrapped:
            return action, None
        return {**action, "selected_option": {**selected, "value": inner}}, GlobalFlags(
            account, region, carried=True
        )
    many = action.get("selected_options")
    if isinstance(many, list) and many:
        chosen = [o for o in many if isinstance(o, Mapping)]
        unwrapped = [unwrap_value(str(o.get("value", ""))) for o in chosen]
        places = {u[:3] for u in unwrapped}
        if len(places) != 1:
            raise UsageError(
                "That selection mixes options made for different accounts; run the command again."
            )
        wrapped, account, region = places.pop()
        if not wrapped:
            return action, None
        options = [{**o, "value": u[3]} for o, u in zip(chosen, unwrapped, strict=True)]
        return {**action, "selected_options": options}, GlobalFlags(account, region, carried=True)
    return action, None
