"""The Route 53 wrapper against moto (pagination) and against botocore Stubber cases that show AWS's real
behaviour where moto differs: ``\\052`` wildcards, atomic InvalidChangeBatch, Throttling and
PriorRequestNotComplete, NextRecordIdentifier."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.stub import Stubber

from bot.aws import clients, route53
from bot.aws.clients import client
from bot.errors import AwsError
from bot.local.serving import shutdown_now
from tests.dns.support import create_hosted_zone, create_records

ZONE = "Z0123456789ABC"


def test_every_page_is_read(aws: None) -> None:
    zone_id = create_hosted_zone("example.com.")
    create_records(zone_id, [(f"h{n:04d}.example.com.", "A", 300, ["10.0.0.1"]) for n in range(750)])
    pages: list[int] = []
    original = client("route53").list_resource_record_sets

    def counting(**kwargs: Any) -> Any:
        pages.append(1)
        return original(**kwargs)

    client("route53").list_resource_record_sets = counting  # type: ignore[method-assign]
    items = list(route53.iter_record_sets(zone_id))
    assert len(items) == 752  # plus the zone's SOA and NS
    assert len({(i["Name"], i["Type"]) for i in items}) == 752
    assert len(pages) == 3  # 300 per page


def test_hosted_zone_info(aws: None) -> None:
    zone_id = create_hosted_zone("example.com.")
    info = route53.get_hosted_zone(zone_id)
    assert (info.zone_id, info.name) == (zone_id, "example.com.")
    with pytest.raises(AwsError):
        route53.get_hosted_zone("ZNOSUCHZONE")


@pytest.fixture
def stubbed() -> Iterator[Stubber]:
    stubber = Stubber(client("route53"))
    with stubber:
        yield stubber
    stubber.assert_no_pending_responses()


def _rrset(name: str, rtype: str = "A", value: str = "10.0.0.1", **extra: Any) -> dict[str, Any]:
    return {"Name": name, "Type": rtype, "TTL": 60, "ResourceRecords": [{"Value": value}], **extra}


def test_pagination_continues_with_the_record_identifier(stubbed: Stubber) -> None:
    stubbed.add_response(
        "list_resource_record_sets",
        {
            "ResourceRecordSets": [
                _rrset("\\052.example.com."),
                _rrset("geo.example.com.", SetIdentifier="eu", Weight=1),
            ],
            "IsTruncated": True,
            "NextRecordName": "geo.example.com.",
            "NextRecordType": "A",
            "NextRecordIdentifier": "us",
            "MaxItems": "2",
        },
        {"HostedZoneId": ZONE, "MaxItems": "2"},
    )
    stubbed.add_response(
        "list_resource_record_sets",
        {
            "ResourceRecordSets": [_rrset("geo.example.com.", SetIdentifier="us", Weight=1)],
            "IsTruncated": False,
            "MaxItems": "2",
        },
        {
            "HostedZoneId": ZONE,
            "MaxItems": "2",
            "StartRecordName": "geo.example.com.",
            "StartRecordType": "A",
            "StartRecordIdentifier": "us",
        },
    )
    items = list(route53.iter_record_sets(ZONE, page_size=2))
    assert [i["Name"] for i in items] == ["\\052.example.com.", "geo.example.com.", "geo.example.com."]


def test_a_page_that_does_not_advance_is_an_error(stubbed: Stubber) -> None:
    page = {
        "ResourceRecordSets": [_rrset("a.example.com.")],
        "IsTruncated": True,
        "NextRecordName": "a.example.com.",
        "NextRecordType": "A",
        "MaxItems": "1",
    }
    stubbed.add_response("list_resource_record_sets", page)
    stubbed.add_response("list_resource_record_sets", page)
    with pytest.raises(AwsError, match=r"truncated page"):
        list(route53.iter_record_sets(ZONE, page_size=1))


@pytest.fixture
def stubbed_changes() -> Iterator[Stubber]:
    stubber = Stubber(route53.change_client())
    with stubber:
        yield stubber
    stubber.assert_no_pending_responses()


BATCH = {"Comment": "t", "Changes": [{"Action": "CREATE", "ResourceRecordSet": _rrset("a.example.com.")}]}
ACCEPTED = {"ChangeInfo": {"Id": "/change/C1", "Status": "PENDING", "SubmittedAt": "2024-01-01T00:00:00Z"}}


@pytest.mark.parametrize("code", ["Throttling", "PriorRequestNotComplete"])
def test_retryable_errors_are_retried_with_backoff(stubbed_changes: Stubber, code: str) -> None:
    stubbed_changes.add_client_error(
        "change_resource_record_sets", service_error_code=code, http_status_code=400
    )
    stubbed_changes.add_client_error(
        "change_resource_record_sets", service_error_code=code, http_status_code=400
    )
    stubbed_changes.add_response(
        "change_resource_record_sets", ACCEPTED, {"HostedZoneId": ZONE, "ChangeBatch": BATCH}
    )
    pauses: list[float] = []
    outcome = route53.change_batch(ZONE, BATCH, sleep=pauses.append, base_delay=1.0)
    assert outcome == route53.ChangeOutcome("/change/C1", "PENDING", 3)
    assert len(pauses) == 2
    assert 0.5 <= pauses[0] <= 1.0 and 1.0 <= pauses[1] <= 2.0  # exponential, with jitter


def test_retries_give_up(stubbed_changes: Stubber) -> None:
    for _ in range(3):
        stubbed_changes.add_client_error(
            "change_resource_record_sets", service_error_code="Throttling", http_status_code=400
        )
    with pytest.raises(AwsError) as caught:
        route53.change_batch(ZONE, BATCH, sleep=lambda _: None, max_attempts=3)
    assert caught.value.code == "Throttling"


def test_invalid_change_batch_is_not_retried(stubbed_changes: Stubber) -> None:
    stubbed_changes.add_client_error(
        "change_resource_record_sets",
        service_error_code="InvalidChangeBatch",
        service_message="[Tried to create resource record set [name='a.example.com.', type='A'] but it already exists]",
        http_status_code=400,
    )
    pauses: list[float] = []
    with pytest.raises(AwsError, match=r"already exists") as caught:
        route53.change_batch(ZONE, BATCH, sleep=pauses.append)
    assert caught.value.code == "InvalidChangeBatch" and pauses == []


class FailingRoute53(http.server.BaseHTTPRequestHandler):
    """Route 53 answering every request with a 500, which botocore would retry on its own."""

    requests = 0

    def do_POST(self) -> None:
        type(self).requests += 1
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        body = b"<ErrorResponse><Error><Type>Receiver</Type><Code>InternalFailure</Code><Message>boom</Message></Error></ErrorResponse>"
        self.send_response(500)
        self.send_header("Content-Type", "text/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def failing_route53(aws: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[type[FailingRoute53]]:
    FailingRoute53.requests = 0
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FailingRoute53)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{server.server_address[1]}")
    clients.clear_caches()
    try:
        yield FailingRoute53
    finally:
        shutdown_now(server)
        clients.clear_caches()


def test_a_change_batch_is_sent_once_when_route53_fails(failing_route53: type[FailingRoute53]) -> None:
    """A batch that may have been applied is not resent behind our back: the run fails and the next run
    plans from what Route 53 holds. The same 500 on a read is retried by botocore (the control)."""
    with pytest.raises(AwsError):
        route53.change_batch(ZONE, BATCH, sleep=lambda _: None)
    assert failing_route53.requests == 1

    with pytest.raises(AwsError):
        route53.get_hosted_zone(ZONE)
    assert failing_route53.requests > 2
