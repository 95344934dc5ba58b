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
            hint="Check the name and the region (AWS_REGION) in opsbot's configuration.",
        )
    return AwsError(f"AWS `{operation}` failed: {code}: {message}{what}", code=code, operation=operation)


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
