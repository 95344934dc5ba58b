"""The check behind ``/ops accounts``: can opsbot assume each account's role, and whose is it?"""

from __future__ import annotations

from typing import Any

from bot.aws.clients import client, use_target


def probe_role(
    role_arn: str, *, external_id: str, principal: str, account: str, operator: str = ""
) -> dict[str, Any]:
    """One sts:AssumeRole (opsbot's own credentials, as a command would: ExternalId, the session name and
    SourceIdentity of ``principal``) and one sts:GetCallerIdentity with the credentials it returned,
    bypassing the credentials cache so that the check is of the role as it is now. Returns the identity;
    raises AwsError with the sentence and fix when the role cannot be assumed."""
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    from bot.aws.errors import aws_errors, translate_assume_role
    from bot.core.common.accounts import session_name, source_identity

    request: dict[str, Any] = {
        "RoleArn": role_arn,
        "RoleSessionName": session_name(principal),
        "SourceIdentity": source_identity(principal),
        "DurationSeconds": 900,
    }
    if external_id:
        request["ExternalId"] = external_id
    with use_target(None):
        sts = client("sts", attempts=2, connect_timeout=3, read_timeout=5)
        try:
            creds = sts.assume_role(**request)["Credentials"]
        except (ClientError, BotoCoreError) as error:
            raise translate_assume_role(
                error, role_arn=role_arn, account=account, external_id=external_id, operator=operator
            ) from error
        assumed = boto3.session.Session(
            aws_access_key_id=creds["AccessKeyId"],
            aws_secret_access_key=creds["SecretAccessKey"],
            aws_session_token=creds["SessionToken"],
        ).client("sts", region_name=sts.meta.region_name)
        with aws_errors(resource=role_arn):
            identity = assumed.get_caller_identity()
    return {"Account": identity.get("Account", ""), "Arn": identity.get("Arn", "")}


def own_identity() -> dict[str, Any]:
    """sts:GetCallerIdentity with opsbot's own credentials."""
    from bot.aws.errors import aws_errors

    with use_target(None), aws_errors():
        identity = client("sts", attempts=2, connect_timeout=3, read_timeout=5).get_caller_identity()
    return {"Account": identity.get("Account", ""), "Arn": identity.get("Arn", "")}
