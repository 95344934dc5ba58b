"""The per-app runtime: settings, the policy decision, the lazy deadline and the audit record of every
invocation; the Bolt context plumbing that lets a lazy run answer in the ack.
"""

from __future__ import annotations

import logging
import time
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bot.config import Settings
from bot.errors import UsageError
from bot.listeners.framework.accounts import OWN_MARK, GlobalFlags
from bot.listeners.framework.declarations import (
    ACK_HANDLE,
    DEFAULT_LAZY_SECONDS,
    UNSTARTED_AUDIT_SECONDS,
    ButtonAction,
    Command,
    ModalSubmit,
    Reply,
)
from bot.security import audit
from bot.security.policy import Caller, Decision

if TYPE_CHECKING:  # imported on first use: the Lambda cold start loads no bot.core or bot.aws
    from bot.aws.clients import Target
    from bot.core.common.accounts import Account, Accounts

logger = logging.getLogger("opsbot.listeners")


class Runtime:
    """Per-app state shared by all listeners: settings, authorizer, the registry, the deadline."""

    def __init__(self, settings: Settings) -> None:
        from bot.aws.clients import own_table

        self.settings = settings
        own_table(settings.state_table)  # opsbot's own, whatever account a command is aimed at
        self.commands: dict[str, Command] = {}
        self.buttons: dict[str, ButtonAction] = {}
        self.modals: dict[str, ModalSubmit] = {}
        self._authorizer: Any = None
        # Set by the Lambda handler for each invocation (epoch seconds); None outside Lambda.
        self.lambda_deadline: float | None = None
        # lazy function -> what to do when it could not be started (``lazy_not_started``)
        self._unstarted: dict[Callable[..., None], Callable[[Any, BaseException], None]] = {}

    # The authorizer is created after every listener registered (it validates action names).
    def seal(self) -> None:
        from bot.security.authorizer import Authorizer

        self._authorizer = Authorizer(self.settings, self.known_actions())

    @property
    def authorizer(self) -> Any:
        if self._authorizer is None:
            self.seal()
        return self._authorizer

    def known_actions(self) -> set[str]:
        actions = {cmd.action_of(sub) for cmd in self.commands.values() for sub in cmd.subcommands}
        actions |= {action for cmd in self.commands.values() for action in cmd.sensitive}
        actions |= {b.action for b in self.buttons.values()}
        actions |= {m.action for m in self.modals.values()}
        return actions

    def mutating_actions(self) -> set[str]:
        actions = {cmd.action_of(s) for cmd in self.commands.values() for s in cmd.subcommands if s.mutating}
        actions |= {action for cmd in self.commands.values() for action in cmd.sensitive}
        actions |= {b.action for b in self.buttons.values() if b.mutating}
        actions |= {m.action for m in self.modals.values() if m.mutating}
        return actions

    def deadline(self) -> float:
        if self.lambda_deadline is not None:
            return self.lambda_deadline - 5  # leave time to report before Lambda stops us
        return time.time() + DEFAULT_LAZY_SECONDS

    def decide(
        self, action: str, *, mutating: bool, caller: Caller, client: Any, account: str = ""
    ) -> Decision:
        """``account``: the account the request is aimed at (rules may be limited to accounts)."""
        return self.authorizer.decide(
            action,
            mutating=mutating,
            user=caller.user_id,
            channel=caller.channel_id,
            slack=client,
            account=account,
        )

    def decide_now(
        self, action: str, *, mutating: bool, caller: Caller, account: str = ""
    ) -> Decision | None:
        """The decision, when it needs no network call (``Authorizer.decide_now``); else None."""
        return self.authorizer.decide_now(
            action, mutating=mutating, user=caller.user_id, channel=caller.channel_id, account=account
        )

    def accounts(self) -> Accounts:
        return self.settings.accounts()

    def place(self, caller: Caller, flags: GlobalFlags | None = None) -> Place:
        """The account and region a request goes to: ``--account``/``--region`` (or a button's), else the
        channel's account in the policy, else the default account, else opsbot's own. Raises UsageError
        for an unknown account or a region outside the account's list, before any AWS call.

        What a button carries is checked exactly as if the clicker had typed it: a click can reach no
        account and no region a command could not (docs/accounts.md, "What protects a button's account")."""
        flags = flags or GlobalFlags()
        accounts = self.accounts()
        own_region = self.settings.region
        if flags.carried and not accounts.configured:
            # Only the framework wraps values, and only with OPSBOT_ACCOUNTS: a button made before it was
            # unset, or a value that merely looks wrapped; neither is followed anywhere.
            raise UsageError(
                "This button was made for another account or region when opsbot served several accounts "
                "(OPSBOT_ACCOUNTS), which it no longer does: run the command again."
            )
        if flags.carried and flags.account == OWN_MARK:
            # A button made in opsbot's own account while it had no name: that account as a command reaches
            # it now (its entry, or the unnamed own account), with the region checked against its list.
            own = accounts.own()
            if own is None:
                raise UsageError(
                    "This button acts in opsbot's own account, which no command can reach: OPSBOT_ACCOUNTS "
                    f"has no entry for it and `{accounts.default().name}` is the default. Add an entry "
                    'without roleArn (such as `"own": {}`) to act there, or run the command again.'
                )
            region = accounts.region_in(own, region=flags.region, own_region=own_region)
            return Place(own, region, accounts.several, accounts.configured)
        channel_account = ""
        if not flags.account and accounts.configured:
            try:
                channel_account = self.authorizer.policy().channel_account(caller.channel_id)
            except Exception:  # a malformed policy denies the request anyway; its decision says why
                channel_account = ""
        account, region = accounts.choose(
            asked=flags.account, channel_account=channel_account, region=flags.region, own_region=own_region
        )
        return Place(account, region, accounts.several, accounts.configured)

    def place_now(self, caller: Caller, flags: GlobalFlags) -> Place | None:
        """``place`` without I/O, for the ack: None when only the policy (not at hand) can tell which
        account the channel is bound to; then what the text alone can refuse (a malformed region) is
        refused and the rest (the region against the channel's account) is left to ``place``. Raises
        UsageError as ``place`` does, and ConfigError when OPSBOT_ACCOUNTS is malformed."""
        from bot.core.common.accounts import Accounts

        accounts = self.accounts()
        channel_account = ""
        if not flags.account and accounts.configured:
            try:
                policy = self.authorizer.policy_now()
            except Exception:  # a malformed policy: the lazy half denies the request and says why
                policy = None
            if policy is None:
                # No entries: no account's list to check the region against, only the region's form.
                Accounts().choose(region=flags.region)
                return None
            channel_account = policy.channel_account(caller.channel_id)
        account, region = accounts.choose(
            asked=flags.account,
            channel_account=channel_account,
            region=flags.region,
            own_region=self.settings.region,
        )
        return Place(account, region, accounts.several, accounts.configured)

    def on_unstarted(
        self, function: Callable[..., None], handler: Callable[[Any, BaseException], None]
    ) -> None:
        self._unstarted[function] = handler

    def lazy_not_started(self, function: Callable[..., None], request: Any, error: BaseException) -> None:
        """The lazy half of a request could not be handed over (on Lambda: the self-invocation failed).

        Called in the ack path, by the lazy runner: the listener's handler replaces the ack with a sentence
        and writes the audit record the lazy run would have written. Never raises: Bolt would answer 500."""
        handler = self._unstarted.get(function)
        if handler is None:
            logger.error("lazy work could not be started: %s", error, exc_info=error)
            return
        try:
            handler(request, error)
        except Exception:
            logger.exception("lazy work could not be started, and reporting that failed too")

    def audit(
        self,
        *,
        ref: str,
        started: float,
        caller: Caller,
        kind: str,
        command: str,
        action: str,
        args: str,
        outcome: str,
        detail: str = "",
        account: str = "",
        region: str = "",
    ) -> None:
        record = audit.build_record(
            ref=ref,
            started=started,
            ended=time.time(),
            user=caller.user_id,
            team=caller.team_id,
            channel=caller.channel_id,
            user_name=caller.user_name,
            kind=kind,
            command=command,
            action=action,
            args=args,
            outcome=outcome,
            detail=detail,
            account=account,
            region=region,
        )
        audit.write(record, state_table=self.settings.state_table, ttl_days=self.settings.audit_ttl_days)


