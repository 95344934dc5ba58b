"""``/ops accounts`` and ``opsbot accounts``: every configured account, and a verdict on its role(s)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bot.config import Settings
from bot.core.common.accounts import Account
from bot.errors import AwsError


@dataclass(frozen=True)
class RoleCheck:
    account: Account
    role: str  # "own" | "read" | "change"
    role_arn: str
    verdict: str  # "ok" | "fail"
    identity: str = ""  # the ARN STS says the credentials are
    message: str = ""  # what is wrong, with the fix

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "account": self.account.label,
            "role": self.role,
            "verdict": self.verdict,
        }
        if self.role_arn:
            data["roleArn"] = self.role_arn
        if self.identity:
            data["identity"] = self.identity
        if self.message:
            data["message"] = self.message
        if self.account.regions:
            data["regions"] = list(self.account.regions)
        return data


@dataclass(frozen=True)
class AccountsReport:
    checks: tuple[RoleCheck, ...]
    default: str
    configured: bool

    @property
    def failed(self) -> bool:
        return any(c.verdict != "ok" for c in self.checks)

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": not self.failed,
            "configured": self.configured,
            "default": self.default,
            "accounts": [c.to_json() for c in self.checks],
        }


def check_accounts(settings: Settings, *, principal: str, operator: str = "") -> AccountsReport:
    """For each account: opsbot's own (sts:GetCallerIdentity), or each of its roles (one sts:AssumeRole as
    ``principal`` + one sts:GetCallerIdentity), with a verdict. Never raises for a role that fails.
    ``operator``: the identity of the person whose own credentials assume the roles (the CLI's)."""
    from bot.aws.accounts import own_identity, probe_role

    accounts = settings.accounts()
    entries = accounts.entries or (accounts.default(),)
    checks: list[RoleCheck] = []
    for account in entries:
        if account.own:
            try:
                identity = own_identity()
                checks.append(RoleCheck(account, "own", "", "ok", identity["Arn"]))
            except AwsError as error:
                checks.append(RoleCheck(account, "own", "", "fail", message=str(error)))
            continue
        roles = [("read", account.role_arn)]
        if account.change_role_arn:
            roles.append(("change", account.change_role_arn))
        for kind, arn in roles:
            try:
                identity = probe_role(
                    arn,
                    external_id=account.external_id,
                    principal=principal,
                    account=account.name,
                    operator=operator,
                )
            except AwsError as error:
                checks.append(RoleCheck(account, kind, arn, "fail", message=str(error)))
                continue
            if identity["Account"] != account.account_id:
                checks.append(
                    RoleCheck(
                        account,
                        kind,
                        arn,
                        "fail",
                        identity["Arn"],
                        f"The credentials are for account {identity['Account']}, not "
                        f"{account.account_id}: check the role ARN in OPSBOT_ACCOUNTS.",
                    )
                )
            else:
                checks.append(RoleCheck(account, kind, arn, "ok", identity["Arn"]))
    return AccountsReport(tuple(checks), accounts.default().label, accounts.configured)
