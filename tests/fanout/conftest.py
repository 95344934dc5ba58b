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