@dataclass(frozen=True)
class Place:
    """Where a request's AWS calls go: the account, the region, and whether replies name them."""

    account: Account
    region: str
    named: bool = False  # more than one account is configured: replies and audit records say which
    configured: bool = False  # OPSBOT_ACCOUNTS is set: buttons carry the account they were made for

    @property
    def button_account(self) -> str:
        return self.account.name or OWN_MARK

    def target(self, principal: str, *, mutating: bool) -> Target:
        from bot.aws.clients import Target

        return Target(
            account=self.account.name,
            role_arn=self.account.role_for(mutating=mutating),
            external_id=self.account.external_id,
            region=self.region,
            principal=principal,
        )

    def dress(self, reply: Reply) -> Reply:
        """The reply as the framework sends it: its buttons carry the account and region (so a click goes
        where the message was about), and it names them when there is a choice of accounts."""
        from dataclasses import replace

        from bot.listeners.framework.accounts import describe, with_context_line, wrap_buttons

        if not self.configured:
            return reply
        if reply.blocks:
            reply = replace(reply, blocks=wrap_buttons(reply.blocks, self.button_account, self.region))
        return with_context_line(reply, describe(self.account, self.region)) if self.named else reply

    def dress_client(self, client: Any) -> Any:
        """The Slack client a run posts with: the buttons of the messages it posts or updates itself (a
        DNS preview with Apply, a tail's thread, an announcement) carry the account and region too, as
        the framework's own replies do; without OPSBOT_ACCOUNTS, the client itself."""
        return _DressingClient(client, self) if self.configured else client

    def audit_fields(self) -> dict[str, str]:
        return {"account": self.account.label, "region": self.region} if self.named else {}

    def context_line(self) -> str:
        """The line naming the account and region; "" when there is no choice of accounts."""
        from bot.listeners.framework.accounts import describe

        return describe(self.account, self.region) if self.named else ""

    def tell(self, text: str) -> str:
        """A plain answer (an error, a refusal) naming the account and region, as a dressed reply does: a
        table missing "in prod" reads differently from one missing in opsbot's own account."""
        line = self.context_line()
        return f"{text}\n{line}" if line else text


