"""Discovery of every function behind a stage: stage variables, aliases, authorizers, HTTP APIs,
custom log groups, more than 25 resources, and the cache."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.stub import Stubber

from bot.aws import apigateway as gw
from bot.aws.clients import client
from bot.core.apilogs import discovery as disc
from bot.core.apilogs.model import ApiStage
from bot.errors import UsageError
from bot.local.seeds import apilogs as seed_module
from tests.apilogs.conftest import create_function, with_logging_config

REGION = "us-east-1"


def test_function_from_uri_resolves_stage_variables_and_qualifiers() -> None:
    uri = (
        "arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/arn:aws:lambda:us-east-1:123456789012:"
        "function:${stageVariables.fn}:${stageVariables.alias}/invocations"
    )
    resolved = disc.function_from_uri(uri, {"fn": "orders", "alias": "live"})
    assert resolved.function is not None
    assert (resolved.function.name, resolved.function.qualifier) == ("orders", "live")
    missing = disc.function_from_uri(uri, {"fn": "orders"})
    assert missing.function is None and "alias" in missing.problem
    direct = disc.function_from_uri("arn:aws:lambda:us-east-1:123456789012:function:h1", {})
    assert direct.function is not None and direct.function.name == "h1"
    assert disc.function_from_uri("https://example.com/backend", {}).function is None


def test_demo_api_discovery(aws: None) -> None:
    api_id, _ = seed_module.create_api(REGION)
    stage = disc.resolve_stage(api_id, "prod", region=REGION)
    assert stage.execution_log_group == f"API-Gateway-Execution-Logs_{api_id}/prod"
    assert stage.access_log_group == seed_module.ACCESS_LOG_GROUP
    assert stage.logging_level == "INFO"
    found = disc.discover(stage)
    names = {f.name: f for f in found.functions}
    assert set(names) == {"orders-api", "users-api", "payments-api", "inventory-api", "shop-authorizer"}
    # The alias through the stage variable and the alias named directly fold into one function.
    assert names["orders-api"].qualifiers == ("live",)
    assert set(names["orders-api"].routes) == {"GET /orders", "POST /orders"}
    assert names["shop-authorizer"].role == "authorizer"
    assert names["orders-api"].log_group == "/aws/lambda/orders-api"
    assert found.function_for_route("GET /users") == names["users-api"]
    assert set(found.all_groups) == {
        stage.execution_log_group,
        seed_module.ACCESS_LOG_GROUP,
        *(f"/aws/lambda/{n}" for n in names),
    }


def test_api_by_name_and_the_only_stage(aws: None) -> None:
    api_id, _ = seed_module.create_api(REGION)
    assert disc.resolve_stage("shop-api", "", region=REGION).api_id == api_id
    # The only API and its only stage are found without being named.
    assert disc.resolve_stage("", "", region=REGION).stage == "prod"
    with pytest.raises(UsageError, match="no stage `dev`"):
        disc.resolve_stage(api_id, "dev", region=REGION)
    with pytest.raises(UsageError, match="no API `nope`"):
        disc.resolve_stage("nope", "prod", region=REGION)


def test_several_apis_need_a_choice(aws: None) -> None:
    client("apigateway").create_rest_api(name="one")
    client("apigateway").create_rest_api(name="two")
    with pytest.raises(UsageError, match="Which API"):
        disc.resolve_stage("", "", region=REGION)


def test_custom_log_group_from_logging_config(aws: None) -> None:
    api_id, _ = seed_module.create_api(REGION)
    # moto does not keep LoggingConfig; the hook adds it to GetFunctionConfiguration as AWS returns it.
    with_logging_config({"payments-api": "/shop/payments"})
    found = disc.discover(disc.resolve_stage(api_id, "prod", region=REGION))
    payments = found.function("payments-api")
    assert payments is not None and payments.log_group == "/shop/payments" and payments.log_format == "JSON"


def test_logging_config_stubber_shape() -> None:
    """Stubber case with the documented GetFunctionConfiguration shape (LoggingConfig)."""
    lam = client("lambda")
    with Stubber(lam) as stub:
        stub.add_response(
            "get_function_configuration",
            {
                "FunctionName": "fn",
                "FunctionArn": "arn:aws:lambda:us-east-1:123456789012:function:fn",
                "LoggingConfig": {
                    "LogFormat": "JSON",
                    "ApplicationLogLevel": "INFO",
                    "LogGroup": "/custom/fn",
                },
            },
            {"FunctionName": "fn"},
        )
        info = gw.function_logging("fn")
    assert (info.log_group, info.log_format, info.resolved) == ("/custom/fn", "JSON", True)


def test_unreadable_function_falls_back_to_the_default_group(aws: None) -> None:
    stage = ApiStage("abc", "prod", "REST")
    uses, notes = disc.functions_of(
        [gw.IntegrationInfo("GET /x", "AWS_PROXY", "arn:aws:lambda:us-east-1:123456789012:function:gone")],
        [],
        {},
    )
    logging = {"gone": gw.function_logging("gone")}
    found = disc.build_discovery(stage, uses, logging, notes)
    gone = found.function("gone")
    assert gone is not None and gone.log_group == "/aws/lambda/gone" and not gone.resolved
    assert any("gone" in note for note in found.notes)


def test_unset_stage_variable_is_a_note(aws: None) -> None:
    uses, notes = disc.functions_of(
        [
            gw.IntegrationInfo(
                "GET /x",
                "AWS_PROXY",
                "arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/arn:aws:lambda:us-east-1:"
                "123456789012:function:${stageVariables.fn}/invocations",
            ),
            gw.IntegrationInfo("GET /y", "HTTP_PROXY", "https://example.com/{proxy}"),
        ],
        [],
        {},
    )
    assert uses == [] and notes == ["GET /x: stage variable fn is not set."]


def test_more_than_25_resources_in_moto(aws: None) -> None:
    gateway = client("apigateway")
    api_id = gateway.create_rest_api(name="wide")["id"]
    root = gateway.get_resources(restApiId=api_id)["items"][0]["id"]
    for index in range(30):
        name = f"fn{index}"
        create_function(name)
        resource = gateway.create_resource(restApiId=api_id, parentId=root, pathPart=f"r{index}")["id"]
        gateway.put_method(restApiId=api_id, resourceId=resource, httpMethod="GET", authorizationType="NONE")
        gateway.put_integration(
            restApiId=api_id, resourceId=resource, httpMethod="GET", type="AWS", integrationHttpMethod="POST",
            uri=f"arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/arn:aws:lambda:us-east-1:"
            f"123456789012:function:{name}/invocations",
        )  # fmt: skip
    gateway.create_deployment(restApiId=api_id, stageName="v1")
    found = disc.discover(disc.resolve_stage(api_id, "v1", region=REGION))
    assert len(found.functions) == 30


def _resource(index: int, *, embedded: bool = True) -> dict[str, Any]:
    integration = {
        "type": "AWS_PROXY",
        "uri": "arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/arn:aws:lambda:us-east-1:"
        f"123456789012:function:fn{index}/invocations",
    }
    method: dict[str, Any] = {"httpMethod": "GET"}
    if embedded:
        method["methodIntegration"] = integration
    return {"id": f"id{index}", "path": f"/r{index}", "resourceMethods": {"GET": method}}


def test_resource_pages_are_followed_by_position() -> None:
    """Stubber with the documented GetResources shape: 25 per page by default, ``position`` to go on
    (moto returns everything in one page). A method without an embedded integration is asked for."""
    gateway = client("apigateway")
    first = [_resource(i) for i in range(25)]
    second = [_resource(i) for i in range(25, 40)] + [_resource(40, embedded=False)]
    with Stubber(gateway) as stub:
        stub.add_response(
            "get_resources",
            {"items": first, "position": "p2"},
            {"restApiId": "abc", "embed": ["methods"], "limit": 25},
        )
        stub.add_response(
            "get_resources",
            {"items": second},
            {"restApiId": "abc", "embed": ["methods"], "limit": 25, "position": "p2"},
        )
        stub.add_response(
            "get_integration",
            {"type": "AWS", "uri": _resource(40)["resourceMethods"]["GET"]["methodIntegration"]["uri"]},
            {"restApiId": "abc", "resourceId": "id40", "httpMethod": "GET"},
        )
        integrations = gw.rest_integrations("abc", page_size=25)
        stub.assert_no_pending_responses()
    assert len(integrations) == 41
    assert integrations[-1].route == "GET /r40" and integrations[-1].uri.endswith("fn40/invocations")


def test_http_api_discovery(aws: None) -> None:
    create_function("h1")
    create_function("h-auth")
    v2 = client("apigatewayv2")
    api_id = v2.create_api(Name="http-shop", ProtocolType="HTTP")["ApiId"]
    integration = v2.create_integration(
        ApiId=api_id, IntegrationType="AWS_PROXY", PayloadFormatVersion="2.0",
        IntegrationUri="arn:aws:lambda:us-east-1:123456789012:function:${stageVariables.fn}",
    )["IntegrationId"]  # fmt: skip
    v2.create_route(ApiId=api_id, RouteKey="GET /items", Target=f"integrations/{integration}")
    v2.create_authorizer(
        ApiId=api_id, AuthorizerType="REQUEST", Name="auth", IdentitySource=["$request.header.Authorization"],
        AuthorizerUri="arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/arn:aws:lambda:us-east-1:"
        "123456789012:function:h-auth/invocations", AuthorizerPayloadFormatVersion="2.0",
    )  # fmt: skip
    v2.create_stage(
        ApiId=api_id, StageName="$default", StageVariables={"fn": "h1"},
        AccessLogSettings={"DestinationArn": "arn:aws:logs:us-east-1:123456789012:log-group:/http/access:*",
                           "Format": "{}"},
    )  # fmt: skip
    stage = disc.resolve_stage(api_id, "", region=REGION)
    assert (stage.kind, stage.stage, stage.access_log_group, stage.execution_log_group) == (
        "HTTP", "$default", "/http/access", ""
    )  # fmt: skip
    found = disc.discover(stage)
    assert found.function_for_route("GET /items") == found.function("h1")
    # moto does not implement apigatewayv2 GetAuthorizers: discovery goes on and says so.
    assert {f.name for f in found.functions} == {"h1"}
    assert any("authorizers" in note for note in found.notes)


def test_http_api_authorizers_stubber_shape() -> None:
    """Stubber case with the documented apigatewayv2 GetAuthorizers shape (moto lacks the call)."""
    v2 = client("apigatewayv2")
    uri = (
        "arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/arn:aws:lambda:us-east-1:123456789012:"
        "function:h-auth/invocations"
    )
    with Stubber(v2) as stub:
        stub.add_response(
            "get_authorizers",
            {"Items": [{"AuthorizerId": "a1", "Name": "auth", "AuthorizerType": "REQUEST", "AuthorizerUri": uri}],
             "NextToken": "n2"},
            {"ApiId": "h"},
        )  # fmt: skip
        stub.add_response("get_authorizers", {"Items": []}, {"ApiId": "h", "NextToken": "n2"})
        found = gw.http_authorizers("h")
    uses, _ = disc.functions_of([], found, {})
    assert [(u.name, u.role) for u in uses] == [("h-auth", "authorizer")]


def test_discovery_is_cached_until_cleared(aws: None) -> None:
    api_id, _ = seed_module.create_api(REGION)
    stage = disc.resolve_stage(api_id, "prod", region=REGION)
    calls: list[str] = []
    gateway = client("apigateway")
    gateway.meta.events.register("before-call.api-gateway.*", lambda model, **_: calls.append(model.name))
    disc.discover(stage)
    first = len(calls)
    disc.discover(stage)
    disc.discover(stage)
    assert len(calls) == first  # no API Gateway call after the first discovery
    gw.clear_cache()
    disc.discover(stage)
    assert len(calls) == 2 * first


def test_execution_logging_level_is_the_most_detailed_of_any_method(aws: None) -> None:
    """``*/*`` is only the default: a method with its own level that logs means logging is not off."""
    logging_level = gw.logging_level
    assert logging_level({"*/*": {"loggingLevel": "OFF"}, "~1orders/GET": {"loggingLevel": "INFO"}}) == "INFO"
    assert (
        logging_level({"*/*": {"loggingLevel": "ERROR"}, "~1users/GET": {"loggingLevel": "OFF"}}) == "ERROR"
    )
    assert logging_level({"*/*": {"metricsEnabled": True}}) == "" and logging_level({}) == ""

    api_id, _ = seed_module.create_api(REGION)
    client("apigateway").update_stage(
        restApiId=api_id,
        stageName="prod",
        patchOperations=[
            {"op": "replace", "path": "/*/*/logging/loglevel", "value": "OFF"},
            {"op": "replace", "path": "/~1orders/GET/logging/loglevel", "value": "INFO"},
        ],
    )
    assert disc.resolve_stage(api_id, "prod", region=REGION).logging_level == "INFO"
