"""The aws-lambda-fanout targets table and the fan-out function's event source mappings.

The table is read and written exactly as the project's bash CLI does (``cli/targets.sh``): keys
``sourceArn`` + ``id``; ``register`` puts ``type``, ``destination``, ``active`` (BOOL, default false) and
``collapse`` (S, default "none"), adds ``role`` (and ``externalId`` only with a role) and ``region`` when
given, and the BOOL flags ``parallel``, ``convertDDB``, ``deaggregate``, ``appendNewlines`` only when given;
``update``/``activate``/``deactivate`` are UpdateItems conditional on ``attribute_exists(id)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bot.aws.clients import client
from bot.aws.dynamo import from_item, to_item, values
from bot.aws.errors import aws_errors, error_code

FANOUT_TABLE_DEFINITION: dict[str, Any] = {
    "AttributeDefinitions": [
        {"AttributeName": "sourceArn", "AttributeType": "S"},
        {"AttributeName": "id", "AttributeType": "S"},
    ],
    "KeySchema": [
        {"AttributeName": "sourceArn", "KeyType": "HASH"},
        {"AttributeName": "id", "KeyType": "RANGE"},
    ],
    "BillingMode": "PAY_PER_REQUEST",
}


@dataclass(frozen=True)
class TableRead:
    items: list[dict[str, Any]]
    pages: int


def scan_targets(table: str, *, page_size: int | None = None) -> TableRead:
    """Every item of the table, following LastEvaluatedKey to the last page.

    (The fan-out function itself looks for ``ExclusiveStartKey`` in the response, which DynamoDB never
    returns, so it only ever reads the first page; we must not.)
    """
    items: list[dict[str, Any]] = []
    pages = 0
    kwargs: dict[str, Any] = {"TableName": table, "ConsistentRead": True}
    if page_size:
        kwargs["Limit"] = page_size
    with aws_errors(resource=f"fan-out table {table}"):
        for page in client("dynamodb").get_paginator("scan").paginate(**kwargs):
            pages += 1
            items.extend(from_item(raw) for raw in page.get("Items", []))
    return TableRead(items, pages)


def get_target(table: str, source_arn: str, target_id: str) -> dict[str, Any] | None:
    with aws_errors(resource=f"fan-out table {table}"):
        raw = (
            client("dynamodb")
            .get_item(
                TableName=table, Key=to_item({"sourceArn": source_arn, "id": target_id}), ConsistentRead=True
            )
            .get("Item")
        )
    return from_item(raw) if raw else None


@dataclass(frozen=True)
class ActiveChange:
    found: bool  # False: no such item (the condition failed, nothing was written)
    previous: Any  # the stored ``active`` before the change (None when absent)


def set_active(table: str, source_arn: str, target_id: str, active: bool) -> ActiveChange:
    """``fanout activate|deactivate``: SET active, only if the item exists (``attribute_exists(id)``)."""
    ddb = client("dynamodb")
    with aws_errors(resource=f"fan-out table {table}"):
        try:
            response = ddb.update_item(
                TableName=table,
                Key=to_item({"sourceArn": source_arn, "id": target_id}),
                UpdateExpression="SET #active = :active",
                ConditionExpression="attribute_exists(id)",
                ExpressionAttributeNames={"#active": "active"},
                ExpressionAttributeValues=values({":active": active}),
                ReturnValues="ALL_OLD",  # moto omits unchanged attributes from UPDATED_OLD
            )
        except Exception as error:
            if error_code(error) == "ConditionalCheckFailedException":
                return ActiveChange(False, None)
            raise
    return ActiveChange(True, from_item(response.get("Attributes", {})).get("active"))


def register_like_cli(
    table: str,
    *,
    source_arn: str,
    target_id: str,
    target_type: str,
    destination: str,
    active: bool | None = None,
    collapse: str | None = None,
    role: str | None = None,
    external_id: str | None = None,
    region: str | None = None,
    parallel: bool | None = None,
    convert_ddb: bool | None = None,
    deaggregate: bool | None = None,
    append_newlines: bool | None = None,
) -> dict[str, Any]:
    """Put an item the way ``./fanout register <type>`` does (an unconditional PutItem).

    ``active`` defaults to false and ``collapse`` to "none"; every other optional attribute is written
    only when given, and ``externalId`` only together with ``role``. Used by the demo and the tests.
    """
    item: dict[str, Any] = {
        "sourceArn": source_arn,
        "id": target_id,
        "type": target_type,
        "destination": destination,
    }
    if role:
        item["role"] = role
        if external_id:
            item["externalId"] = external_id
    if region:
        item["region"] = region
    item["active"] = bool(active) if active is not None else False
    item["collapse"] = collapse or "none"
    for name, flag in (
        ("parallel", parallel),
        ("convertDDB", convert_ddb),
        ("deaggregate", deaggregate),
        ("appendNewlines", append_newlines),
    ):
        if flag is not None:
            item[name] = flag
    with aws_errors(resource=f"fan-out table {table}"):
        client("dynamodb").put_item(TableName=table, Item=to_item(item))
    return item


def list_hooks(function: str) -> list[dict[str, Any]]:
    """Every event source mapping of the fan-out function (all pages)."""
    mappings: list[dict[str, Any]] = []
    with aws_errors(resource=f"function {function}"):
        paginator = client("lambda").get_paginator("list_event_source_mappings")
        for page in paginator.paginate(FunctionName=function):
            mappings.extend(page.get("EventSourceMappings", []))
    return mappings


def first_page_as_the_function_reads_it(table: str, source_arn: str) -> tuple[set[str], bool]:
    """The ids the fan-out function loads for a source, and whether more pages exist.

    Its query (lib/configuration.js) filters on ``active = true`` and, looking for ``ExclusiveStartKey``
    instead of ``LastEvaluatedKey`` in the response, never asks for a second page.
    """
    with aws_errors(resource=f"fan-out table {table}"):
        page = client("dynamodb").query(
            TableName=table,
            Select="ALL_ATTRIBUTES",
            KeyConditionExpression="sourceArn = :sourceArn",
            FilterExpression="active = :active",
            ExpressionAttributeValues=values({":active": True, ":sourceArn": source_arn}),
        )
    ids = {str(from_item(item).get("id")) for item in page.get("Items", [])}
    return ids, "LastEvaluatedKey" in page


# -- hooks: pause and resume (the CLI's `./fanout pause|resume`) --------------------------------------


def hooks_of_source(function: str, source_arn: str) -> list[dict[str, Any]]:
    """The mappings from ``source_arn`` to ``function``, as the CLI finds them
    (``list-event-source-mappings --function-name F --event-source-arn S``)."""
    mappings: list[dict[str, Any]] = []
    with aws_errors(resource=f"function {function}"):
        paginator = client("lambda").get_paginator("list_event_source_mappings")
        for page in paginator.paginate(FunctionName=function, EventSourceArn=source_arn):
            mappings.extend(page.get("EventSourceMappings", []))
    return mappings


def set_hook_enabled(uuid: str, enabled: bool) -> dict[str, Any]:
    """``update-event-source-mapping --uuid U --enabled|--no-enabled``: what the CLI's pause/resume do."""
    with aws_errors(resource=f"event source mapping {uuid}"):
        response: dict[str, Any] = client("lambda").update_event_source_mapping(UUID=uuid, Enabled=enabled)
    return response