class _DressingClient:
    """A Slack WebClient whose chat.postMessage, chat.postEphemeral and chat.update wrap the buttons of
    the blocks they send (``Place.dress_client``) and, with several accounts, end with the line naming the
    account and region (the messages a run posts itself: a tail's channel message, a DNS preview, an
    announcement), as the framework's replies do. Replies in a thread do not repeat it: the message they
    hang under names it. Every other call goes to the client unchanged."""

    _DRESSED = frozenset({"chat_postMessage", "chat_postEphemeral", "chat_update"})

    def __init__(self, client: Any, place: Place) -> None:
        self._client = client
        self._place = place
        # The ts of the thread replies this client posted: an update of one is still a thread reply.
        self._in_thread: set[str] = set()

    def __getattr__(self, name: str) -> Any:
        found = getattr(self._client, name)
        if name not in self._DRESSED:
            return found

        def send(*args: Any, **kwargs: Any) -> Any:
            from bot.listeners.framework.accounts import wrap_buttons

            if kwargs.get("blocks"):
                kwargs["blocks"] = wrap_buttons(
                    list(kwargs["blocks"]), self._place.button_account, self._place.region
                )
            in_thread = (name == "chat_postMessage" and bool(kwargs.get("thread_ts"))) or (
                name == "chat_update" and str(kwargs.get("ts", "")) in self._in_thread
            )
            line = self._place.context_line()
            if line and not in_thread:
                kwargs.update(_with_line(kwargs, line))
            answer = found(*args, **kwargs)
            if in_thread and name == "chat_postMessage":
                posted = answer.get("ts") if hasattr(answer, "get") else None
                if posted:
                    self._in_thread.add(str(posted))
            return answer

        return send


