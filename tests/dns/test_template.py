"""template.yaml's DNS mirror: the function, its schedule, VPC and least-privilege IAM."""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path
from typing import Any

from bot.core.dns.config import parse_event, parse_zones

ROOT = Path(__file__).resolve().parents[2]


@functools.cache
def template() -> dict[str, Any]:
    """template.yaml, parsed once (the tests only read it)."""
    from cfnlint.decode import cfn_yaml

    return cfn_yaml.load(str(ROOT / "template.yaml"))  # type: ignore[no-any-return]


def substitute(text: str, values: dict[str, str]) -> str:
    return re.sub(r"\$\{(\w+)\}", lambda m: values[m.group(1)], text)


PARAMETERS = {
    "DnsDomain": "corp.example.com",
    "DnsMasterAddress": "10.0.0.53",
    "DnsHostedZoneId": "Z0123456789ABC",
    "DnsIgnoreTtl": "false",
    "DnsMaxDeletePercent": "20",
    "DnsTsigSecretArn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:opsbot/dns-AbCdEf",
}


def zones_json(variable: dict[str, Any], *, tsig: bool) -> str:
    """OPSBOT_DNS_ZONES as CloudFormation would render it for PARAMETERS."""
    if "Fn::If" in variable:  # the Slack function exists without a DNS zone too
        condition, variable, empty = variable["Fn::If"]
        assert condition == "HasDnsZone" and empty == ""
    text, names = variable["Fn::Sub"]
    tsig_if = names["Tsig"]["Fn::If"]
    tsig_value = substitute(tsig_if[1]["Fn::Sub"], PARAMETERS) if tsig else tsig_if[2]
    return substitute(text, {**PARAMETERS, "Tsig": tsig_value})


def test_the_mirror_function_and_its_schedule() -> None:
    resources = template()["Resources"]
    function = resources["DnsMirrorFunction"]
    assert function["Condition"] == "HasDnsZone"
    properties = function["Properties"]
    assert properties["Handler"] == "handlers.dns_mirror.handler"
    assert properties["EventInvokeConfig"]["MaximumRetryAttempts"] == 0
    assert properties["VpcConfig"]["Fn::If"][0] == "HasDnsVpc"
    for tsig in (False, True):
        (zone,) = parse_zones(
            zones_json(properties["Environment"]["Variables"]["OPSBOT_DNS_ZONES"], tsig=tsig)
        )
        assert zone.name == "corp.example.com" and zone.zone_id == "Z0123456789ABC"
        assert zone.tsig == (PARAMETERS["DnsTsigSecretArn"] if tsig else "")
    schedule = properties["Events"]["DnsZoneSchedule"]
    assert schedule["Type"] == "Schedule"
    event = json.loads(substitute(schedule["Properties"]["Input"]["Fn::Sub"], PARAMETERS))
    zones = parse_zones(zones_json(properties["Environment"]["Variables"]["OPSBOT_DNS_ZONES"], tsig=False))
    (request,) = parse_event(event, zones)
    assert request.zone == zones[0]


def _statements(policies: list[Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for policy in policies:
        if "Fn::If" in policy:
            policy = policy["Fn::If"][1]
        found.extend(policy.get("Statement", []))
    return found


def test_route53_permissions_are_scoped_to_the_hosted_zone() -> None:
    resources = template()["Resources"]
    for name in ("DnsMirrorFunction", "SlackFunction"):
        statements = _statements(resources[name]["Properties"]["Policies"])
        route53 = [s for s in statements if any(str(a).startswith("route53:") for a in _list(s["Action"]))]
        assert route53, name
        for statement in route53:
            assert statement["Resource"] == {
                "Fn::Sub": "arn:${AWS::Partition}:route53:::hostedzone/${DnsHostedZoneId}"
            }
        secrets = [s for s in statements if "secretsmanager:GetSecretValue" in _list(s["Action"])]
        assert all(s["Resource"] == {"Ref": "DnsTsigSecretArn"} for s in secrets)


def test_the_mirror_reaches_only_its_own_items_in_the_state_table() -> None:
    from fnmatch import fnmatchcase

    from bot.core.dns.config import ZoneConfig, parse_master

    statements = _statements(template()["Resources"]["DnsMirrorFunction"]["Properties"]["Policies"])
    (dynamo,) = [s for s in statements if any(str(a).startswith("dynamodb:") for a in _list(s["Action"]))]
    patterns = dynamo["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"]
    # The partition keys the mirror writes (bot.aws.state: sync#NAME, lock#KEY), for a real zone.
    zone = ZoneConfig("corp.example.com.", parse_master("10.0.0.53"), "Z0123456789ABC")
    from bot.core.dns.service import check_key

    for key in (f"sync#{zone.state_key}", f"sync#{check_key(zone)}", f"lock#dns-apply:{zone.state_key}"):
        assert any(fnmatchcase(key, pattern) for pattern in patterns), key
    assert not any(fnmatchcase("sync#fanout:x", p) or fnmatchcase("audit#2024-01-01", p) for p in patterns)


def test_a_zone_needs_its_domain_master_and_hosted_zone() -> None:
    conditions = template()["Conditions"]
    needed = {str(c["Fn::Not"][0]["Fn::Equals"][0]["Ref"]) for c in conditions["HasDnsZone"]["Fn::And"]}
    assert needed == {"DnsDomain", "DnsMasterAddress", "DnsHostedZoneId"}
    parameters = template()["Parameters"]
    for name, good, bad in (
        ("DnsDomain", "corp.example.com", 'x", "zone_id": "Z9'),
        ("DnsMasterAddress", "[fd00::53]:5353", '10.0.0.53"'),
        ("DnsTsigSecretArn", PARAMETERS["DnsTsigSecretArn"], 'arn", "x'),
    ):
        pattern = parameters[name]["AllowedPattern"]
        assert re.match(pattern, good) and re.match(pattern, "") and not re.match(pattern, bad), name


def test_slack_function_gets_the_zone_configuration() -> None:
    env = template()["Resources"]["SlackFunction"]["Properties"]["Environment"]["Variables"]
    (zone,) = parse_zones(zones_json(env["OPSBOT_DNS_ZONES"], tsig=True))
    assert zone.master.host == "10.0.0.53"


def test_the_slack_function_stays_out_of_any_vpc() -> None:
    """A VpcConfig on the Slack function, even behind a false condition, would make SAM attach the ENI
    permissions of AWSLambdaVPCAccessExecutionRole to its role (aws/serverless-application-model#3502)."""
    assert "VpcConfig" not in template()["Resources"]["SlackFunction"]["Properties"]
    assert "VpcConfig" not in template().get("Globals", {}).get("Function", {})


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]
