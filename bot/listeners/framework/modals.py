"""Modal submissions: validate in the ack, run lazily, answer in the channel (or by DM where Slack refuses)."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from bot.listeners.framework.accounts import FORM_PLACE, GlobalFlags
from bot.listeners.framework.declarations import NOT_IN_CHANNEL_ERRORS, ModalSubmit, ViewCall
from bot.listeners.framework.delivery import message_body
from bot.listeners.framework.failures import failure, not_started
from bot.listeners.framework.runtime import Place, ack_of, audit_soon, caller_from, quiet_place, runtime_of
from bot.security import audit

logger = logging.getLogger("opsbot.listeners")


def view_values(body: Mapping[str, Any]) -> dict[str, str]:
    """block_id -> the submitted value of the single input in that block."""
    state = ((body.get("view") or {}).get("state") or {}).get("values") or {}
    values: dict[str, str] = {}
    for block_id, inputs in state.items():
        for element in inputs.values():
            value = element.get("value")
            if value is None and element.get("selected_option"):
                value = element["selected_option"].get("value")
            values[block_id] = "" if value is None else str(value).strip()
    return values


def register_modal(app: Any, modal: ModalSubmit) -> None:
    runtime = runtime_of(app)
    runtime.modals[modal.callback_id] = modal

    def ack_view(ack: Any, body: dict[str, Any]) -> None:
        errors = modal.validate(view_values(body)) if modal.validate else {}
        if errors:
            ack(response_action="errors", errors=dict(errors))
        else:
            ack()

    def audit_view(body: Mapping[str, Any], **record: Any) -> dict[str, Any]:
        values = view_values(body)
        return dict(
            caller=replace(caller_from(body), channel_id=str(_view_metadata(body).get("channel", ""))),
            kind="view",
            command=f"modal {modal.callback_id}",
            action=modal.action,
            args=json.dumps(modal.audit_values(values), sort_keys=True),
            **record,
        )

    def invalid(values: Mapping[str, str]) -> str:
        """The inputs the ack showed errors under, as the audit detail ('' when valid). Only their names:
        a message may quote what was typed, and a secret typed into the wrong field belongs in neither."""
        errors = modal.validate(values) if modal.validate else {}
        return f"invalid: {', '.join(sorted(errors))}" if errors else ""

    def run_view(body: dict[str, Any], client: Any) -> None:
        started = time.time()
        ref = audit.new_ref()
        values = view_values(body)
        metadata = _view_metadata(body)
        caller = replace(caller_from(body), channel_id=str(metadata.get("channel", "")))
        rejected = invalid(values)
        if rejected:  # the modal showed the errors; nothing ran
            aimed = quiet_place(lambda: runtime.place(caller, form_flags(body)))
            runtime.audit(**audit_view(body, ref=ref, started=started, outcome="usage", detail=rejected,
                                       **(aimed.audit_fields() if aimed is not None else {})))  # fmt: skip
            return
        call = ViewCall(
            runtime=runtime, caller=caller, client=client, ref=ref, body=body, started=started,
            modal=modal, values=values, metadata=metadata,
        )  # fmt: skip
        outcome, detail = "ok", ""
        place: Place | None = None

        def tell(text: str, blocks: list[dict[str, Any]] | None = None) -> None:
            from slack_sdk.errors import SlackApiError

            kwargs = message_body(text, blocks)
            if caller.channel_id:
                try:
                    client.chat_postEphemeral(channel=caller.channel_id, user=caller.user_id, **kwargs)
                    return
                except SlackApiError as error:
                    # A form has no response URL: in a channel the bot is not in (a private channel, a DM
                    # between people) Slack refuses the ephemeral, and the answer goes to the user's DM.
                    if error.response.get("error") not in NOT_IN_CHANNEL_ERRORS:
                        raise
            client.chat_postMessage(channel=caller.user_id, **kwargs)

        try:
            # A form goes where the command that opened it was aimed (--account, --region, else the
            # channel's account), chosen again here: the account may have left OPSBOT_ACCOUNTS meanwhile.
            place = runtime.place(caller, form_flags(body))
            call.account, call.region = place.account.name, place.region
            call.client = place.dress_client(client)
            decision = runtime.decide(
                modal.action,
                mutating=modal.mutating,
                caller=caller,
                client=client,
                account=place.account.name,
            )
            if not decision.allowed:
                outcome, detail = "denied", decision.reason
                tell(place.tell(f":no_entry: You may not run `{modal.action}`: {decision.reason}"))
                return
            from bot.aws.clients import use_target  # on first use: the cold start loads no boto3 code

            with use_target(place.target(caller.user_id, mutating=modal.mutating)):
                reply = modal.run(call)
            if reply is not None:
                reply = place.dress(reply)
                tell(reply.text, reply.blocks)
                outcome, detail = reply.outcome, reply.detail
        except Exception as error:
            message, outcome, detail = failure(error, ref)
            try:
                tell(place.tell(message) if place is not None else message)
            except Exception:
                logger.exception("could not deliver an error message to the user")
        finally:
            runtime.audit(**audit_view(body, ref=ref, started=started, outcome=outcome, detail=detail,
                                       **(place.audit_fields() if place is not None else {})))  # fmt: skip

    def unstarted(request: Any, error: BaseException) -> None:
        started = time.time()
        ref = audit.new_ref()
        body = request.body
        rejected = invalid(view_values(body))
        if rejected:  # the ack showed the errors in the form: only the audit record is missing
            record = audit_view(body, ref=ref, started=started, outcome="usage", detail=rejected)
        else:
            message, detail = not_started(error, ref)
            blocks = list(view_values(body))
            if blocks:  # keep the form open, the sentence under its first input
                ack_of(request)(response_action="errors", errors={blocks[0]: message[:300]})
            record = audit_view(body, ref=ref, started=started, outcome="error", detail=detail)
        caller = replace(caller_from(body), channel_id=str(_view_metadata(body).get("channel", "")))
        place = quiet_place(lambda: runtime.place_now(caller, form_flags(body)))
        audit_soon(runtime, **record, **(place.audit_fields() if place is not None else {}))

    runtime.on_unstarted(run_view, unstarted)
    app.view(modal.callback_id)(ack=ack_view, lazy=[run_view])


def form_flags(body: Mapping[str, Any]) -> GlobalFlags:
    """The account and region the form's command was aimed at (``FORM_PLACE``); none: the channel's."""
    aimed = _view_metadata(body).get(FORM_PLACE)
    if not isinstance(aimed, dict):
        return GlobalFlags()
    return GlobalFlags(str(aimed.get("account") or ""), str(aimed.get("region") or ""))


def _view_metadata(body: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON object a modal was opened with (``private_metadata``); {} when absent or garbled."""
    try:
        metadata = json.loads((body.get("view") or {}).get("private_metadata") or "{}")
    except ValueError:
        return {}
    return metadata if isinstance(metadata, dict) else {}