def _with_line(message: Mapping[str, Any], line: str) -> dict[str, Any]:
    """``text``/``blocks`` of a message that ends with ``line`` (once: a message redrawn from blocks that
    already end with it keeps one)."""
    from bot.render.blocks import context

    blocks = message.get("blocks")
    if blocks:
        blocks = list(blocks)
        if blocks[-1] == context(line):
            return {}
        return {"blocks": [*blocks, context(line)]} if len(blocks) < 50 else {}
    text = str(message.get("text") or "")
    return {} if text.endswith(line) else {"text": f"{text}\n{line}" if text else line}


_runtimes: weakref.WeakKeyDictionary[Any, Runtime] = weakref.WeakKeyDictionary()


class _Shared:
    """A context value that Bolt's deep copy for lazy listeners keeps by reference."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def __deepcopy__(self, memo: dict[int, Any]) -> _Shared:
        return self


def keep_ack_handle(app: Any) -> None:
    """Let a lazy runner that fails to start answer in the ack after all (``Runtime.lazy_not_started``)."""

    def ack_handle(context: Any, next: Callable[[], Any]) -> Any:  # Bolt passes arguments by name
        if "ack" in context:
            context[ACK_HANDLE] = _Shared(context["ack"])
        return next()

    app.middleware(ack_handle)


def ack_of(request: Any) -> Any:
    """The ack that answers Slack for ``request``, even when ``request`` is a lazy runner's copy."""
    handle = request.context.get(ACK_HANDLE)
    return handle.value if isinstance(handle, _Shared) else request.context.ack


def bind_runtime(app: Any, runtime: Runtime) -> None:
    _runtimes[app] = runtime


def runtime_of(app: Any) -> Runtime:
    try:
        return _runtimes[app]
    except KeyError:
        raise RuntimeError("build the app with bot.app.build_app, which binds its runtime") from None


def caller_from(body: Mapping[str, Any]) -> Caller:
    """The caller of a slash command (flat payload) or an interaction (nested payload)."""
    user = body.get("user")
    if isinstance(user, dict):
        channel = body.get("channel") or {}
        team = body.get("team") or {}
        return Caller(
            user_id=str(user.get("id", "")),
            user_name=str(user.get("username") or user.get("name") or ""),
            team_id=str(team.get("id", "") if isinstance(team, dict) else team or user.get("team_id", "")),
            channel_id=str(channel.get("id", "") if isinstance(channel, dict) else channel or ""),
        )
    return Caller(
        user_id=str(body.get("user_id", "")),
        user_name=str(body.get("user_name", "")),
        team_id=str(body.get("team_id", "")),
        channel_id=str(body.get("channel_id", "")),
    )


def quiet_place(find: Callable[[], Place | None]) -> Place | None:
    """A place wanted for an audit record only: None when it cannot be chosen (an unknown account, a
    malformed OPSBOT_ACCOUNTS: the refusal itself is the record)."""
    try:
        return find()
    except Exception:
        return None


def audit_soon(runtime: Runtime, **record: Any) -> None:
    """Write an audit record from the ack path without holding the ack for long: AWS may be what failed,
    and the table item would then wait for retries. The ack waits ``UNSTARTED_AUDIT_SECONDS`` at most."""
    audit_soon_call(lambda: runtime.audit(**record))


def audit_soon_call(write: Callable[[], None]) -> None:
    import contextvars
    import threading

    # In the request's context: the audit line it logs carries the request's fields (bot.observability).
    writer = threading.Thread(
        target=contextvars.copy_context().run, args=(write,), name="opsbot-audit", daemon=True
    )
    writer.start()
    writer.join(UNSTARTED_AUDIT_SECONDS)
