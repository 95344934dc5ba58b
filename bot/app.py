"""Build the Bolt app. Used by the Lambda handler, ``opsbot serve``, the demo console and the tests.

The app authorizes every request from configuration (bot token, bot user id, team id) instead of
Bolt's default, which calls Slack's ``auth.test`` at construction or on the first request of every cold
start: a signed command is acknowledged even when Slack's Web API is slow or unreachable.
"""

from __future__ import annotations

import json
import logging
import time
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from bot.config import Settings
from bot.listeners.framework import Runtime, bind_runtime, keep_ack_handle, runtime_of

if TYPE_CHECKING:
    from bot.slack_secrets import SlackSecrets

logger = logging.getLogger("opsbot.app")


class _TokenFromEnvironmentNotice(logging.Filter):
    """Bolt reads SLACK_BOT_TOKEN from the environment even when an ``authorize`` function is given and
    then warns that it ignores it; with authorization from configuration that is intended, not news."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return "`token` will be unused" not in message and "will be ignored" not in message


# These libraries log whole request and response bodies at DEBUG (Slack payloads, boto3 parameters): an
# activation code typed into a command, or a newly issued one, would land in the log.
PAYLOAD_LOGGERS = ("slack_bolt", "slack_sdk", "botocore", "urllib3")
# Bolt logs the whole body of a request whose signature is wrong at INFO: activation codes, response_url.
BODY_LOGGERS = ("slack_bolt.RequestVerification",)
FOREIGN_TEAM = "opsbot_foreign_team"
WRONG_TEAM = (
    ":no_entry: This opsbot belongs to another Slack workspace; it does not answer requests from this one."
)


class _WithholdBodies(logging.Filter):
    """Cuts the request body out of Bolt's log lines; the rest of the line (that a signature was wrong)
    stays, because a wrong SLACK_SIGNING_SECRET shows up there first."""

    MARKER = ", body: "

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        at = message.find(self.MARKER)
        if at >= 0:
            record.msg = message[:at] + "; body withheld, OPSBOT_LOG_PAYLOADS=1 logs it)"
            record.args = ()
        return True


def quiet_payload_loggers(settings: Settings) -> None:
    """Keep payload-logging libraries at INFO or above, and bodies out of Bolt's lines at INFO and
    WARNING, unless OPSBOT_LOG_PAYLOADS=1 (debugging)."""
    if settings.extra.get("OPSBOT_LOG_PAYLOADS", "").strip() == "1":
        return
    for name in PAYLOAD_LOGGERS:
        library = logging.getLogger(name)
        if library.getEffectiveLevel() < logging.INFO:
            library.setLevel(logging.INFO)
    # A filter, not a level: Bolt sets these loggers' levels from the root's when it builds an app.
    for name in BODY_LOGGERS:
        library = logging.getLogger(name)
        if not any(isinstance(f, _WithholdBodies) for f in library.filters):
            library.addFilter(_WithholdBodies())


_secrets: weakref.WeakKeyDictionary[Any, SlackSecrets] = weakref.WeakKeyDictionary()


def secrets_of(app: Any) -> SlackSecrets:
    """The Slack secrets an app built by ``build_app`` verifies and authorizes with."""
    return _secrets[app]


def build_app(settings: Settings, *, lazy_runner: Any = None, for_lambda: bool = False) -> Any:
    """A Bolt App with every listener registered, ``process_before_response=True``.

    ``lazy_runner`` replaces Bolt's lazy listener runner (the demo passes one that tracks running work;
    the Lambda handler installs its own through ``lambda_request_handler``). ``for_lambda``: the app is
    served by ``lambda_request_handler``, which verifies every request before Bolt parses it (bot.entry),
    so Bolt's own check (a fixed secret, and an age limit the internal lazy invocation must not get) is off.
    """
    from slack_bolt import App
    from slack_bolt.authorization import AuthorizeResult
    from slack_bolt.response import BoltResponse
    from slack_sdk import WebClient

    from bot.config import apply_log_level
    from bot.listeners import register_all
    from bot.slack_secrets import SlackSecrets

    settings.require_slack()
    secrets = SlackSecrets(settings)
    quiet_payload_loggers(settings)
    bolt_logger = logging.getLogger("slack_bolt.App")
    if not any(isinstance(f, _TokenFromEnvironmentNotice) for f in bolt_logger.filters):
        bolt_logger.addFilter(_TokenFromEnvironmentNotice())

    def authorize(enterprise_id: str | None, team_id: str | None, context: Any, **_: Any) -> AuthorizeResult:
        if settings.slack_team_id and team_id and team_id != settings.slack_team_id:
            # Signed with our secret, yet from another workspace (an app distributed to several): no
            # token for it, and ``refuse_foreign_team`` answers before any listener. Bolt's own ways to
            # refuse here (returning None, raising SlackApiError) would post to the response_url.
            logger.warning(
                "refused a request from team %s: SLACK_TEAM_ID is %s", team_id, settings.slack_team_id
            )
            context[FOREIGN_TEAM] = team_id
            return AuthorizeResult(enterprise_id=enterprise_id, team_id=team_id)
        return AuthorizeResult(
            enterprise_id=enterprise_id,
            team_id=settings.slack_team_id or team_id,
            bot_token=secrets.bot_token(),  # read on the first request, then cached (bot.slack_secrets)
            bot_user_id=settings.slack_bot_user_id or None,
            bot_id=settings.slack_bot_id or None,
        )

    app = App(
        # Bolt names loggers after the app and resets their level to the root's on every request: a name
        # outside the "opsbot" hierarchy keeps it from overriding the level of opsbot's own loggers.
        name="opsbot-bolt",
        signing_secret=settings.slack_signing_secret,
        authorize=authorize,
        # Every client Bolt builds per request copies this base_url: SLACK_API_URL reaches them all.
        client=WebClient(base_url=settings.slack_api_url, timeout=10),
        process_before_response=True,
        # No handler for, e.g., a message event must not turn into an error response.
        raise_error_for_unhandled_request=False,
        url_verification_enabled=True,
        ssl_check_enabled=True,
        request_verification_enabled=not for_lambda,
    )
    apply_log_level(settings)
    quiet_payload_loggers(settings)  # again: building the App reset Bolt's loggers to the root's level

    def refuse_foreign_team(context: Any, next: Any) -> Any:  # the first of the app's own middleware
        if context.get(FOREIGN_TEAM):
            return BoltResponse(status=200, body=json.dumps({"response_type": "ephemeral", "text": WRONG_TEAM}),
                                headers={"content-type": ["application/json;charset=utf-8"]})  # fmt: skip
        return next()

    # -- observability: every log line of the request names it (bot.observability) --
    def log_fields(body: Any, context: Any, next: Any) -> Any:
        from bot import observability

        account = observability.account_of(context.get("aws_lambda_invoked_function_arn")) or (
            observability.current().get(observability.ACCOUNT, "")
        )
        observability.start_request(slack=observability.slack_fields(body), account=account)
        return next()

    app.middleware(log_fields)
    # -- end observability --
    app.middleware(refuse_foreign_team)
    if lazy_runner is not None:
        app.listener_runner.lazy_listener_runner = lazy_runner
    _secrets[app] = secrets
    runtime = Runtime(settings)
    bind_runtime(app, runtime)
    keep_ack_handle(app)
    register_all(app)
    runtime.seal()
    return app


# Slack waits 3 seconds for the ack, and on Lambda the ack waits for the self-invocation (and, on a cold
# container, for the Slack secrets' read and both clients' creation). The ack must be on its way within
# ACK_BUDGET_SECONDS of the request's arrival in the worst case: an endpoint that never answers, or refuses.
# The budget: the secret read at most 0.7 s (bot.slack_secrets), one Invoke attempt at most
# SELF_INVOKE_CONNECT_TIMEOUT + SELF_INVOKE_READ_TIMEOUT, and the rest for creating clients and answering on
# a small Lambda. Timeouts bound each socket wait, not a server that trickles bytes, which AWS does not do.
ACK_BUDGET_SECONDS = 2.5
# One attempt in botocore: its retries would resend after a read timeout, and an asynchronous Invoke that
# timed out may have been queued already (the work would run twice). The runner retries by itself, only
# what was certainly not accepted (no connection, throttled), and only while the budget holds another try.
SELF_INVOKE_ATTEMPTS = 1
SELF_INVOKE_CONNECT_TIMEOUT = 0.3
# An asynchronous Invoke is answered (202) in tens of milliseconds: this is many times that.
SELF_INVOKE_READ_TIMEOUT = 0.5
SELF_INVOKE_RETRIES = 1
# Kept free after a retry's worst case, for answering (and a throttled retry's pause).
SELF_INVOKE_RETRY_MARGIN = 0.3
SELF_INVOKE_THROTTLE_PAUSE = 0.1
# When the request arrived (``clock()``), in the Bolt request's context: the self-invocation's deadline.
ARRIVED = "opsbot_arrived"
# Monotonic seconds of the ack's budget; tests move it forward.
clock: Callable[[], float] = time.monotonic


def self_invoke_client() -> Any:
    """The Lambda client of the lazy self-invocation (from the cache; tests hook its events)."""
    from bot.aws.clients import client

    return client(
        "lambda",
        attempts=SELF_INVOKE_ATTEMPTS,
        connect_timeout=SELF_INVOKE_CONNECT_TIMEOUT,
        read_timeout=SELF_INVOKE_READ_TIMEOUT,
    )


def self_invoke_retry_pause(error: BaseException) -> float | None:
    """Seconds to wait before trying the self-invocation again, or None when it must not be retried: only
    an Invoke that never reached Lambda (no connection) or that Lambda refused to queue (throttled) is safe
    to send again."""
    from botocore.exceptions import ClientError, ConnectTimeoutError, EndpointConnectionError

    from bot.aws.errors import THROTTLING_CODES, error_code

    if isinstance(error, (EndpointConnectionError, ConnectTimeoutError)):  # nothing was sent
        return 0.0
    if isinstance(error, ClientError) and error_code(error) in THROTTLING_CODES:
        return SELF_INVOKE_THROTTLE_PAUSE
    return None


# Every request Slack sends has one: slash commands "command"; interactivity, options and events "type";
# Slack's certificate check "ssl_check".
SLACK_PAYLOAD_KEYS = frozenset({"command", "type", "ssl_check"})


def lambda_request_handler(app: Any) -> Any:
    """Bolt's AWS Lambda adapter for an app built ``for_lambda``: requests verified before Bolt (bot.entry),
    the lazy self-invocation through our client cache, and the invocation's deadline made available to lazy
    work (``Call.seconds_left``)."""
    from slack_bolt.adapter.aws_lambda import SlackRequestHandler
    from slack_bolt.adapter.aws_lambda.handler import to_aws_response
    from slack_bolt.adapter.aws_lambda.lazy_listener_runner import LambdaLazyListenerRunner
    from slack_bolt.request import BoltRequest

    from bot.entry import InternalRequestRefused, Refusal, Verifier, read_event, refuse, source_of
    from bot.listeners.framework import ACK_NOTE, ACK_NOTE_HEADER
    from bot.slack_secrets import SecretsUnavailable

    runtime = runtime_of(app)

    class CachedClientLazyRunner(LambdaLazyListenerRunner):
        """Invokes the function ARN of this invocation (alias included) with a client from the cache,
        so tests that reset the cache (moto) and the demo's endpoint are honoured.

        A failed invocation (missing lambda:InvokeFunction, throttling, no network) must not escape into
        Bolt, which would answer 500 with an empty body: the user would see nothing and nothing would be
        audited. The framework answers in the ack instead (``Runtime.lazy_not_started``)."""

        def start(self, function: Any, request: Any) -> None:
            self.lambda_client = self_invoke_client()
            note = request.context.get(ACK_NOTE)
            if note:  # what the ack settled, for the re-invocation's audit record
                request.context["lambda_request"].setdefault("headers", {})[ACK_NOTE_HEADER] = json.dumps(
                    note
                )
            arrived = request.context.get(ARRIVED)
            deadline = (arrived if isinstance(arrived, float) else clock()) + ACK_BUDGET_SECONDS
            worst = SELF_INVOKE_CONNECT_TIMEOUT + SELF_INVOKE_READ_TIMEOUT + SELF_INVOKE_RETRY_MARGIN
            retries = SELF_INVOKE_RETRIES
            while True:
                try:
                    super().start(function, request)
                    return
                except Exception as error:
                    pause = self_invoke_retry_pause(error)
                    if retries and pause is not None and deadline - clock() >= pause + worst:
                        retries -= 1
                        time.sleep(pause)
                        continue
                    runtime.lazy_not_started(function, request, error)
                    return

    secrets = secrets_of(app)
    verifier = Verifier(secrets.signing_secret, secrets.refresh_after_failure)
    # The lazy run re-verifies with nobody waiting: its reads of the secret may take ordinary timeouts
    # and a retry, where the ack's are bounded by Slack's three seconds (bot.slack_secrets).
    lazy_verifier = Verifier(
        lambda: secrets.signing_secret(patient=True), lambda: secrets.refresh_after_failure(patient=True)
    )

    class OpsbotLambdaHandler(SlackRequestHandler):
        """Bolt's adapter, with the request read and verified first (bot.entry): a malformed or unverified
        event is answered 400/401 with one log line, before anything parses its body."""

        def handle(self, event: Any, context: Any) -> Any:
            arrived = clock()
            request = read_event(event)
            if isinstance(request, Refusal):
                return refuse(request, source=source_of(event) if isinstance(event, dict) else "")
            try:
                problem = (lazy_verifier if request.internal else verifier).problem(request)
            except SecretsUnavailable as error:  # nothing can be verified: opsbot's failure, not the caller's
                if request.internal:
                    # Answered, the lazy half would count as done: the work silently lost, "working..."
                    # on screen and no audit record. Raised, the on-failure destination says so.
                    raise InternalRequestRefused(str(error)) from None
                return refuse(Refusal(503, str(error)), source=request.source)
            if problem is not None:
                if request.internal:
                    raise InternalRequestRefused(problem)
                return refuse(Refusal(401, problem), source=request.source)
            try:
                bolt_request = BoltRequest(
                    body=request.body, query=request.query, headers=dict(request.headers)
                )
            except Exception as error:  # signed, yet not a Slack payload Bolt can parse
                return refuse(Refusal(400, f"the body is not a Slack payload ({type(error).__name__})"),
                              source=request.source)  # fmt: skip
            if not SLACK_PAYLOAD_KEYS.intersection(bolt_request.body):
                return refuse(Refusal(400, "the body carries no Slack payload"), source=request.source)
            remaining = getattr(context, "get_remaining_time_in_millis", None)
            runtime_of(self.app).lambda_deadline = (
                time.time() + remaining() / 1000 if callable(remaining) else None
            )
            bolt_request.context["aws_lambda_function_name"] = context.function_name
            bolt_request.context["aws_lambda_invoked_function_arn"] = context.invoked_function_arn
            bolt_request.context["lambda_request"] = request.event
            bolt_request.context[ARRIVED] = arrived
            return to_aws_response(self.app.dispatch(bolt_request))

    handler = OpsbotLambdaHandler(app)
    app.listener_runner.lazy_listener_runner = CachedClientLazyRunner(handler.logger)
    return handler
