"""Demo data for /apilogs: a REST API with Lambda routes, an authorizer and an hour of logs.

``shop-api`` (stage ``prod``) has five Lambda-backed routes: ``GET /orders`` goes to the ``live``
alias of ``orders-api`` through the stage variable ``ordersAlias`` and is protected by the TOKEN
authorizer ``shop-authorizer``; ``POST /orders`` (the same alias named directly; Python text logs),
``GET /users`` (Node text), ``POST /payments`` (Lambda JSON log format) and ``GET /inventory``
(Powertools JSON with ``correlation_id``). Execution logging is INFO and access logs are JSON. The last hour holds normal
traffic and one failed ``POST /orders`` (502, Python stack trace) whose id the banner shows, and, in its
last quarter, failures of other kinds for ``/apilogs errors``: integration timeouts (504), a configuration
error (500), a throttled request (429) and a function ERROR behind a 200.
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from bot.aws.clients import client
from bot.core.common.timeparse import to_epoch_ms
from bot.local.apilogs_traffic import (
    FailureKind,
    FunctionSpec,
    LiveTraffic,
    SimRequest,
    Traffic,
    write_events,
)
from bot.local.seeds import SeedContext

API_NAME = "shop-api"
STAGE = "prod"
MISCONFIGURED_STAGE = "staging"  # logs at ERROR: what /ops doctor warns about
ACCESS_LOG_GROUP = "/aws/apigateway/shop-api-access"
ROLE_NAME = "opsbot-demo-lambda"

FUNCTIONS = (
    FunctionSpec("orders-api", "python", qualifier="live", version="3"),
    FunctionSpec("users-api", "node"),
    FunctionSpec("payments-api", "json", memory_mb=256),
    FunctionSpec("inventory-api", "powertools"),
)
AUTHORIZER = FunctionSpec("shop-authorizer", "python")
# route -> (function, integration function ARN suffix) ; the suffix may use a stage variable
ROUTES = {
    "GET /orders": ("orders-api", ":${stageVariables.ordersAlias}"),
    "POST /orders": ("orders-api", ":live"),
    "GET /users": ("users-api", ""),
    "POST /payments": ("payments-api", ""),
    "GET /inventory": ("inventory-api", ""),
}


@dataclass
class DemoApi:
    api_id: str
    stage: str
    requests: list[SimRequest] = field(default_factory=list)
    failed: SimRequest | None = None
    put_calls: int = 0
    traffic: Traffic | None = None  # continues as the demo's live traffic (``live_traffic``)


def _zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", "def handler(event, context):\n    return {'statusCode': 200}\n")
    return buffer.getvalue()


def create_api(
    region: str = "", *, functions: tuple[FunctionSpec, ...] = FUNCTIONS, api_id: str = ""
) -> tuple[str, str]:
    """Create the functions, the REST API, its authorizer and stage; returns (api id, account).
    ``api_id``: the id the API gets (moto's custom-id tag), as in a second account of the demo."""
    iam, lam, gateway = client("iam"), client("lambda"), client("apigateway")
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
    account = role.split(":")[4]
    region = region or lam.meta.region_name
    code = _zip()
    for spec in (*functions, AUTHORIZER):
        lam.create_function(
            FunctionName=spec.name,
            Runtime="nodejs20.x" if spec.log_format == "node" else "python3.12",
            Role=role,
            Handler="index.handler" if spec.log_format == "node" else "app.handler",
            Code={"ZipFile": code},
            MemorySize=spec.memory_mb,
            LoggingConfig={"LogFormat": "JSON" if spec.log_format == "json" else "Text"},
        )
        if spec.qualifier:
            version = lam.publish_version(FunctionName=spec.name)["Version"]
            lam.create_alias(FunctionName=spec.name, Name=spec.qualifier, FunctionVersion=version)

    def uri(suffix: str) -> str:
        return (
            f"arn:aws:apigateway:{region}:lambda:path/2015-03-31/functions/arn:aws:lambda:{region}:{account}:"
            f"function:{suffix}/invocations"
        )

    custom = {"tags": {"_custom_id_": api_id}} if api_id else {}
    api_id = gateway.create_rest_api(name=API_NAME, description="opsbot demo API", **custom)["id"]
    root = next(r["id"] for r in gateway.get_resources(restApiId=api_id)["items"] if r["path"] == "/")
    authorizer = gateway.create_authorizer(
        restApiId=api_id,
        name="shop-token",
        type="TOKEN",
        authorizerUri=uri(AUTHORIZER.name),
        identitySource="method.request.header.Authorization",
        authorizerResultTtlInSeconds=300,
    )["id"]
    resources: dict[str, str] = {}
    for route, (function, suffix) in ROUTES.items():
        method, path = route.split(" ", 1)
        part = path.strip("/")
        if part not in resources:
            resources[part] = gateway.create_resource(restApiId=api_id, parentId=root, pathPart=part)["id"]
        protected = route == "GET /orders"
        gateway.put_method(
            restApiId=api_id,
            resourceId=resources[part],
            httpMethod=method,
            authorizationType="CUSTOM" if protected else "NONE",
            **({"authorizerId": authorizer} if protected else {}),
        )
        gateway.put_integration(
            restApiId=api_id,
            resourceId=resources[part],
            httpMethod=method,
            type="AWS_PROXY",
            integrationHttpMethod="POST",
            uri=uri(function + suffix),
        )
    gateway.create_deployment(restApiId=api_id, stageName=STAGE, variables={"ordersAlias": "live"})
    gateway.update_stage(
        restApiId=api_id,
        stageName=STAGE,
        patchOperations=[
            {"op": "replace", "path": "/*/*/logging/loglevel", "value": "INFO"},
            {
                "op": "replace",
                "path": "/accessLogSettings/destinationArn",
                "value": f"arn:aws:logs:{region}:{account}:log-group:{ACCESS_LOG_GROUP}",
            },
            {
                "op": "replace",
                "path": "/accessLogSettings/format",
                "value": '{"requestId":"$context.requestId","extendedRequestId":"$context.extendedRequestId",'
                '"httpMethod":"$context.httpMethod","resourcePath":"$context.resourcePath",'
                '"status":"$context.status","integrationRequestId":"$context.integration.requestId",'
                '"responseLatency":"$context.responseLatency"}',
            },
        ],
    )
    return api_id, account


def misconfigure(api_id: str, account: str) -> None:
    """What the demo adds to the API for `/ops doctor` to find: a second stage logging at ERROR (the way
    many teams leave staging), beside the account's CloudWatch role, without which no stage logs at all."""
    gateway = client("apigateway")
    gateway.create_deployment(
        restApiId=api_id, stageName=MISCONFIGURED_STAGE, variables={"ordersAlias": "live"}
    )
    gateway.update_stage(
        restApiId=api_id,
        stageName=MISCONFIGURED_STAGE,
        patchOperations=[{"op": "replace", "path": "/*/*/logging/loglevel", "value": "ERROR"}],
    )
    set_cloudwatch_role(account)


def set_cloudwatch_role(account: str) -> None:
    """The API Gateway account's CloudWatch role (per account and region), as a team that logs sets it."""
    client("apigateway").update_account(
        patchOperations=[
            {
                "op": "replace",
                "path": "/cloudwatchRoleArn",
                "value": f"arn:aws:iam::{account}:role/APIGatewayPushToCloudWatchLogs",
            }
        ]
    )


def generate(api_id: str, account: str, now: datetime, *, count: int = 40, seed: int = 11) -> DemoApi:
    """An hour of traffic ending a few minutes before ``now``, with one failed request."""
    traffic = Traffic(
        api_id=api_id,
        stage=STAGE,
        functions=FUNCTIONS,
        routes={route: function for route, (function, _) in ROUTES.items()},
        authorizer=AUTHORIZER,
        access_log_group=ACCESS_LOG_GROUP,
        region=client("logs").meta.region_name,
        account=account,
        seed=seed,
    )
    demo = DemoApi(api_id, STAGE, traffic=traffic)
    begin = to_epoch_ms(now - timedelta(minutes=58))
    step = (55 * 60 * 1000) // max(1, count)
    routes = list(ROUTES)
    failed_index = count - 3
    # Failures of other kinds near the end (the last 15 minutes of the default 40 requests): what
    # `/apilogs errors` groups.
    others: dict[int, tuple[str, FailureKind]] = (
        {
            count - 8: ("GET /users", "timeout"),
            count - 7: ("POST /payments", "config"),
            count - 6: ("GET /inventory", "throttle"),
            count - 5: ("POST /payments", "handled"),
            count - 4: ("GET /users", "timeout"),
            count - 2: ("POST /payments", "config"),
        }
        if count >= 20
        else {}
    )
    for index in range(count):
        at = begin + index * step + traffic.rng.randint(0, step // 2)
        route = "POST /orders" if index == failed_index else routes[index % len(routes)]
        failure: FailureKind | None = None
        if index in others:
            route, failure = others[index]
        request = traffic.request(
            at, route, fail=index == failed_index, use_authorizer=route == "GET /orders", failure=failure
        )
        demo.requests.append(request)
        if index == failed_index:
            demo.failed = request
    return demo


def live_traffic(demo: DemoApi) -> LiveTraffic:
    """The requests that keep arriving while the demo runs (not started: the demo starts it)."""
    assert demo.traffic is not None
    return LiveTraffic(demo.traffic, client("logs"), routes=list(ROUTES), authorized=["GET /orders"])


def seed(ctx: SeedContext) -> list[str]:
    api_id, account = create_api(ctx.settings.region)
    misconfigure(api_id, account)
    demo = generate(api_id, account, ctx.now)
    demo.put_calls = write_events(client("logs"), (e for r in demo.requests for e in r.events))
    # The demo builds its Settings after seeding: make this API the default for /apilogs.
    os.environ.setdefault("OPSBOT_DEFAULT_API", api_id)
    os.environ.setdefault("OPSBOT_DEFAULT_STAGE", STAGE)
    failed = demo.failed
    assert failed is not None
    orders = next(r for r in demo.requests if r.path == "/orders" and r.method == "GET")
    ctx.facts.update(
        {
            "apilogs.api_id": api_id,
            "apilogs.stage": STAGE,
            "apilogs.request_id": failed.api_request_id,
            "apilogs.lambda_id": failed.lambda_ids["orders-api"],
            "apilogs.extended_id": failed.extended_id,
            "apilogs.ok_request_id": orders.api_request_id,
            # Started by the demo (bot.local.demo), so that a tail shows new lines.
            "apilogs.live_traffic": live_traffic(demo),
        }
    )
    return [
        f"/apilogs: {API_NAME} ({api_id}, stage {STAGE}) with 5 Lambda routes and an authorizer; "
        f"{len(demo.requests)} requests in the last hour.",
        f"  /apilogs {failed.api_request_id}   (a failed POST /orders: 502 and a Python stack trace)",
        f"  /apilogs {failed.lambda_ids['orders-api']}   (the same request by its Lambda request id)",
        f"  /apilogs {orders.api_request_id}   (GET /orders through the live alias and the authorizer)",
        "  /apilogs tail --since 10m --for 30s   (the last ten minutes, then new lines as requests "
        "arrive, in a thread)",
        "  /apilogs errors   (the failing requests of the last 15 minutes, grouped by what failed)",
    ]
