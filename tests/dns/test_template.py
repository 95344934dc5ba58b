"""template.yaml's DNS mirror: up to three zones, one schedule each, least-privilege IAM, optional VPC.

The template is resolved the way CloudFormation resolves it for given parameter values (conditions
evaluated, the taken ``Fn::If`` branch, ``AWS::NoValue`` dropped, ``Fn::Sub`` and friends computed), and
the result is read with the code that reads it in Lambda (``parse_zones``, ``parse_event``).
"""

from __future__ import annotations

import functools
import json
import re
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import pytest

from bot.core.dns.commands import check_key
from bot.core.dns.config import ZoneConfig, parse_event, parse_master, parse_zones
from bot.core.dns.snapshot_store import snapshot_pk
from bot.core.dns.worker import progress_key
from tests.support import cfn_template

ROOT = Path(__file__).resolve().parents[2]
NO_VALUE = object()  # AWS::NoValue
PSEUDO = {
    "AWS::Partition": "aws",
    "AWS::Region": "us-east-1",
    "AWS::AccountId": "123456789012",
    "AWS::StackName": "opsbot",
    "AWS::URLSuffix": "amazonaws.com",
}
REQUIRED = {"SlackBotUserId": "U0BOT", "SlackTeamId": "T0TEAM"}  # parameters without a default


@functools.cache
def template() -> dict[str, Any]:
    """template.yaml, parsed once (the tests only read it)."""
    return cfn_template.load("template.yaml")


