"""Demo fan-out: two Kinesis streams and a DynamoDB stream as sources, targets of several types written as
the aws-lambda-fanout CLI writes them (one inactive, one cross-account, one invalid), and the fan-out
function hooked to both Kinesis streams by event source mappings. ``orders`` is healthy and ``clicks`` falls
behind: synthetic CloudWatch data points (PutMetricData) for the function and both streams, and a few
error lines of the function naming ``clicks``' targets. The cross-account target's SNS topic lives in a
second account, reached through its role and external id (``/fanout check --deep``)."""

from __future__ import annotations

import contextlib
import io
import json
import zipfile
from datetime import UTC, datetime, timedelta

from bot.aws.clients import client
from bot.aws.fanout import FANOUT_TABLE_DEFINITION, register_like_cli
from bot.aws.state import create_table
from bot.core.fanout.commands import table_specs
from bot.local.seeds import SeedContext

ROLE_NAME = "opsbot-demo-fanout"
STREAM = "orders"
BEHIND_STREAM = "clicks"
SOURCE_TABLE = "customers"
PARTNER_ACCOUNT = "210987654321"
PARTNER_ROLE = f"arn:aws:iam::{PARTNER_ACCOUNT}:role/fanout-partner"
PARTNER_EXTERNAL_ID = "opsbot-demo-partner"


def _function_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("fanout.js", "exports.handler = async () => {};\n")
    return buffer.getvalue()


