"""Read-only AWS calls the doctor (``/ops doctor``) makes to see how opsbot is wired.

Every function here reads, never changes, and raises a translated ``AwsError`` (``bot.aws.errors``) on
failure, except where a missing resource is itself the answer (``None``). Grouped by the area that uses
them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from bot.aws.clients import client
from bot.aws.errors import aws_errors, error_code

# -- tables (mail, device, fanout) ------------------------------------------------------------------


@dataclass(frozen=True)
class TableKeys:
    """A table's key schema: ``hash`` and ``range`` attribute names ("" for no sort key)."""

    hash: str
    range: str = ""

    def __str__(self) -> str:
        return f"{self.hash} (HASH)" + (f", {self.range} (RANGE)" if self.range else "")


@dataclass(frozen=True)
class TableRead:
    """What DescribeTable said. ``exists`` False: ResourceNotFoundException."""

    exists: bool
    keys: TableKeys | None = None
    status: str = ""


def describe_table(table: str) -> TableRead:
    """The table's key schema and status, ``exists=False`` when there is no such table."""
    ddb = client("dynamodb")
    with aws_errors(client=ddb, resource=f"table {table}"):
        try:
            description = ddb.describe_table(TableName=table)["Table"]
        except Exception as error:
            if error_code(error) == "ResourceNotFoundException":
                return TableRead(False)
            raise
    schema = {k["KeyType"]: k["AttributeName"] for k in description.get("KeySchema", [])}
    return TableRead(
        True, TableKeys(schema.get("HASH", ""), schema.get("RANGE", "")), description.get("TableStatus", "")
    )


def probe_item(table: str, key: Mapping[str, str]) -> str:
    """One GetItem for a key that is never stored: the capability's own read, for when DescribeTable is
    denied. Returns the AWS error code ("" when the read worked: the key schema matches ``key``)."""
    from botocore.exceptions import ClientError

    ddb = client("dynamodb")
    with aws_errors(client=ddb, resource=f"table {table}"):  # anything but an AWS answer: translated
        try:
            ddb.get_item(TableName=table, Key={name: {"S": value} for name, value in key.items()})
        except ClientError as error:
            return error_code(error)
    return ""


# -- mail -------------------------------------------------------------------------------------------

# GetIdentityNotificationAttributes takes at most 100 identities per request.
NOTIFICATION_BATCH = 100


def ses_identities() -> list[str]:
    """Every SES (v1) identity of the region: domains and email addresses, all pages."""
    ses = client("ses")
    found: list[str] = []
    with aws_errors(client=ses, resource="SES identities"):
        for page in ses.get_paginator("list_identities").paginate():
            found.extend(page.get("Identities", []))
    return found


def identity_notifications(identities: Iterable[str]) -> dict[str, dict[str, Any]]:
    """Each identity's notification attributes (BounceTopic, ComplaintTopic, ForwardingEnabled…)."""
    ses = client("ses")
    wanted = list(identities)
    found: dict[str, dict[str, Any]] = {}
    for start in range(0, len(wanted), NOTIFICATION_BATCH):
        with aws_errors(client=ses, resource="SES identities"):
            answer = ses.get_identity_notification_attributes(
                Identities=wanted[start : start + NOTIFICATION_BATCH]
            )
        found.update(answer.get("NotificationAttributes", {}))
    return found


def topic_subscriptions(topic_arn: str) -> list[dict[str, Any]] | None:
    """The topic's subscriptions (all pages), ``None`` when the topic does not exist."""
    sns = client("sns")
    found: list[dict[str, Any]] = []
    with aws_errors(client=sns, resource=f"topic {topic_arn}"):
        try:
            for page in sns.get_paginator("list_subscriptions_by_topic").paginate(TopicArn=topic_arn):
                found.extend(page.get("Subscriptions", []))
        except Exception as error:
            if error_code(error) in {"NotFound", "NotFoundException"}:
                return None
            raise
    return found


# -- device -----------------------------------------------------------------------------------------


def topic_rules() -> list[dict[str, Any]]:
    """Every IoT topic rule of the region (ruleName, topicPattern, ruleDisabled…), all pages."""
    iot = client("iot")
    found: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {}
    with aws_errors(client=iot, resource="IoT topic rules"):
        while True:
            page = iot.list_topic_rules(**kwargs)
            found.extend(page.get("rules", []))
            token = page.get("nextToken")
            if not token:
                return found
            kwargs["nextToken"] = token


def topic_rule(name: str) -> dict[str, Any]:
    """The rule's definition (sql, actions, ruleDisabled)."""
    iot = client("iot")
    with aws_errors(client=iot, resource=f"IoT topic rule {name}"):
        rule: dict[str, Any] = iot.get_topic_rule(ruleName=name).get("rule", {})
    return rule
