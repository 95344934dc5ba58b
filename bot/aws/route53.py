"""Route 53 for the DNS mirror: read a hosted zone completely, send change batches, set the SOA serial.

ListResourceRecordSets returns at most 300 record sets per page; every page is read through botocore's
paginator, which continues with NextRecordName, NextRecordType and (for routing-policy record sets)
NextRecordIdentifier, and stops with an error on a token it has seen. The original mirror read only the
first page, so zones over 300 records broke.

A change batch is retried with exponential backoff and jitter on ``Throttling`` (five requests a second
per account) and ``PriorRequestNotComplete`` (the previous change is still propagating, which can take
far longer than botocore's own quick retries wait). Its client makes one attempt per request: botocore's
retries underneath ours would multiply the attempts we report, and after a timeout would resend a batch
that Route 53 may already have applied, whose CREATEs then fail as "already exists". A batch that times out
fails the run instead; the next run plans from what Route 53 then holds.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from bot.aws.clients import client
from bot.aws.errors import aws_errors, error_code, translate
from bot.errors import AwsError

PAGE_SIZE = 300
RETRY_CODES = frozenset({"Throttling", "ThrottlingException", "PriorRequestNotComplete"})
MAX_ATTEMPTS = 6
BASE_DELAY = 1.0
MAX_DELAY = 20.0


@dataclass(frozen=True)
class HostedZoneInfo:
    zone_id: str
    name: str  # with trailing dot, as Route 53 returns it


@dataclass(frozen=True)
class ChangeOutcome:
    change_id: str
    status: str
    attempts: int  # 1 when the first request was accepted


def _zone_resource(zone_id: str) -> str:
    return f"hosted zone {zone_id}"


def get_hosted_zone(zone_id: str) -> HostedZoneInfo:
    with aws_errors(resource=_zone_resource(zone_id)):
        response = client("route53").get_hosted_zone(Id=zone_id)
    zone = response["HostedZone"]
    return HostedZoneInfo(zone_id=zone["Id"].rsplit("/", 1)[-1], name=zone["Name"])


def iter_record_sets(zone_id: str, *, page_size: int = PAGE_SIZE) -> Iterator[dict[str, Any]]:
    """Every record set of the hosted zone, following all pages."""
    from botocore.exceptions import PaginationError

    pages = (
        client("route53")
        .get_paginator("list_resource_record_sets")
        .paginate(HostedZoneId=zone_id, PaginationConfig={"PageSize": page_size})
    )
    try:
        for page in _translated(pages, zone_id):
            yield from page.get("ResourceRecordSets", [])
    except PaginationError as error:
        # A truncated page whose continuation repeats an earlier one would loop forever.
        raise AwsError(
            f"Route 53 returned a truncated page without a new starting point for {zone_id}.",
            code="Pagination",
        ) from error


def _translated(pages: Any, zone_id: str) -> Iterator[dict[str, Any]]:
    """The pages, with AWS's refusals as sentences (botocore's own PaginationError passes through)."""
    from botocore.exceptions import BotoCoreError, ClientError, PaginationError

    iterator = iter(pages)
    while True:
        try:
            page = next(iterator)
        except StopIteration:
            return
        except PaginationError:
            raise
        except (ClientError, BotoCoreError) as error:
            raise translate(error, resource=_zone_resource(zone_id)) from error
        yield page


def get_soa(zone_id: str, domain: str) -> dict[str, Any] | None:
    """The apex SOA record set (one small request), or None."""
    with aws_errors(resource=_zone_resource(zone_id)):
        page = client("route53").list_resource_record_sets(
            HostedZoneId=zone_id, StartRecordName=domain, StartRecordType="SOA", MaxItems="1"
        )
    for item in page.get("ResourceRecordSets", []):
        if item.get("Type") == "SOA":
            return dict(item)
    return None


def change_client() -> Any:
    """The Route 53 client that sends change batches: one attempt per request (see the module's note)."""
    return client("route53", attempts=1)


def change_batch(
    zone_id: str,
    batch: Mapping[str, Any],
    *,
    sleep: Callable[[float], None] = time.sleep,
    max_attempts: int = MAX_ATTEMPTS,
    base_delay: float = BASE_DELAY,
) -> ChangeOutcome:
    """Send one ChangeResourceRecordSets request (atomic), retrying only Throttling/PriorRequestNotComplete.

    Any other error, or the last retryable one, raises AwsError (with the AWS error code).
    """
    route53 = change_client()
    attempt = 0
    while True:
        attempt += 1
        try:
            response = route53.change_resource_record_sets(HostedZoneId=zone_id, ChangeBatch=dict(batch))
        except Exception as error:
            code = error_code(error)
            if code in RETRY_CODES and attempt < max_attempts:
                delay = min(MAX_DELAY, base_delay * 2 ** (attempt - 1))
                sleep(random.uniform(delay / 2, delay))  # jitter keeps parallel mirrors apart
                continue
            from botocore.exceptions import BotoCoreError, ClientError

            if isinstance(error, ClientError | BotoCoreError):
                raise translate(error, client=route53, resource=_zone_resource(zone_id)) from error
            raise
        info = response.get("ChangeInfo", {})
        return ChangeOutcome(
            change_id=str(info.get("Id", "")), status=str(info.get("Status", "")), attempts=attempt
        )