# -- what health reads besides metrics -------------------------------------------------------------


@dataclass(frozen=True)
class FunctionInfo:
    timeout_seconds: int | None
    reserved_concurrency: int | None
    error: str = ""  # why the configuration could not be read ('' when it was)
    log_group: str = ""  # LoggingConfig.LogGroup ('' when the function logs to /aws/lambda/<name>)


def function_info(function: str) -> FunctionInfo:
    """The fan-out function's timeout and reserved concurrency (None when unreserved)."""
    from bot.errors import AwsError

    lam = client("lambda")
    try:
        with aws_errors(client=lam, resource=f"function {function}"):
            config = lam.get_function_configuration(FunctionName=function)
            reserved = lam.get_function_concurrency(FunctionName=function).get("ReservedConcurrentExecutions")
    except AwsError as error:
        return FunctionInfo(None, None, str(error))
    timeout = config.get("Timeout")
    log_group = str((config.get("LoggingConfig") or {}).get("LogGroup") or "")
    return FunctionInfo(int(timeout) if timeout is not None else None, reserved, log_group=log_group)


@dataclass(frozen=True)
class StreamInfo:
    status: str  # Kinesis: ACTIVE, UPDATING, ...; DynamoDB: ENABLED / DISABLED / OTHER (see stream_of_table)
    shards_open: int | None = None
    shards_total: int | None = None
    retention_hours: int | None = None
    error: str = ""


def kinesis_stream(name: str, *, region: str | None = None) -> StreamInfo:
    """DescribeStreamSummary (status, retention, open shards) and ListShards (every shard, closed included)."""
    from bot.errors import AwsError

    kinesis = client("kinesis", region=region or None)
    try:
        with aws_errors(client=kinesis, resource=f"Kinesis stream {name}"):
            summary = kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]
            shards: list[dict[str, Any]] = []
            kwargs: dict[str, Any] = {"StreamName": name}
            while True:
                page = kinesis.list_shards(**kwargs)
                shards.extend(page.get("Shards", []))
                token = page.get("NextToken")
                if not token:
                    break
                kwargs = {"NextToken": token}
    except AwsError as error:
        return StreamInfo("UNKNOWN", error=str(error))
    open_shards = sum(1 for s in shards if "EndingSequenceNumber" not in s.get("SequenceNumberRange", {}))
    return StreamInfo(
        status=str(summary.get("StreamStatus", "")),
        shards_open=int(summary.get("OpenShardCount", open_shards)),
        shards_total=len(shards),
        retention_hours=summary.get("RetentionPeriodHours"),
    )


