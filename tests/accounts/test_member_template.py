"""member-account.yaml's trust policies, resolved for given parameter values and evaluated as IAM does for
sts:AssumeRole: opsbot's function roles with the external id, and the people of OperatorPrincipalArns
(the CLI's --account from a terminal) with the same external id; nobody else, and nothing more than
today when the parameter is empty."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping
from typing import Any

import pytest

from tests.foundation.test_iam_coverage import member_template

OPSBOT_ACCOUNT, MEMBER_ACCOUNT = "123456789012", "222222222222"
OPSBOT_ROLE = f"arn:aws:iam::{OPSBOT_ACCOUNT}:role/opsbot-SlackFunctionRole-1A2B3C"
SSO_ROLE = (
    f"arn:aws:iam::{OPSBOT_ACCOUNT}:role/aws-reserved/sso.amazonaws.com/eu-west-1/AWSReservedSSO_Ops_0123abcd"
)
ENGINEER = f"arn:aws:iam::{MEMBER_ACCOUNT}:user/jane"
EXTERNAL_ID = "opsbot-prod-1"
ACTIONS = ("sts:AssumeRole", "sts:SetSourceIdentity", "sts:TagSession")
NO_VALUE = object()


class Resolver:
    """The intrinsic functions member-account.yaml uses, for one set of parameter values."""

    def __init__(self, template: Mapping[str, Any], parameters: Mapping[str, Any]) -> None:
        self.template = template
        self.values: dict[str, Any] = {
            name: spec.get("Default", "") for name, spec in template["Parameters"].items()
        }
        self.values.update(parameters)
        for name, spec in template["Parameters"].items():
            if spec["Type"] == "CommaDelimitedList" and isinstance(self.values[name], str):
                self.values[name] = self.values[name].split(",")
        self.values.update(
            {"AWS::Partition": "aws", "AWS::AccountId": MEMBER_ACCOUNT, "AWS::NoValue": NO_VALUE}
        )

    def condition(self, name: str) -> bool:
        return bool(self(self.template["Conditions"][name]))

    def __call__(self, node: Any) -> Any:
        if isinstance(node, list):
            return [v for v in (self(item) for item in node) if v is not NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            ((key, arg),) = node.items()
            if key == "Ref":
                return self.values[arg]
            if key == "Condition":
                return self.condition(arg)
            if key == "Fn::If":
                return self(arg[1] if self.condition(arg[0]) else arg[2])
            if key == "Fn::Equals":
                return self(arg[0]) == self(arg[1])
            if key == "Fn::Not":
                return not self(arg[0])
            if key == "Fn::Join":
                return arg[0].join(self(arg[1]))
            if key == "Fn::Split":
                return self(arg[1]).split(arg[0])
            if key == "Fn::Select":
                return self(arg[1])[int(arg[0])]
            if key == "Fn::Sub":
                text, extra = (arg, {}) if isinstance(arg, str) else (arg[0], self(arg[1]))
                names = {**self.values, **extra}
                return re.sub(r"\$\{([\w:]+)\}", lambda m: str(names[m.group(1)]), text)
        return {key: value for key, value in ((k, self(v)) for k, v in node.items()) if value is not NO_VALUE}


def trust(role: str, **parameters: Any) -> list[dict[str, Any]]:
    template = member_template()
    resolve = Resolver(template, {"OpsbotAccountId": OPSBOT_ACCOUNT, "ExternalId": EXTERNAL_ID, **parameters})
    return resolve(template["Resources"][role]["Properties"]["AssumeRolePolicyDocument"]["Statement"])  # type: ignore[no-any-return]


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def allows(statements: list[dict[str, Any]], principal: str, action: str, external_id: str | None) -> bool:
    """IAM's answer for a role's trust policy (Allow statements, no Deny in it): the principal is named (by
    its ARN, or its account's root, which stands for every principal of the account), the action is
    listed, and every condition holds for the request's context."""
    account = principal.split(":")[4]
    context = {"aws:PrincipalArn": principal, "sts:ExternalId": external_id}
    for statement in statements:
        assert statement["Effect"] == "Allow"
        named = as_list(statement["Principal"]["AWS"])
        if principal not in named and f"arn:aws:iam::{account}:root" not in named:
            continue
        if action not in as_list(statement["Action"]):
            continue
        conditions = statement.get("Condition", {})
        equal = all(
            context.get(key) in as_list(value) for key, value in conditions.get("StringEquals", {}).items()
        )
        like = all(
            any(fnmatch.fnmatchcase(str(context.get(key) or ""), pattern) for pattern in as_list(value))
            for key, value in conditions.get("ArnLike", {}).items()
        )
        if equal and like:
            return True
    return False


@pytest.mark.parametrize("role", ["ReadRole", "ChangeRole"])
def test_without_operators_only_opsbots_function_roles_are_trusted(role: str) -> None:
    statements = trust(role)
    assert len(statements) == 1  # today's trust, exactly
    for action in ACTIONS:
        assert allows(statements, OPSBOT_ROLE, action, EXTERNAL_ID)
        assert not allows(statements, OPSBOT_ROLE, action, "another-id")
        assert not allows(statements, OPSBOT_ROLE, action, None)
        assert not allows(statements, SSO_ROLE, action, EXTERNAL_ID)  # same account, not a function role
        assert not allows(statements, ENGINEER, action, EXTERNAL_ID)


@pytest.mark.parametrize("role", ["ReadRole", "ChangeRole"])
def test_operators_may_assume_the_roles_with_the_external_id(role: str) -> None:
    statements = trust(role, OperatorPrincipalArns=f"{SSO_ROLE},{ENGINEER}")
    assert len(statements) == 2
    for person in (SSO_ROLE, ENGINEER):
        for action in ACTIONS:
            assert allows(statements, person, action, EXTERNAL_ID), (person, action)
        assert not allows(statements, person, "sts:AssumeRole", None)
        assert not allows(statements, person, "sts:AssumeRole", "another-id")
    # Nobody else of those accounts, and opsbot's function roles as before.
    assert not allows(
        statements, f"arn:aws:iam::{MEMBER_ACCOUNT}:user/mallory", "sts:AssumeRole", EXTERNAL_ID
    )
    assert not allows(
        statements, f"arn:aws:iam::{OPSBOT_ACCOUNT}:role/someone-else", "sts:AssumeRole", EXTERNAL_ID
    )
    assert allows(statements, OPSBOT_ROLE, "sts:AssumeRole", EXTERNAL_ID)
    # The operators' statement names them only: not an account's root, which would trust everyone there.
    assert as_list(statements[1]["Principal"]["AWS"]) == [SSO_ROLE, ENGINEER]
