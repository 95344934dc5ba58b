"""The account of work that is not a Slack command: the scheduled and event-driven functions, and /dns work
the Slack function hands to the DNS mirror function.

- ``for_function``: the target of a function's AWS calls, from its configuration (``OPSBOT_FUNCTION_ACCOUNT``,
  a zone's ``account``) or from the event (``AWSAccountId`` as IoT rules and API Gateway put it, ``account``
  as EventBridge does), with ``opsbot-<function>`` as session name and source identity.
- ``in_event_account``: a handler wrapped to run in the account its event names.
- ``posting_account``: the configured account a function's work was in, for the buttons of the messages it
  posts (a click on them goes to that account, whatever account the channel is bound to).
- ``to_wire``/``from_wire``: a Slack request's target carried in an invocation of another opsbot function,
  re-resolved there from that function's own OPSBOT_ACCOUNTS (a payload cannot name a role of its own).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from bot.aws.clients import Target, current_target, use_target
from bot.config import Settings

if TYPE_CHECKING:
    from bot.core.common.accounts import Account

log = logging.getLogger("opsbot.accounts")

WIRE_KEY = "opsbot_target"


def for_function(
    settings: Settings, function: str, *, account: str = "", account_id: str = "", mutating: bool = True
) -> Target | None:
    """Where function ``function``'s calls go: the account named ``account`` (configuration), else the
    configured account whose roles are in ``account_id`` (the event), else opsbot's own (None). An
    account id that no entry names stays in opsbot's own account and is logged: the event came from an
    account opsbot has no role in. ``mutating``: the function writes there (the mailing table, the
    catalog, a hosted zone), so it takes the account's change role; a function that only reads there
    (the alarms intake) takes the read-only role."""
    from bot.aws.clients import own_table

    own_table(settings.state_table)
    accounts = settings.accounts()
    if not accounts.configured:
        return None
    entry = None
    if account:
        entry = accounts.named(account)
    elif account_id:
        entry = next((a for a in accounts.entries if a.account_id == account_id), None)
        if entry is None and not any(a.own for a in accounts.entries if a.account_id == account_id):
            log.info(
                "event from account %s, which OPSBOT_ACCOUNTS does not name: opsbot's own account", account_id
            )
    if entry is None or entry.own:
        return None
    return Target(
        account=entry.name,
        role_arn=entry.role_for(mutating=mutating),
        external_id=entry.external_id,
        region=_region_of(entry, settings),
        principal=f"opsbot-{function}",
    )


def _region_of(entry: Account, settings: Settings) -> str:
    """The function's own region when the account allows it, else the account's first."""
    return entry.regions[0] if entry.regions and settings.region not in entry.regions else settings.region


def posting_account(settings: Settings, context: Any = None) -> tuple[Account, str] | None:
    """(the configured account, region) an event-driven function's work was in, for the buttons of the
    messages it posts; None without OPSBOT_ACCOUNTS (the buttons stay as they were).

    The target ``in_event_account`` chose (``OPSBOT_FUNCTION_ACCOUNT`` or the event's account), else the
    entry whose role is in the account the function runs in (its Lambda ARN: opsbot's stack deployed in a
    member account, whose table a click must change through that entry's role), else opsbot's own account
    (its entry without roleArn, or the unnamed own account). No I/O."""
    from bot.core.common.accounts import OWN_ACCOUNT

    accounts = settings.accounts()
    if not accounts.configured:
        return None
    target = current_target()
    if target is not None and target.role_arn:
        entry = accounts.get(target.account)
        if entry is not None:
            return entry, target.region or _region_of(entry, settings)
    from bot.observability import account_of

    running = account_of(getattr(context, "invoked_function_arn", ""))
    if running:
        entry = next((a for a in accounts.entries if not a.own and a.account_id == running), None)
        if entry is not None:
            return entry, _region_of(entry, settings)
    own = next((a for a in accounts.entries if a.own), OWN_ACCOUNT)
    return own, _region_of(own, settings)


def event_account(event: Any) -> str:
    """The account id an event names at its top level, '' when none."""
    if not isinstance(event, Mapping):
        return ""
    for key in ("AWSAccountId", "account"):
        value = event.get(key)
        if isinstance(value, str) and value.isdigit() and len(value) == 12:
            return value
    return ""


def in_event_account(
    handler: Callable[[Any, Any], Any], function: str, settings: Settings | None = None
) -> Callable[[Any, Any], Any]:
    """``handler`` run in the account of its configuration (``OPSBOT_FUNCTION_ACCOUNT``) or its event."""

    def run(event: Any, context: Any) -> Any:
        resolved = settings or Settings.from_env()
        if isinstance(event, Mapping) and WIRE_KEY in event:
            return handler(event, context)  # another opsbot function's request: it carries its target
        named = resolved.extra.get("OPSBOT_FUNCTION_ACCOUNT", "").strip()
        target = for_function(resolved, function, account=named, account_id=event_account(event))
        with use_target(target):
            return handler(event, context)

    return run


def to_wire() -> dict[str, str] | None:
    target = current_target()
    if target is None or (not target.role_arn and not target.region):
        return None
    return {"account": target.account, "region": target.region, "principal": target.principal}


def from_wire(settings: Settings, wire: Any, *, mutating: bool) -> Target | None:
    """The target another opsbot function sent, checked against this function's OPSBOT_ACCOUNTS."""
    if not isinstance(wire, Mapping):
        return None
    name, region, principal = (str(wire.get(k) or "") for k in ("account", "region", "principal"))
    accounts = settings.accounts()
    entry, where = accounts.choose(asked=name, region=region, own_region=settings.region)
    return Target(
        account=entry.name,
        role_arn=entry.role_for(mutating=mutating),
        external_id=entry.external_id,
        region=where,
        principal=principal,
    )