def stream_of_table(table: str, stream_arn: str, *, region: str | None = None) -> StreamInfo:
    """A DynamoDB stream source's state from DescribeTable: ENABLED when the table's current stream is this
    one and streaming is on; REPLACED when the table has a newer stream (the hook reads a stream that
    expires); DISABLED when streaming is off. DynamoDB Streams keep records 24 hours."""
    from bot.errors import AwsError

    ddb = client("dynamodb", region=region or None)
    try:
        with aws_errors(client=ddb, resource=f"table {table}"):
            description = ddb.describe_table(TableName=table)["Table"]
    except AwsError as error:
        return StreamInfo("UNKNOWN", error=str(error))
    spec = description.get("StreamSpecification") or {}
    if not spec.get("StreamEnabled"):
        status = "DISABLED"
    elif description.get("LatestStreamArn") not in (None, stream_arn):
        status = "REPLACED"
    else:
        status = "ENABLED"
    return StreamInfo(status=status, retention_hours=24)


# -- check --deep: a target's destination, seen through its own role ---------------------------------


def assume_target_role(role_arn: str, external_id: str | None, *, session_name: str) -> dict[str, Any]:
    """The temporary credentials the fan-out function would use for this target (its role and externalId)."""
    kwargs: dict[str, Any] = {"RoleArn": role_arn, "RoleSessionName": session_name, "DurationSeconds": 900}
    if external_id:
        kwargs["ExternalId"] = external_id
    sts = client("sts")
    with aws_errors(client=sts, resource=f"role {role_arn}"):
        credentials: dict[str, Any] = sts.assume_role(**kwargs)["Credentials"]
    return credentials


def describe_destination(
    kind: str, destination: str, *, region: str, credentials: dict[str, Any], account: str
) -> str:
    """Describe a target's destination with the target role's credentials (read-only); returns what was
    found (e.g. "stream ACTIVE"). Raises AwsError with AWS's reason when it cannot be described."""
    from bot.aws.clients import client_with_credentials

    def named(service: str) -> Any:
        return client_with_credentials(service, region=region, credentials=credentials)

    resource = f"{kind} {destination} in {account or 'the target account'}/{region}"
    if kind == "kinesis":
        kinesis = named("kinesis")
        with aws_errors(client=kinesis, resource=resource):
            summary = kinesis.describe_stream_summary(StreamName=destination)["StreamDescriptionSummary"]
        return f"stream {summary.get('StreamStatus', '?')}"
    if kind == "firehose":
        firehose = named("firehose")
        with aws_errors(client=firehose, resource=resource):
            stream = firehose.describe_delivery_stream(DeliveryStreamName=destination)
        return f"delivery stream {stream['DeliveryStreamDescription'].get('DeliveryStreamStatus', '?')}"
    if kind == "sqs":
        sqs = named("sqs")
        with aws_errors(client=sqs, resource=resource):
            sqs.get_queue_attributes(QueueUrl=destination, AttributeNames=["QueueArn"])
        return "queue found"
    if kind == "sns":
        sns = named("sns")
        with aws_errors(client=sns, resource=resource):
            sns.get_topic_attributes(TopicArn=destination)
        return "topic found"
    if kind == "lambda":
        lam = named("lambda")
        with aws_errors(client=lam, resource=resource):
            config = lam.get_function_configuration(FunctionName=destination)
        return f"function {config.get('State') or 'found'}"
    if kind == "es":
        # search-<domain>-<id>.<region>.es.amazonaws.com#doctype/index: the domain name is the first part.
        host = destination.split("#", 1)[0]
        domain = host.split(".", 1)[0].removeprefix("search-").rsplit("-", 1)[0]
        es = named("es")
        with aws_errors(client=es, resource=resource):
            status = es.describe_elasticsearch_domain(DomainName=domain)["DomainStatus"]
        return "domain " + ("being deleted" if status.get("Deleted") else "found")
    if kind == "iot":
        host = destination.split("#", 1)[0]
        iot = named("iot")
        with aws_errors(client=iot, resource=resource):
            endpoint = iot.describe_endpoint(endpointType="iot:Data-ATS").get("endpointAddress", "")
        if endpoint and endpoint != host:
            from bot.errors import AwsError

            raise AwsError(
                f"The account's IoT data endpoint is {endpoint}, not {host}.", code="EndpointMismatch"
            )
        return "IoT data endpoint found"
    return f"{kind} destinations cannot be described"