def _fanout_function(name: str) -> None:
    iam, lam = client("iam"), client("lambda")
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
    try:
        role = iam.create_role(RoleName=ROLE_NAME, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    except iam.exceptions.EntityAlreadyExistsException:
        role = iam.get_role(RoleName=ROLE_NAME)["Role"]["Arn"]
    with contextlib.suppress(lam.exceptions.ResourceConflictException):
        lam.create_function(
            FunctionName=name,
            Runtime="nodejs20.x",
            Role=role,
            Handler="fanout.handler",
            Code={"ZipFile": _function_zip()},
        )


def seed(ctx: SeedContext) -> list[str]:
    spec = table_specs(ctx.settings)[0]
    create_table(spec.table, FANOUT_TABLE_DEFINITION)
    region = ctx.settings.region

    kinesis = client("kinesis")
    with contextlib.suppress(kinesis.exceptions.ResourceInUseException):
        kinesis.create_stream(StreamName=STREAM, ShardCount=1)
    stream_arn = kinesis.describe_stream(StreamName=STREAM)["StreamDescription"]["StreamARN"]
    account = stream_arn.split(":")[4]

    ddb = client("dynamodb")
    create_table(
        SOURCE_TABLE,
        {
            "AttributeDefinitions": [{"AttributeName": "customerId", "AttributeType": "S"}],
            "KeySchema": [{"AttributeName": "customerId", "KeyType": "HASH"}],
            "BillingMode": "PAY_PER_REQUEST",
            "StreamSpecification": {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
        },
    )
    ddb_stream_arn = ddb.describe_table(TableName=SOURCE_TABLE)["Table"]["LatestStreamArn"]

    # As `./fanout register <type> --source-type kinesis --source orders --id ... [--active true]` writes them.
    targets = [
        dict(
            source_arn=stream_arn,
            target_id="replica",
            target_type="kinesis",
            destination="orders-replica",
            active=True,
        ),
        dict(
            source_arn=stream_arn,
            target_id="archive",
            target_type="firehose",
            destination="orders-archive",
            active=True,
        ),
        dict(
            source_arn=stream_arn,
            target_id="audit",
            target_type="sqs",
            destination=f"https://sqs.{region}.amazonaws.com/{account}/orders-audit",
            active=True,
            collapse="JSON",
        ),
        dict(
            source_arn=stream_arn,
            target_id="partner",
            target_type="sns",
            destination=f"arn:aws:sns:{region}:210987654321:partner-orders",
            active=True,
            role=PARTNER_ROLE,
            external_id=PARTNER_EXTERNAL_ID,
            region=region,
        ),
        dict(
            source_arn=stream_arn,
            target_id="search",
            target_type="es",
            destination=f"search-orders-a1b2c3d4.{region}.es.amazonaws.com#order/orders",
            parallel=False,
        ),
        # Invalid: a function ARN where the fan-out function expects the function name.
        dict(
            source_arn=stream_arn,
            target_id="billing",
            target_type="lambda",
            destination=f"arn:aws:lambda:{region}:{account}:function:billing",
            active=True,
        ),
        dict(
            source_arn=ddb_stream_arn,
            target_id="crm",
            target_type="sqs",
            destination=f"https://sqs.{region}.amazonaws.com/{account}/crm-updates",
            active=True,
            convert_ddb=True,
        ),
        dict(
            source_arn=ddb_stream_arn,
            target_id="cache",
            target_type="redis",
            destination="customers.a1b2c3.ng.0001.use1.cache.amazonaws.com:6379",
        ),
    ]
    for target in targets:
        register_like_cli(spec.table, **target)

    # The falling-behind source and its targets.
    with contextlib.suppress(kinesis.exceptions.ResourceInUseException):
        kinesis.create_stream(StreamName=BEHIND_STREAM, ShardCount=2)
    clicks_arn = kinesis.describe_stream(StreamName=BEHIND_STREAM)["StreamDescription"]["StreamARN"]
    behind_targets = [
        dict(
            source_arn=clicks_arn,
            target_id="warehouse",
            target_type="firehose",
            destination="clicks-warehouse",
            active=True,
        ),
        dict(
            source_arn=clicks_arn,
            target_id="recommender",
            target_type="sqs",
            destination=f"https://sqs.{region}.amazonaws.com/{account}/recommender",
            active=True,
        ),
    ]
    for target in behind_targets:
        register_like_cli(spec.table, **target)

    # `./fanout hook --source-type kinesis --source orders|clicks` (the DynamoDB stream is left unhooked).
    _fanout_function(spec.function)
    lam = client("lambda")
    for arn in (stream_arn, clicks_arn):
        existing = lam.list_event_source_mappings(FunctionName=spec.function, EventSourceArn=arn)
        if not existing.get("EventSourceMappings"):
            lam.create_event_source_mapping(
                EventSourceArn=arn,
                FunctionName=spec.function,
                BatchSize=100,
                StartingPosition="LATEST",
                Enabled=True,
            )
    _metrics(spec.function, ctx.now)
    _error_lines(spec.function, ctx.now)
    _partner_topic(f"arn:aws:sns:{region}:{PARTNER_ACCOUNT}:partner-orders", region)
    ctx.facts.update(
        {
            "fanout.kinesis_arn": stream_arn,
            "fanout.behind_arn": clicks_arn,
            "fanout.dynamodb_arn": ddb_stream_arn,
            "fanout.table": spec.table,
        }
    )
    count = len(targets) + len(behind_targets)
    return [
        f"/fanout: {count} targets in {spec.table} on the {STREAM} and {BEHIND_STREAM} streams (the second "
        f"falling behind) and the {SOURCE_TABLE} table's stream; try",
        "  /fanout health      /fanout pause clicks      /fanout resume clicks      /fanout check --deep",
        "  /fanout list      /fanout check      /fanout deactivate orders replica",
    ]


def _series(
    namespace: str, name: str, dimensions: dict[str, str], values: list[float], now: datetime
) -> None:
    """One point a minute for the last len(values) minutes (what the services publish, synthetic)."""
    from bot.aws.metrics import put_metric_points

    end = now.astimezone(UTC).replace(second=0, microsecond=0)
    points = [(end - timedelta(minutes=len(values) - i), value) for i, value in enumerate(values)]
    put_metric_points(namespace, name, dimensions, points)


def _metrics(function: str, now: datetime) -> None:
    minutes = 60
    # orders: a fraction of a second behind. clicks: a minute more behind every minute (since 40 min
    # ago), its reads over the stream's provisioned throughput (a noisy neighbour reads it too).
    _series(
        "AWS/Kinesis", "GetRecords.IteratorAgeMilliseconds", {"StreamName": STREAM}, [350.0] * minutes, now
    )
    behind = [500.0] * 20 + [60_000.0 * (i + 1) for i in range(minutes - 20)]
    _series("AWS/Kinesis", "GetRecords.IteratorAgeMilliseconds", {"StreamName": BEHIND_STREAM}, behind, now)
    _series(
        "AWS/Kinesis",
        "ReadProvisionedThroughputExceeded",
        {"StreamName": BEHIND_STREAM},
        [0.0] * 20 + [4.0] * 40,
        now,
    )
    _series(
        "AWS/Kinesis",
        "WriteProvisionedThroughputExceeded",
        {"StreamName": BEHIND_STREAM},
        [0.0] * minutes,
        now,
    )
    dims = {"FunctionName": function}
    _series("AWS/Lambda", "IteratorAge", dims, behind, now)
    _series("AWS/Lambda", "Invocations", dims, [120.0] * minutes, now)
    _series("AWS/Lambda", "Errors", dims, [0.0] * 50 + [1.0] * 10, now)
    _series("AWS/Lambda", "Throttles", dims, [0.0] * 20 + [3.0] * 40, now)
    _series("AWS/Lambda", "Duration", dims, [850.0] * minutes, now)
    _series("AWS/Lambda", "ConcurrentExecutions", dims, [3.0] * minutes, now)


def _error_lines(function: str, now: datetime) -> None:
    """The fan-out function's own log lines (Node.js runtime format), some failing for clicks' targets."""
    logs = client("logs")
    group, stream = f"/aws/lambda/{function}", "2026/01/01/[$LATEST]0f1e2d3c4b5a69788796a5b4c3d2e1f0"
    with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
        logs.create_log_group(logGroupName=group)
    with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
        logs.create_log_stream(logGroupName=group, logStreamName=stream)
    start = int(now.timestamp() * 1000) - 10 * 60_000
    lines = [
        "INFO\tProcessing 100 records from clicks",
        "ERROR\tError while sending to target 'warehouse': ServiceUnavailableException: Slow down.",
        "ERROR\tError while sending to target 'warehouse': ServiceUnavailableException: Slow down.",
        "ERROR\tError while sending to target 'recommender': AccessDenied: not authorized to perform sqs:SendMessage",
        "ERROR\tTask timed out after 3.00 seconds",
    ]
    events = [
        {
            "timestamp": start + i * 30_000,
            "message": f"{_node_time(start + i * 30_000)}\treq-{i}\t{line}",
        }
        for i, line in enumerate(lines)
    ]
    logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=events)


def _node_time(ms: int) -> str:
    """The time as Node's Lambda runtime writes it at the start of a line (``2026-12-07T12:34:12.377Z``):
    the fan-out function is Node.js."""
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _partner_topic(topic_arn: str, region: str) -> None:
    """The cross-account target's topic, created in the partner account (an assumed role's calls land in
    the role's account in the embedded AWS)."""
    from bot.aws.clients import client_with_credentials

    credentials = client("sts").assume_role(RoleArn=PARTNER_ROLE, RoleSessionName="demo-seed")["Credentials"]
    sns = client_with_credentials("sns", region=region, credentials=credentials)
    sns.create_topic(Name=topic_arn.rsplit(":", 1)[1])
