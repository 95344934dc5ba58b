"""Demo fan-out: a Kinesis stream and a DynamoDB stream as sources, targets of several types written as
the aws-lambda-fanout CLI writes them (one inactive, one cross-account, one invalid), and the fan-out
function hooked to the Kinesis stream by an event source mapping."""

from __future__ import annotations

import contextlib
import io
import json
import zipfile

from bot.aws.clients import client
from bot.aws.fanout import FANOUT_TABLE_DEFINITION, register_like_cli
from bot.aws.state import create_table
from bot.core.fanout.commands import table_specs
from bot.local.seeds import SeedContext

ROLE_NAME = "opsbot-demo-fanout"
STREAM = "orders"
SOURCE_TABLE = "customers"


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
            role="arn:aws:iam::210987654321:role/fanout-partner",
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

    # `./fanout hook --source-type kinesis --source orders` (the DynamoDB stream is left unhooked).
    _fanout_function(spec.function)
    lam = client("lambda")
    existing = lam.list_event_source_mappings(FunctionName=spec.function, EventSourceArn=stream_arn)
    if not existing.get("EventSourceMappings"):
        lam.create_event_source_mapping(
            EventSourceArn=stream_arn,
            FunctionName=spec.function,
            BatchSize=100,
            StartingPosition="LATEST",
            Enabled=True,
        )
    ctx.facts.update(
        {"fanout.kinesis_arn": stream_arn, "fanout.dynamodb_arn": ddb_stream_arn, "fanout.table": spec.table}
    )
    return [
        f"/fanout: {len(targets)} targets in {spec.table} on the {STREAM} stream and the {SOURCE_TABLE} table's "
        "stream; try",
        "  /fanout list      /fanout check      /fanout deactivate orders replica",
    ]
