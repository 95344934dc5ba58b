"""Demo accounts: opsbot's own (123456789012) and ``prod`` (222222222222), reached by an assumed role.

moto keeps one set of resources per account and puts what assumed-role credentials create in the role's
account, so the second account's data is created here with the prod role's credentials: the same API
(same id, so that ``--api`` is not needed) with other requests, and a Route 53 zone of its own that the
DNS master's zone is mirrored into. moto does not check trust policies or external ids (the tests do
that with AWS's documented answers); the demo shows the routing: ``/apilogs ... --account prod``,
``/dns status --account prod``, the account named in every reply.
"""

from __future__ import annotations

import json
import os
from datetime import timedelta

from bot.aws.clients import Target, client, use_target
from bot.local.seeds import SeedContext

PROD_ACCOUNT_ID = "222222222222"
PROD_READ_ROLE = f"arn:aws:iam::{PROD_ACCOUNT_ID}:role/opsbot-member-read"
PROD_CHANGE_ROLE = f"arn:aws:iam::{PROD_ACCOUNT_ID}:role/opsbot-member-change"
EXTERNAL_ID = "opsbot-demo-external-id"
DEMO_ACCOUNTS = {
    "own": {"default": True, "description": "opsbot's own account"},
    "prod": {
        "roleArn": PROD_READ_ROLE,
        "changeRoleArn": PROD_CHANGE_ROLE,
        "externalId": EXTERNAL_ID,
        "regions": ["us-east-1", "ap-southeast-1"],
    },
}


def prod_target(region: str) -> Target:
    return Target(
        account="prod",
        role_arn=PROD_CHANGE_ROLE,
        external_id=EXTERNAL_ID,
        region=region,
        principal="opsbot-demo-seed",
    )


def seed(ctx: SeedContext) -> list[str]:
    from bot.core.dns.commands import mirror
    from bot.core.dns.config import ZoneConfig
    from bot.local.apilogs_traffic import write_events
    from bot.local.seeds import apilogs, dns

    region = ctx.settings.region
    api_id = str(ctx.facts.get("apilogs.api_id", ""))
    master = ctx.facts.get("dns.master")
    lines = [
        "Accounts: opsbot's own (default) and prod (222222222222, an assumed role with an external id). "
        "Add --account prod to a command:",
    ]
    with use_target(prod_target(region)):
        assert client("sts").get_caller_identity()["Account"] == PROD_ACCOUNT_ID
        if api_id:
            prod_api, account = apilogs.create_api(region, api_id=api_id)
            # As in opsbot's own account (without it `/ops doctor --account prod` fails on prod's logging).
            apilogs.set_cloudwatch_role(account)
            # 24 requests ending now: prod's failures (the 502 about 9 minutes ago) are in the default
            # 15-minute window of the banner's `/apilogs errors --account prod`.
            demo = apilogs.generate(prod_api, account, ctx.now, count=24, seed=29)
            write_events(client("logs"), (e for r in demo.requests for e in r.events))
            assert demo.failed is not None
            ctx.facts["accounts.prod_request_id"] = demo.failed.api_request_id
            lines.append(
                f"  /apilogs {demo.failed.api_request_id} --account prod   (a failed request in prod's "
                f"{apilogs.API_NAME})"
            )
            lines.append("  /apilogs errors --account prod   (prod's failing requests, grouped by cause)")
            lines.append(
                f"  mention --account prod what failed? {demo.failed.api_request_id}   (@opsbot aimed at prod)"
            )
        if master is not None:
            vpc_id = client("ec2").create_vpc(CidrBlock="10.40.0.0/16")["Vpc"]["VpcId"]
            zone_id = (
                client("route53")
                .create_hosted_zone(
                    Name=dns.DOMAIN + ".",
                    CallerReference=f"opsbot-demo-prod-{ctx.now.timestamp()}",
                    HostedZoneConfig={
                        "Comment": "opsbot demo: prod's mirror of the corp zone",
                        "PrivateZone": True,
                    },
                    VPC={"VPCRegion": region, "VPCId": vpc_id},
                )["HostedZone"]["Id"]
                .rsplit("/", 1)[-1]
            )
            zone = ZoneConfig(domain=dns.DOMAIN + ".", master=master.address, zone_id=zone_id, account="prod")
            mirror(zone, state=ctx.state, actor="schedule", now=ctx.now - timedelta(hours=2))
            zones = json.loads(os.environ.get("OPSBOT_DNS_ZONES", "[]") or "[]")
            zones.append(
                {"domain": dns.DOMAIN, "master": str(master.address), "zone_id": zone_id, "account": "prod"}
            )
            os.environ["OPSBOT_DNS_ZONES"] = json.dumps(zones)
            ctx.facts["accounts.prod_zone_id"] = zone_id
            lines.append(f"  /dns status --account prod   (prod's hosted zone {zone_id} of {dns.DOMAIN})")
    lines.append("  /ops accounts   (checks each account's role)")
    os.environ["OPSBOT_ACCOUNTS"] = json.dumps(DEMO_ACCOUNTS)
    ctx.facts["accounts.names"] = list(DEMO_ACCOUNTS)
    return lines
