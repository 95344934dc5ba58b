"""Fixtures for /fanout: the targets table, sources and the fan-out function in moto."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from bot.aws.clients import client
from bot.aws.fanout import FANOUT_TABLE_DEFINITION, register_like_cli
from bot.aws.state import create_table
from bot.config import Settings

ACCOUNT = "123456789012"
KINESIS_ARN = f"arn:aws:kinesis:us-east-1:{ACCOUNT}:stream/inputStream"
DDB_STREAM_ARN = f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/customers/stream/2015-05-11T21:21:33.291"


@dataclass
class Fanout:
    settings: Settings
    table: str
    register: Callable[..., dict[str, Any]]


@pytest.fixture
def fanout(aws: None) -> Fanout:
    create_table("fanoutTargets", FANOUT_TABLE_DEFINITION)
    settings = Settings.from_env({"AWS_REGION": "us-east-1"})

    def register(**kwargs: Any) -> dict[str, Any]:
        kwargs.setdefault("source_arn", KINESIS_ARN)
        return register_like_cli("fanoutTargets", **kwargs)

    return Fanout(settings, "fanoutTargets", register)


def create_function(name: str = "fanout") -> str:
    role = client("iam").create_role(
        RoleName=f"{name}Role",
        AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
    )["Role"]["Arn"]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("fanout.js", "exports.handler = async () => {};")
    arn: str = client("lambda").create_function(
        FunctionName=name,
        Runtime="nodejs20.x",
        Role=role,
        Handler="fanout.handler",
        Code={"ZipFile": buffer.getvalue()},
    )["FunctionArn"]
    return arn


def create_stream(name: str = "inputStream") -> str:
    kinesis = client("kinesis")
    kinesis.create_stream(StreamName=name, ShardCount=1)
    arn: str = kinesis.describe_stream(StreamName=name)["StreamDescription"]["StreamARN"]
    return arn


def raw_items(table: str = "fanoutTargets") -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = client("dynamodb").scan(TableName=table)["Items"]
    return items


# -- health, pause and resume: hooked sources with synthetic metrics ----------------------------------

CLICKS_ARN = f"arn:aws:kinesis:us-east-1:{ACCOUNT}:stream/clicks"


def hook(source_arn: str, function: str = "fanout", *, enabled: bool = True) -> str:
    """`./fanout hook`: an event source mapping from the source to the function; returns its UUID."""
    uuid: str = client("lambda").create_event_source_mapping(
        EventSourceArn=source_arn,
        FunctionName=function,
        BatchSize=100,
        StartingPosition="LATEST",
        Enabled=enabled,
    )["UUID"]
    return uuid


def put_series(
    namespace: str, name: str, dimensions: dict[str, str], values: list[float], *, now: Any = None
) -> None:
    """One data point a minute, the last one a minute ago (PutMetricData, as the services publish them)."""
    import datetime as dt

    from bot.aws.metrics import put_metric_points

    end = now or dt.datetime.now(dt.UTC)
    points = [(end - dt.timedelta(minutes=len(values) - i), v) for i, v in enumerate(values)]
    put_metric_points(namespace, name, dimensions, points)


def two_sources(fanout: Fanout) -> dict[str, str]:
    """inputStream (healthy) and clicks (falling behind), both hooked to fanout, with metrics."""
    create_stream("inputStream")
    create_stream("clicks")
    create_function()
    fanout.register(target_id="replica", target_type="kinesis", destination="out", active=True)
    fanout.register(
        source_arn=CLICKS_ARN, target_id="warehouse", target_type="firehose", destination="wh", active=True
    )
    fanout.register(
        source_arn=CLICKS_ARN,
        target_id="search",
        target_type="sqs",
        destination=f"https://sqs.us-east-1.amazonaws.com/{ACCOUNT}/search",
        active=True,
    )
    uuids = {"inputStream": hook(KINESIS_ARN), "clicks": hook(CLICKS_ARN)}
    put_series(
        "AWS/Kinesis", "GetRecords.IteratorAgeMilliseconds", {"StreamName": "inputStream"}, [200.0] * 30
    )
    put_series(
        "AWS/Kinesis",
        "GetRecords.IteratorAgeMilliseconds",
        {"StreamName": "clicks"},
        [60_000.0 * (1 + i) for i in range(30)],  # one more minute behind every minute
    )
    put_series("AWS/Kinesis", "ReadProvisionedThroughputExceeded", {"StreamName": "clicks"}, [3.0] * 30)
    put_series(
        "AWS/Lambda", "IteratorAge", {"FunctionName": "fanout"}, [60_000.0 * (1 + i) for i in range(30)]
    )
    put_series("AWS/Lambda", "Invocations", {"FunctionName": "fanout"}, [100.0] * 30)
    put_series("AWS/Lambda", "Errors", {"FunctionName": "fanout"}, [0.0] * 29 + [1.0])
    put_series("AWS/Lambda", "Throttles", {"FunctionName": "fanout"}, [2.0] * 30)
    put_series("AWS/Lambda", "Duration", {"FunctionName": "fanout"}, [800.0] * 30)
    return uuids
