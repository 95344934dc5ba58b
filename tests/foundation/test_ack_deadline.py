"""The first ack after a cold start is on its way within 2.5 s of the request's arrival (Slack's limit is
3 s) whatever the endpoints of its two network calls do: the Slack secrets' read (Secrets Manager) and
the lazy self-invocation (Lambda Invoke). Real signed requests through handlers.slack and the real Bolt
app; the endpoints are sockets on 127.0.0.1 that never answer, never connect, or refuse
(bot.local.unreachable), with every client created inside the request, as on a cold container."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from bot.app import ACK_BUDGET_SECONDS, self_invoke_client
from bot.aws import clients
from bot.local.unreachable import Refusing, Silent, SlowJson, Unconnectable
from bot.slack_secrets import PATIENT_READ_TIMEOUT, READ_CONNECT_TIMEOUT, READ_TIMEOUT
from tests.foundation.test_lambda_handler import (
    Deployed,
    _load_handler,
    api_event,
    audit_records,
    deployed,  # noqa: F401  (the fixture)
    slash_body,
)
from tests.support.slack import SIGNING_SECRET

pytestmark = pytest.mark.serial  # asserts on the wall clock: run apart from the parallel run

NOT_CONFIRMED = "AWS Lambda did not confirm in time that the work started; it may still run."
NOT_REACHED = "opsbot could not reach AWS Lambda in time to start the work"


@pytest.fixture
def cold(deployed: Deployed, monkeypatch: pytest.MonkeyPatch) -> Iterator[Deployed]:  # noqa: F811
    """A container that has created no client yet (the fixture's own are forgotten)."""
    clients.clear_caches()
    yield deployed
    clients.clear_caches()


def _point(monkeypatch: pytest.MonkeyPatch, service: str, url: str) -> None:
    monkeypatch.setenv(f"AWS_ENDPOINT_URL_{service}", url)
    clients.clear_caches()


def _timed(handler: Deployed, text: str = "whoami") -> tuple[float, dict[str, Any]]:
    event = api_event(2, slash_body(handler.slack, text))
    started = time.monotonic()
    response = handler(event)
    return time.monotonic() - started, response


def _ack_text(response: dict[str, Any]) -> str:
    assert response["statusCode"] == 200, response
    return str(json.loads(response["body"])["text"])


def test_a_lambda_endpoint_that_never_answers_is_one_attempt_and_the_ack_says_the_work_may_still_run(
    cold: Deployed, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Silent() as silent:
        _point(monkeypatch, "LAMBDA", silent.url)
        elapsed, response = _timed(cold)
        assert elapsed <= ACK_BUDGET_SECONDS
        # Not retried: the Invoke may have been queued, and a second one would run the work twice.
        assert silent.connections == 1
    assert NOT_CONFIRMED in _ack_text(response)
    (record,) = audit_records(lambda r: r.get("outcome") == "error")
    assert record["command"] == "/ops whoami" and NOT_CONFIRMED in record["detail"]


@pytest.mark.parametrize("endpoint", [Refusing, Unconnectable])
def test_a_lambda_endpoint_that_cannot_be_reached_is_tried_twice_within_the_budget(
    cold: Deployed, monkeypatch: pytest.MonkeyPatch, endpoint: type[Refusing | Unconnectable]
) -> None:
    with endpoint() as unreachable:
        _point(monkeypatch, "LAMBDA", unreachable.url)
        attempts: list[float] = []
        self_invoke_client().meta.events.register(
            "before-send.lambda.Invoke", lambda **_: attempts.append(time.monotonic())
        )
        elapsed, response = _timed(cold)
    assert elapsed <= ACK_BUDGET_SECONDS
    assert len(attempts) == 2  # nothing was sent, so the second try cannot start the work twice
    assert NOT_REACHED in _ack_text(response)


@pytest.fixture
def secret_id(cold: Deployed, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.delenv("SLACK_SIGNING_SECRET")
    monkeypatch.delenv("SLACK_BOT_TOKEN")
    monkeypatch.setenv("OPSBOT_SLACK_SECRET_ID", "opsbot/slack")
    cold.module = _load_handler()
    clients.clear_caches()
    return "opsbot/slack"


def test_the_worst_case_a_slow_secret_read_then_a_silent_lambda_still_acks_in_time(
    cold: Deployed, secret_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Secrets Manager answers just inside the read timeout: the read succeeds as late as it can, and the
    # self-invocation then waits out its own timeouts.
    answer = {
        "Name": secret_id,
        "ARN": f"arn:aws:secretsmanager:us-east-1:123456789012:secret:{secret_id}-AbCdEf",
        "SecretString": json.dumps({"signing_secret": SIGNING_SECRET, "bot_token": cold.slack.bot_token}),
    }
    with SlowJson(answer, delay=READ_TIMEOUT - 0.05) as secrets, Silent() as silent:
        monkeypatch.setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", secrets.url)
        _point(monkeypatch, "LAMBDA", silent.url)
        elapsed, response = _timed(cold)
        assert len(secrets.requests) == 1 and silent.connections == 1
    assert elapsed <= ACK_BUDGET_SECONDS
    assert elapsed >= READ_TIMEOUT - 0.05  # the slow read did happen inside this request
    assert NOT_CONFIRMED in _ack_text(response)


type_name = {Silent: "ReadTimeoutError", Unconnectable: "ConnectTimeoutError"}


@pytest.mark.parametrize("endpoint", [Silent, Unconnectable, Refusing])
def test_an_unreachable_secrets_manager_is_a_503_with_a_sentence_well_within_the_budget(
    cold: Deployed,
    secret_id: str,
    monkeypatch: pytest.MonkeyPatch,
    endpoint: type[Silent],
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Nothing can be verified without the signing secret: Slack gets a 503 (and shows the user that the
    # command failed), the log the sentence.
    with endpoint() as unreachable:
        _point(monkeypatch, "SECRETS_MANAGER", unreachable.url)
        elapsed, response = _timed(cold)
    assert elapsed <= READ_CONNECT_TIMEOUT + READ_TIMEOUT + 0.5
    assert response["statusCode"] == 503
    assert [r.getMessage() for r in caplog.records if "HTTP 503" in r.getMessage()] == [
        f"refused a request (HTTP 503) from 3.91.23.45: the Slack secrets in {secret_id} could not be read "
        f"({'EndpointConnectionError' if endpoint is Refusing else type_name[endpoint]})"
    ]


def test_a_throttled_self_invocation_is_retried_once_after_a_pause(
    cold: Deployed, monkeypatch: pytest.MonkeyPatch
) -> None:
    from botocore.exceptions import ClientError

    attempts: list[float] = []

    def throttle(**_: Any) -> None:
        attempts.append(time.monotonic())
        raise ClientError(
            {"Error": {"Code": "TooManyRequestsException", "Message": "Rate Exceeded."}}, "Invoke"
        )

    self_invoke_client().meta.events.register("before-call.lambda.Invoke", throttle)
    elapsed, response = _timed(cold)
    assert elapsed <= ACK_BUDGET_SECONDS
    assert len(attempts) == 2 and attempts[1] - attempts[0] >= 0.1
    assert "AWS Lambda is throttling opsbot" in _ack_text(response)


def test_no_retry_once_the_budget_cannot_hold_another_attempt(
    cold: Deployed, monkeypatch: pytest.MonkeyPatch
) -> None:
    import bot.app

    # The request's arrival is read first; every later reading is 1.5 s on (a slow secret read, a slow
    # container): 1.0 s of the budget is left, less than another attempt's worst case and margin.
    real, readings = time.monotonic, []

    def clock() -> float:
        readings.append(1)
        return real() + (1.5 if len(readings) > 1 else 0.0)

    monkeypatch.setattr(bot.app, "clock", clock)
    with Refusing() as refusing:
        _point(monkeypatch, "LAMBDA", refusing.url)
        attempts: list[int] = []
        self_invoke_client().meta.events.register("before-send.lambda.Invoke", lambda **_: attempts.append(1))
        _, response = _timed(cold)
    assert attempts == [1]
    assert NOT_REACHED in _ack_text(response)


# -- the lazy run's read of the secret: nobody waits on it, and failing it loses the work -----------------


def _secret_answer(cold: Deployed, secret_id: str) -> dict[str, Any]:
    return {
        "Name": secret_id,
        "ARN": f"arn:aws:secretsmanager:us-east-1:123456789012:secret:{secret_id}-AbCdEf",
        "SecretString": json.dumps({"signing_secret": SIGNING_SECRET, "bot_token": cold.slack.bot_token}),
    }


def _lazy_event(cold: Deployed, monkeypatch: pytest.MonkeyPatch, secrets_url: str) -> dict[str, Any]:
    """A command acked by one container (a quick secret read): the lazy self-invocation it sent."""
    invocations: list[dict[str, Any]] = []
    monkeypatch.setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", secrets_url)
    clients.clear_caches()
    self_invoke_client().meta.events.register(
        "provide-client-params.lambda.Invoke", lambda params, **_: invocations.append(params)
    )
    assert "Checking your permissions" in _ack_text(cold(api_event(2, slash_body(cold.slack, "whoami"))))
    (invocation,) = invocations
    return dict(json.loads(invocation["Payload"]))


def _new_container(cold: Deployed) -> None:
    cold.module = _load_handler()
    clients.clear_caches()


def _worked(cold: Deployed) -> bool:
    return any(m.text.startswith("*You are*") for m in cold.slack.messages)


def test_a_slow_first_read_loses_the_ack_but_not_the_lazy_work(
    cold: Deployed, secret_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Secrets Manager answering in 1 s (a cold container's first TLS connection through a NAT gateway):
    beyond the ack's bound, so a request from Slack is a 503 in time, yet the lazy run, which nobody
    waits on, reads the secret and does the work instead of failing to the on-failure destination."""
    with SlowJson(_secret_answer(cold, secret_id), delay=0.0) as secrets:
        lazy = _lazy_event(cold, monkeypatch, secrets.url)
        secrets.delay = 1.0
        _new_container(cold)
        elapsed, response = _timed(cold)
        assert response["statusCode"] == 503
        assert elapsed <= READ_CONNECT_TIMEOUT + READ_TIMEOUT + 0.5
        _new_container(cold)
        began = time.monotonic()
        cold(lazy)
        assert 1.0 <= time.monotonic() - began < PATIENT_READ_TIMEOUT
    assert _worked(cold)


def test_the_lazy_read_is_retried_and_then_fails_the_invocation(
    cold: Deployed, secret_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bot.entry import InternalRequestRefused
    from bot.slack_secrets import secrets_client

    with SlowJson(_secret_answer(cold, secret_id), delay=0.0) as secrets:
        lazy = _lazy_event(cold, monkeypatch, secrets.url)
    with Refusing() as refusing:
        _point(monkeypatch, "SECRETS_MANAGER", refusing.url)
        _new_container(cold)
        sent: list[str] = []
        for patient in (False, True):
            secrets_client(patient=patient).meta.events.register(
                "before-send.secretsmanager.GetSecretValue", lambda p=patient, **_: sent.append(f"{p}")
            )
        with pytest.raises(InternalRequestRefused, match="could not be read"):
            cold(lazy)
        assert sent == ["True", "True"]  # the lazy run's client, two attempts
        sent.clear()
        _new_container(cold)
        for patient in (False, True):
            secrets_client(patient=patient).meta.events.register(
                "before-send.secretsmanager.GetSecretValue", lambda p=patient, **_: sent.append(f"{p}")
            )
        assert _timed(cold)[1]["statusCode"] == 503
        assert sent == ["False"]  # the ack's: one attempt
    assert not _worked(cold)


def test_a_failed_ack_read_does_not_pause_the_lazy_read_of_the_same_container(
    cold: Deployed, secret_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failed read pauses reads for a while so that forged requests cannot drive them; an internal
    invocation cannot be forged from outside, and losing its work costs more: it reads at once."""
    with SlowJson(_secret_answer(cold, secret_id), delay=0.0) as secrets:
        lazy = _lazy_event(cold, monkeypatch, secrets.url)
        _new_container(cold)
        with Refusing() as refusing:
            _point(monkeypatch, "SECRETS_MANAGER", refusing.url)
            assert _timed(cold)[1]["statusCode"] == 503
        _point(monkeypatch, "SECRETS_MANAGER", secrets.url)
        assert _timed(cold)[1]["statusCode"] == 503  # a request from Slack, still within the pause
        cold(lazy)
    assert _worked(cold)
