"""Translate botocore errors into sentences that say what to fix.

Users see these in Slack: they must name the missing permission, the table that does not exist or the
credentials that are absent, never a stack trace.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from bot.errors import AwsError

ACCESS_DENIED_CODES = {
    "AccessDenied",
    "AccessDeniedException",
    "UnauthorizedOperation",
    "UnauthorizedException",
    "AuthorizationError",
    "NotAuthorized",
}
THROTTLING_CODES = {
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "ProvisionedThroughputExceededException",
    "PriorRequestNotComplete",
}
CREDENTIAL_CODES = {
    "ExpiredToken",
    "ExpiredTokenException",
    "InvalidClientTokenId",
    "UnrecognizedClientException",
    "SignatureDoesNotMatch",
}

# "User: arn:... is not authorized to perform: logs:FilterLogEvents on resource: arn:... because ..."
_NOT_AUTHORIZED = re.compile(
    r"is not authorized to perform:? (?P<action>[\w-]+:[\w*]+)(?: on resource:? (?P<resource>\S+))?"
)
_PRINCIPAL = re.compile(r"User: (?P<principal>arn:\S+)")


def _iam_prefix(client_or_service: Any, operation: str) -> str:
    service = ""
    meta = getattr(client_or_service, "meta", None)
    if meta is not None:
        model = meta.service_model
        service = model.signing_name or model.endpoint_prefix
    elif isinstance(client_or_service, str):
        service = client_or_service
    return f"{service}:{operation}" if service else operation


def translate(error: Exception, *, client: Any = None, resource: str = "") -> AwsError:
    """Turn a botocore exception into an AwsError whose message says what to fix."""
    from botocore.exceptions import (
        ClientError,
        EndpointConnectionError,
        NoCredentialsError,
        NoRegionError,
        ParamValidationError,
    )

    if isinstance(error, NoCredentialsError):
        return AwsError(
            "No AWS credentials were found.",
            code="NoCredentials",
            hint="Set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or run `opsbot demo` "
            "to use the embedded AWS.",
        )
    if isinstance(error, NoRegionError):
        return AwsError("No AWS region is configured.", code="NoRegion", hint="Set AWS_REGION.")
    if isinstance(error, EndpointConnectionError):
        return AwsError(
            f"Could not reach the AWS endpoint {error.kwargs.get('endpoint_url', '')}.",
            code="EndpointConnection",
            hint="Check the region, AWS_ENDPOINT_URL and the network (VPC endpoints or NAT).",
        )
    if isinstance(error, ParamValidationError):
        return AwsError(f"A request to AWS was malformed: {error.kwargs.get('report', error)}", code="Param")
    if not isinstance(error, ClientError):
        return AwsError(f"AWS call failed: {error}", code=type(error).__name__)

    info = error.response.get("Error", {})
    code = str(info.get("Code", "Unknown"))
    message = str(info.get("Message", ""))
    operation = getattr(error, "operation_name", "") or ""
    what = f" ({resource})" if resource else ""

    if code in ACCESS_DENIED_CODES:
        found = _NOT_AUTHORIZED.search(message)
        action = found.group("action") if found else _iam_prefix(client, operation)
        on = found.group("resource") if found and found.group("resource") else resource
        who = _PRINCIPAL.search(message)
        principal = f" Role: {who.group('principal')}." if who else ""
        return AwsError(
            f"opsbot is missing the IAM permission `{action}`"
            + (f" on `{on}`" if on else "")
            + "."
            + principal,
            code=code,
            operation=operation,
            hint="Add it to the function's role in template.yaml (or your IAM policy) and redeploy.",
        )
    if code in CREDENTIAL_CODES:
        return AwsError(
            f"AWS rejected opsbot's credentials ({code}).",
            code=code,
            operation=operation,
            hint="Refresh the credentials or check the account and region.",
        )
    if code in THROTTLING_CODES:
        return AwsError(
            f"AWS kept throttling `{operation}`{what} after {8} attempts.",
            code=code,
            operation=operation,
            hint="Try again in a minute, or narrow the request.",
        )
    if code in {"ResourceNotFoundException", "NoSuchEntity", "NotFoundException", "ParameterNotFound"}:
        return AwsError(
            f"{message or 'Resource not found'}{what}.".replace("..", "."),
            code=code,
            operation=operation,
            hint=_not_found_hint(resource),
        )
    return AwsError(f"AWS `{operation}` failed: {code}: {message}{what}", code=code, operation=operation)


def where_calls_go() -> str:
    """Where the AWS calls of the current request go, for a sentence: "account `prod`, region
    `ap-southeast-1`" in a member account, "region `eu-west-1`" in opsbot's own; "" when no request chose
    (the environment's account and region)."""
    from bot.aws.clients import current_target

    target = current_target()
    if target is None or target.profile or not target.region:
        return ""
    if target.role_arn:
        return f"account `{target.account}`, region `{target.region}`"
    return f"region `{target.region}`"


def _not_found_hint(resource: str) -> str:
    """What to check when something is not found: where it was looked for. A member account's resources
    are its own (created there, with the names opsbot's configuration gives); opsbot's own tables (the
    state table) are always in its own account, whatever the request is aimed at."""
    from bot.aws.clients import own_tables

    where = "" if any(resource.endswith(f" {t}") for t in own_tables()) else where_calls_go()
    if where.startswith("account"):
        return (
            f"It was looked for in {where}: check the name, and that it exists in that account and region "
            "(or aim the command with --account and --region at the one that has it)."
        )
    if where:
        return f"It was looked for in {where}: check the name and the region (--region, else AWS_REGION)."
    return "Check the name and the region (AWS_REGION) in opsbot's configuration."


@contextmanager
def aws_errors(*, client: Any = None, resource: str = "") -> Iterator[None]:
    """Translate botocore errors raised inside the block (``with aws_errors(resource=table): ...``)."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except (ClientError, BotoCoreError) as error:
        raise translate(error, client=client, resource=resource) from error


def error_code(error: BaseException) -> str:
    """The AWS error code of a ClientError (or the AwsError made from one), else ''."""
    if isinstance(error, AwsError):
        return error.code
    response = getattr(error, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return ""


def translate_assume_role(
    error: Exception, *, role_arn: str, account: str = "", external_id: str, operator: str = ""
) -> AwsError:
    """sts:AssumeRole refused: say which of the usual causes it is (as far as AWS's answer tells) and the
    fix. AWS answers AccessDenied alike for a trust policy that does not name opsbot's role, an external id
    that does not match and a role that does not exist; its message tells an SCP's explicit deny and a
    missing permission on opsbot's own role apart. ``operator``: the identity ARN of a person assuming the
    role from a terminal with their own credentials (the CLI's --account), whose fix is another.

    ``external_id``: the one sent. It is never repeated: not in the sentence (which reaches Slack and the
    audit record), whatever AWS's own message quotes."""
    found = _assume_role_error(error, role_arn, account, bool(external_id), operator)
    if not external_id:
        return found
    # The id as a whole value (as AWS quotes it), not as a piece of a word: "es" stays in "does".
    quoted = re.compile(r"(?<![\w+=,.@:/-])" + re.escape(external_id) + r"(?![\w+=,.@:/-])")
    message = quoted.sub("(the external id)", found.message)
    hint = quoted.sub("(the external id)", found.hint) if found.hint else found.hint
    if (message, hint) == (found.message, found.hint):
        return found
    return AwsError(message, code=found.code, operation=found.operation, hint=hint)


# The parameters an STS ValidationError names ("Value '…' at 'externalId' failed to satisfy …").
_INVALID_PARAMETER = re.compile(r"at '([A-Za-z.]+)'")


def _assume_role_error(
    error: Exception, role_arn: str, account: str, external_id: bool, operator: str
) -> AwsError:
    from botocore.exceptions import ClientError

    where = f"account `{account}`" if account else "the account"
    role = f"`{role_arn}`"
    if not isinstance(error, ClientError):
        found = translate(error)
        return AwsError(
            f"opsbot could not assume role {role} for {where}: {found.message}",
            code=found.code,
            operation="AssumeRole",
            hint=found.hint,
        )
    info = error.response.get("Error", {})
    code = str(info.get("Code", "Unknown"))
    message = str(info.get("Message", ""))
    lowered = message.lower()
    if code in ACCESS_DENIED_CODES and operator:
        return _operator_denied(role_arn, where, operator, lowered, code)
    if code in ACCESS_DENIED_CODES:
        if "service control policy" in lowered:
            return AwsError(
                f"opsbot could not assume role {role} for {where}: a service control policy of your AWS "
                "Organization denies it.",
                code=code,
                operation="AssumeRole",
                hint="Ask the organization's administrator to allow sts:AssumeRole (and "
                "sts:SetSourceIdentity) for opsbot's function roles on that role, then run `/ops accounts`.",
            )
        if "sts:setsourceidentity" in lowered:
            return AwsError(
                f"opsbot could not assume role {role} for {where}: the role's trust policy does not allow "
                "sts:SetSourceIdentity, which opsbot uses to name the Slack user in CloudTrail.",
                code=code,
                operation="AssumeRole",
                hint="Deploy the current member-account.yaml in that account (its trust policy allows it), "
                "then run `/ops accounts`.",
            )
        if "identity-based policy" in lowered:
            return AwsError(
                f"opsbot could not assume role {role} for {where}: opsbot's own function role is not "
                "allowed to call sts:AssumeRole on it.",
                code=code,
                operation="AssumeRole",
                hint="Redeploy opsbot with the role in the Accounts parameter (template.yaml grants "
                "sts:AssumeRole on the roles it lists), then run `/ops accounts`.",
            )
        external = (
            "the externalId in OPSBOT_ACCOUNTS does not match the role's (the ExternalId parameter of "
            "member-account.yaml)"
            if external_id
            else "the role requires an external id and OPSBOT_ACCOUNTS gives none"
        )
        return AwsError(
            f"opsbot could not assume role {role} for {where}: the role does not exist, its trust policy "
            f"does not name opsbot's function roles, or {external}.",
            code=code,
            operation="AssumeRole",
            hint="Deploy member-account.yaml in that account with opsbot's function role ARNs and the same "
            "external id (docs/accounts.md), check the role ARN, then run `/ops accounts`.",
        )
    if code == "RegionDisabledException":
        return AwsError(
            f"opsbot could not assume role {role} for {where}: STS is not activated in opsbot's region for "
            "that account.",
            code=code,
            operation="AssumeRole",
            hint="Activate the region in IAM's account settings (Security Token Service regions) of that "
            "account.",
        )
    if code in CREDENTIAL_CODES:
        return AwsError(
            f"opsbot could not assume role {role} for {where}: AWS rejected "
            + ("the terminal's credentials" if operator else "opsbot's own credentials")
            + f" ({code}).",
            code=code,
            operation="AssumeRole",
            hint="Refresh the credentials opsbot runs with (or the CLI's profile).",
        )
    if code == "ValidationError":
        # AWS's message quotes the values it refused, the external id among them: name the parameters only.
        named = sorted(set(_INVALID_PARAMETER.findall(message)))
        which = ", ".join(f"`{n}`" for n in named) if named else "a parameter"
        return AwsError(
            f"opsbot could not assume role {role} for {where}: AWS refused the value of {which} in the "
            "request as malformed.",
            code=code,
            operation="AssumeRole",
            hint="Check the role ARN and external id of that account in OPSBOT_ACCOUNTS (an external id is 2 "
            "to 1224 ASCII letters, digits and +=,.@:/-_).",
        )
    found = translate(error, resource=role_arn)
    return AwsError(
        f"opsbot could not assume role {role} for {where}: {found.message}",
        code=code,
        operation="AssumeRole",
        hint=found.hint,
    )


def _operator_denied(role_arn: str, where: str, operator: str, lowered: str, code: str) -> AwsError:
    """AccessDenied for a person at a terminal: the role must trust their own role or user
    (member-account.yaml's OperatorPrincipalArns), or they use a profile of that account instead."""
    from bot.core.common.accounts import role_name_of

    role, them = f"`{role_arn}`", f"your credentials (`{operator}`)"
    if "service control policy" in lowered:
        return AwsError(
            f"opsbot could not assume role {role} for {where} with {them}: a service control policy of your "
            "AWS Organization denies it.",
            code=code,
            operation="AssumeRole",
            hint="Ask the organization's administrator to allow it, or use --profile with credentials of that "
            "account.",
        )
    if "sts:setsourceidentity" in lowered:
        return AwsError(
            f"opsbot could not assume role {role} for {where} with {them}: the role's trust policy does not "
            "allow sts:SetSourceIdentity, which opsbot uses to name you in CloudTrail.",
            code=code,
            operation="AssumeRole",
            hint="Deploy the current member-account.yaml in that account with you in OperatorPrincipalArns (its "
            "trust policy allows it), or use --profile with credentials of that account.",
        )
    if "identity-based policy" in lowered:
        return AwsError(
            f"opsbot could not assume role {role} for {where}: {them} are not allowed to call sts:AssumeRole "
            "on it.",
            code=code,
            operation="AssumeRole",
            hint="Allow sts:AssumeRole and sts:SetSourceIdentity on that role in your own role's policy (or "
            "permission set), or use --profile with credentials of that account.",
        )
    named = role_name_of(operator)
    yours = f"the ARN of your role `{named}`" if named else f"`{operator}`"
    return AwsError(
        f"opsbot could not assume role {role} for {where} with {them}: the role's trust policy does not name "
        "you (it names opsbot's function roles), the external id does not match, or the role does not exist.",
        code=code,
        operation="AssumeRole",
        hint=f"Add {yours} to the OperatorPrincipalArns parameter of member-account.yaml in that account, or "
        "use --profile with credentials of that account.",
    )