class Deployment:
    """The stack CloudFormation would create from template.yaml with these parameter values.

    References to resources stay symbolic (``{Ref:Name}``, ``{GetAtt:Name.Attr}``); each must name a
    resource that exists in this deployment, as CloudFormation requires.
    """

    def __init__(self, **values: str) -> None:
        declared = template()["Parameters"]
        assert set(values) <= set(declared), sorted(set(values) - set(declared))
        self.parameters: dict[str, Any] = {}
        for name, spec in declared.items():
            value = str(values.get(name, REQUIRED.get(name, spec.get("Default"))))
            pattern = spec.get("AllowedPattern")
            if pattern is not None and not re.fullmatch(pattern, value):
                raise ValueError(f"{name}={value!r} does not match its AllowedPattern")
            if "AllowedValues" in spec and value not in [str(v) for v in spec["AllowedValues"]]:
                raise ValueError(f"{name}={value!r} is not one of its AllowedValues")
            self.parameters[name] = value.split(",") if spec["Type"] == "CommaDelimitedList" else value
        self._conditions: dict[str, bool] = {}
        self.referenced: set[str] = set()
        self.resources = {
            name: self.resolve(resource)
            for name, resource in template()["Resources"].items()
            if "Condition" not in resource or self.condition(resource["Condition"])
        }
        for output in template()["Outputs"].values():
            if "Condition" not in output or self.condition(output["Condition"]):
                self.resolve(output)
        missing = self.referenced - set(self.resources)
        assert not missing, f"references to resources this deployment does not create: {sorted(missing)}"

    def condition(self, name: str) -> bool:
        if name not in self._conditions:
            value = self.resolve(template()["Conditions"][name])
            assert isinstance(value, bool), (name, value)
            self._conditions[name] = value
        return self._conditions[name]

    def resolve(self, node: Any) -> Any:
        if isinstance(node, dict):
            if len(node) == 1:
                ((key, argument),) = node.items()
                if key == "Ref":
                    return self._ref(str(argument))
                if key == "Condition" and isinstance(argument, str):
                    return self.condition(argument)
                if key.startswith("Fn::"):
                    return getattr(self, "_" + key[4:].lower())(argument)
            resolved = {str(k): self.resolve(v) for k, v in node.items()}
            return {k: v for k, v in resolved.items() if v is not NO_VALUE}
        if isinstance(node, list):
            return [item for item in map(self.resolve, node) if item is not NO_VALUE]
        return node

    def _ref(self, name: str) -> Any:
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in PSEUDO:
            return PSEUDO[name]
        if name in self.parameters:
            return self.parameters[name]
        assert name in template()["Resources"], f"Ref to nothing: {name}"
        self.referenced.add(name)
        return f"{{Ref:{name}}}"

    def _getatt(self, argument: Any) -> str:
        name, attribute = argument.split(".", 1) if isinstance(argument, str) else argument
        assert name in template()["Resources"], f"GetAtt of nothing: {name}"
        self.referenced.add(str(name))
        return f"{{GetAtt:{name}.{attribute}}}"

    def _if(self, argument: list[Any]) -> Any:
        name, when_true, when_false = argument
        return self.resolve(when_true if self.condition(name) else when_false)

    def _equals(self, argument: list[Any]) -> bool:
        left, right = (self.resolve(value) for value in argument)
        return bool(left == right)

    def _not(self, argument: list[Any]) -> bool:
        (value,) = (self.resolve(value) for value in argument)
        assert isinstance(value, bool)
        return not value

    def _and(self, argument: list[Any]) -> bool:
        return all(self.resolve(value) for value in argument)

    def _or(self, argument: list[Any]) -> bool:
        return any(self.resolve(value) for value in argument)

    def _join(self, argument: list[Any]) -> str:
        delimiter, values = argument
        resolved = self.resolve(values)
        assert all(isinstance(value, str) for value in resolved), resolved
        return str(delimiter).join(resolved)

    def _select(self, argument: list[Any]) -> Any:
        index, values = argument
        return self.resolve(values)[int(index)]

    def _split(self, argument: list[Any]) -> list[str]:
        delimiter, value = argument
        return str(self.resolve(value)).split(str(delimiter))

    def _sub(self, argument: Any) -> str:
        text, variables = (argument, {}) if isinstance(argument, str) else argument
        resolved = {str(k): self.resolve(v) for k, v in variables.items()}

        def value(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in resolved:
                found = resolved[name]
            elif "." in name:
                found = self._getatt(name)
            else:
                found = self._ref(name)
            assert isinstance(found, str), (name, found)
            return found

        return re.sub(r"\$\{([^}]+)\}", value, str(text))

    # -- what the tests read -----------------------------------------------------------------------

    def function(self, name: str) -> dict[str, Any]:
        return self.resources[name]["Properties"]  # type: ignore[no-any-return]

    def zones(self, function: str) -> tuple[ZoneConfig, ...]:
        """OPSBOT_DNS_ZONES of a function, read as the function reads it."""
        return parse_zones(self.function(function)["Environment"]["Variables"]["OPSBOT_DNS_ZONES"])

    def statements(self, function: str) -> list[dict[str, Any]]:
        return [s for policy in self.function(function)["Policies"] for s in policy.get("Statement", [])]

    def granted(self, function: str, action_prefix: str) -> set[str]:
        """The resources of every statement granting an action of that service."""
        found: set[str] = set()
        for statement in self.statements(function):
            if any(str(a).startswith(action_prefix) for a in _list(statement["Action"])):
                found.update(_list(statement["Resource"]))
        return found

    def of_type(self, resource_type: str) -> dict[str, dict[str, Any]]:
        return {n: r for n, r in self.resources.items() if r["Type"] == resource_type}


SLOTS = ("Dns", "Dns2", "Dns3")
# The Slack function's one secret (SlackSecretName's default), as the template grants it.
SLACK_SECRET = "arn:aws:secretsmanager:us-east-1:123456789012:secret:opsbot/slack-??????"
TSIG_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:opsbot/dns-{}-AbCdEf"
# The third zone mirrors the first zone's domain into another hosted zone (a public and a private one, say).
ZONES: tuple[dict[str, str], ...] = (
    {
        "Domain": "corp.example.com",
        "MasterAddress": "10.0.0.53",
        "HostedZoneId": "Z0123456789ABC",
        "TsigSecretArn": TSIG_ARN.format("corp"),
    },
    {
        "Domain": "lab.example.net",
        "MasterAddress": "[fd00::53]:5353",
        "HostedZoneId": "Z0LAB0000000000",
        "IgnoreTtl": "true",
    },
    {
        "Domain": "corp.example.com",
        "MasterAddress": "ns2.corp.example.com:5353",
        "HostedZoneId": "Z0PUBLIC000000",
        "TsigSecretArn": TSIG_ARN.format("public"),
    },
)


def parameters(slots: dict[int, dict[str, str]]) -> dict[str, str]:
    """Parameter values filling the given slots (0, 1, 2) with those zones."""
    return {SLOTS[slot] + key: value for slot, zone in slots.items() for key, value in zone.items()}


def expected(zone: dict[str, str]) -> tuple[Any, ...]:
    return (
        zone["Domain"],
        str(parse_master(zone["MasterAddress"])),
        zone["HostedZoneId"],
        zone.get("TsigSecretArn", ""),
        zone.get("IgnoreTtl") == "true",
        30.0,
        30.0,
        10,
    )


def described(zone: ZoneConfig) -> tuple[Any, ...]:
    return (
        zone.name,
        str(zone.master),
        zone.zone_id,
        zone.tsig,
        zone.ignore_ttl,
        zone.max_delete_percent,
        zone.max_update_percent,
        zone.guard_min_records,
    )


@pytest.mark.parametrize(
    "slots", [(0,), (0, 1), (0, 1, 2), (0, 2)], ids=["1 zone", "2 zones", "3 zones", "1st+3rd"]
)
def test_each_configured_zone_is_configured_scheduled_and_granted(slots: tuple[int, ...]) -> None:
    chosen = [ZONES[slot] for slot in slots]
    deployment = Deployment(**parameters({slot: ZONES[slot] for slot in slots}))

    # Both functions know exactly these zones, in slot order, with their settings.
    zones = deployment.zones("DnsMirrorFunction")
    assert [described(z) for z in zones] == [expected(z) for z in chosen]
    assert deployment.zones("SlackFunction") == zones

    # One schedule per zone; its input runs that zone and no other.
    rules = deployment.of_type("AWS::Events::Rule")
    assert len(rules) == len(chosen)
    scheduled = []
    for rule in rules.values():
        properties = rule["Properties"]
        assert properties["ScheduleExpression"] == "rate(15 minutes)" and properties["State"] == "ENABLED"
        (target,) = properties["Targets"]
        assert target["Arn"] == "{GetAtt:DnsMirrorFunction.Arn}"
        (request,) = parse_event(json.loads(target["Input"]), zones)
        assert not request.force
        scheduled.append(request.zone)
    assert sorted(scheduled, key=described) == sorted(zones, key=described)
    # ... and each rule, only it, may invoke the mirror function.
    permissions = deployment.of_type("AWS::Lambda::Permission")
    assert {p["Properties"]["SourceArn"] for p in permissions.values()} == {
        f"{{GetAtt:{name}.Arn}}" for name in rules
    }
    for permission in permissions.values():
        assert permission["Properties"]["FunctionName"] == "{GetAtt:DnsMirrorFunction.Arn}"
        assert permission["Properties"]["Principal"] == "events.amazonaws.com"
        assert permission["Properties"]["Action"] == "lambda:InvokeFunction"

    # IAM names exactly these hosted zones and TSIG secrets, in the mirror function only: the Slack
    # function sends /dns work to it (OPSBOT_DNS_FUNCTION) and may invoke it, nothing more.
    hosted_zones = {f"arn:aws:route53:::hostedzone/{z['HostedZoneId']}" for z in chosen}
    secrets = {z["TsigSecretArn"] for z in chosen if "TsigSecretArn" in z}
    assert deployment.granted("DnsMirrorFunction", "route53:") == hosted_zones
    assert deployment.granted("DnsMirrorFunction", "secretsmanager:") == secrets
    assert not deployment.granted("SlackFunction", "route53:")
    assert deployment.granted("SlackFunction", "secretsmanager:") == {SLACK_SECRET}  # the Slack secret only
    assert _invokes_the_mirror(deployment)


def _mirror_arn(deployment: Deployment) -> str:
    name = deployment.function("DnsMirrorFunction")["FunctionName"]
    return f"arn:aws:lambda:us-east-1:123456789012:function:{name}"


def _invokes_the_mirror(deployment: Deployment) -> bool:
    """The Slack function names the mirror in OPSBOT_DNS_FUNCTION and may invoke it (and only it)."""
    slack = deployment.function("SlackFunction")
    if not slack["Environment"]["Variables"]["OPSBOT_DNS_FUNCTION"]:
        return False
    assert (
        slack["Environment"]["Variables"]["OPSBOT_DNS_FUNCTION"]
        == deployment.function("DnsMirrorFunction")["FunctionName"]
    )
    invokes = deployment.granted("SlackFunction", "lambda:InvokeFunction")
    return _mirror_arn(deployment) in invokes and not any(
        "dns" in arn for arn in invokes - {_mirror_arn(deployment)}
    )


def test_without_tsig_secrets_no_secret_is_granted() -> None:
    plain = [{k: v for k, v in zone.items() if k != "TsigSecretArn"} for zone in ZONES]
    deployment = Deployment(**parameters(dict(enumerate(plain))))
    assert all(zone.tsig == "" for zone in deployment.zones("DnsMirrorFunction"))
    assert not [s for s in deployment.statements("DnsMirrorFunction") if "secretsmanager" in json.dumps(s)]
    assert deployment.granted("SlackFunction", "secretsmanager:") == {SLACK_SECRET}
    # Only the third zone's key: only its secret.
    deployment = Deployment(**parameters({0: plain[0], 1: plain[1], 2: ZONES[2]}))
    assert deployment.granted("DnsMirrorFunction", "secretsmanager:") == {ZONES[2]["TsigSecretArn"]}
    # It asks the mirror function; it reads only the Slack secret (bot/slack_secrets.py).
    assert deployment.granted("SlackFunction", "secretsmanager:") == {SLACK_SECRET}


def _no_mirror(deployment: Deployment) -> None:
    assert "DnsMirrorFunction" not in deployment.resources
    assert not deployment.of_type("AWS::Events::Rule") and not deployment.of_type("AWS::Lambda::Permission")
    assert deployment.zones("SlackFunction") == ()
    assert not deployment.granted("SlackFunction", "route53:")
    assert deployment.granted("SlackFunction", "secretsmanager:") == {SLACK_SECRET}  # the Slack secret only
    assert deployment.function("SlackFunction")["Environment"]["Variables"]["OPSBOT_DNS_FUNCTION"] == ""
    assert not any("dns-mirror" in arn for arn in deployment.granted("SlackFunction", "lambda:"))


def test_the_slack_function_outlasts_the_mirror_it_waits_for() -> None:
    """An Apply waits for the mirror's answer or its timeout, and must still have time to say so."""
    from bot.aws.functions import INVOKE_READ_TIMEOUT

    deployment = Deployment(**parameters({0: ZONES[0]}))
    mirror = deployment.function("DnsMirrorFunction")["Timeout"]
    assert mirror < INVOKE_READ_TIMEOUT < deployment.function("SlackFunction")["Timeout"] - 5


def test_no_zone_deploys_no_mirror_and_grants_nothing() -> None:
    _no_mirror(Deployment())


def test_the_second_and_third_zones_count_only_with_the_first() -> None:
    """The mirror function (and the start of OPSBOT_DNS_ZONES) comes with the first zone: later slots
    alone deploy nothing, rather than half a mirror."""
    _no_mirror(Deployment(**parameters({1: ZONES[1], 2: ZONES[2]})))


@pytest.mark.parametrize("missing", ["Domain", "MasterAddress", "HostedZoneId"])
@pytest.mark.parametrize("slot", [0, 1, 2])
def test_a_zone_needs_its_domain_master_and_hosted_zone(slot: int, missing: str) -> None:
    slots = dict(enumerate(ZONES))
    slots[slot] = {k: v for k, v in ZONES[slot].items() if k != missing}
    deployment = Deployment(**parameters(slots))
    if slot == 0:
        _no_mirror(deployment)
        return
    left = [ZONES[n] for n in range(3) if n != slot]
    assert [described(z) for z in deployment.zones("DnsMirrorFunction")] == [expected(z) for z in left]
    assert len(deployment.of_type("AWS::Events::Rule")) == 2
    assert deployment.granted("DnsMirrorFunction", "route53:") == {
        f"arn:aws:route53:::hostedzone/{z['HostedZoneId']}" for z in left
    }


@pytest.mark.parametrize("slot", SLOTS)
def test_each_slots_values_cannot_break_out_of_the_json(slot: str) -> None:
    """OPSBOT_DNS_ZONES and the schedules' inputs are built by substitution: every slot's parameters
    refuse quotes and braces, as CloudFormation checks AllowedPattern before anything is created."""
    good = {
        "Domain": "corp.example.com",
        "MasterAddress": "[fd00::53]:5353",
        "HostedZoneId": "Z0123456789ABC",
        "TsigSecretArn": TSIG_ARN.format("x"),
    }
    Deployment(**parameters({0: ZONES[0], SLOTS.index(slot): good}))
    for key, bad in (
        ("Domain", 'x", "zone_id": "Z9'),
        ("MasterAddress", '10.0.0.53"'),
        ("HostedZoneId", "Z1}"),
        ("TsigSecretArn", 'arn", "x'),
        ("IgnoreTtl", 'true, "x": 1'),
    ):
        with pytest.raises(ValueError, match=slot + key):
            Deployment(**{**parameters({0: ZONES[0]}), slot + key: bad})


def test_the_mirror_function_and_its_vpc() -> None:
    deployment = Deployment(**parameters({0: ZONES[0]}))
    properties = deployment.function("DnsMirrorFunction")
    assert properties["Handler"] == "handlers.dns_mirror.handler"
    assert properties["EventInvokeConfig"]["MaximumRetryAttempts"] == 0
    assert "Events" not in properties  # the schedules are rules of their own, with conditions
    assert "VpcConfig" not in properties
    in_vpc = Deployment(
        **parameters({0: ZONES[0]}), DnsSubnetIds="subnet-1,subnet-2", DnsSecurityGroupIds="sg-1"
    )
    assert in_vpc.function("DnsMirrorFunction")["VpcConfig"] == {
        "SubnetIds": ["subnet-1", "subnet-2"],
        "SecurityGroupIds": ["sg-1"],
    }
    assert "VpcConfig" not in in_vpc.function("SlackFunction")


def test_the_mirror_reaches_only_its_own_items_in_the_state_table() -> None:
    deployment = Deployment(**parameters(dict(enumerate(ZONES))))
    statements = deployment.statements("DnsMirrorFunction")
    (dynamo,) = [s for s in statements if any(str(a).startswith("dynamodb:") for a in _list(s["Action"]))]
    assert dynamo["Resource"] == "{GetAtt:StateTable.Arn}"
    # What the sync state, the lock and the snapshot store call (bot.aws.state: get, put, delete).
    assert {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:DeleteItem"} <= set(_list(dynamo["Action"]))
    patterns = dynamo["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"]
    # The partition keys the mirror writes (bot.aws.state: sync#NAME, lock#KEY), for every zone.
    for zone in deployment.zones("DnsMirrorFunction"):
        progress, _ = progress_key(zone.state_key, "token")  # an apply's progress, read by the Slack side
        for key in (
            f"sync#{zone.state_key}",
            f"sync#{check_key(zone)}",
            snapshot_pk(zone),  # the snapshot of the last sync and its chunks (GetItem, PutItem, DeleteItem)
            f"lock#dns-apply:{zone.state_key}",
            progress,
        ):
            assert any(fnmatchcase(key, pattern) for pattern in patterns), key
    assert not any(fnmatchcase("sync#fanout:x", p) or fnmatchcase("audit#2024-01-01", p) for p in patterns)


def test_the_slack_function_stays_out_of_any_vpc() -> None:
    """A VpcConfig on the Slack function, even behind a false condition, would make SAM attach the ENI
    permissions of AWSLambdaVPCAccessExecutionRole to its role (aws/serverless-application-model#3502)."""
    assert "VpcConfig" not in template()["Resources"]["SlackFunction"]["Properties"]
    assert "VpcConfig" not in template().get("Globals", {}).get("Function", {})


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]
