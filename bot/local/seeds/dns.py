"""Demo DNS: an in-process master for corp.example.com and a private hosted zone that lags behind it.

The hosted zone is first synchronised by the real mirror from an older version of the zone; then the
master moves on (new hosts, a changed address, a removed host, a TTL change) and someone edits Route 53
by hand (an alias record and a stray TXT). So ``/dns plan`` has something to show, ``/dns resync`` can
apply it, and the alias is left alone.
"""

from __future__ import annotations

import json
import os
from datetime import timedelta
from typing import Any

from bot.aws.clients import client
from bot.aws.functions import serve_locally
from bot.core.dns.commands import mirror, mirror_handler
from bot.core.dns.config import ZoneConfig
from bot.local.dns_master import LocalMaster, zone_text
from bot.local.seeds import SeedContext

DOMAIN = "corp.example.com"
SERIAL = 2024060101
DEMO_MIRROR_FUNCTION = "opsbot-dns-mirror"
# A DKIM-like key longer than one 255-byte TXT string.
_DKIM = "v=DKIM1; k=rsa; p=" + "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA" * 8


def _demo_mirror(event: Any, context: Any) -> Any:
    """The mirror function of the demo, configured from the environment as the deployed one is."""
    return mirror_handler()(event, context)


BASE_RECORDS = [
    "@ 300 IN A 10.20.0.10",
    '@ 300 IN TXT "v=spf1 ip4:10.20.0.0/16 -all"',
    "@ 300 IN MX 10 mail",
    "mail 300 IN A 10.20.0.25",
    "www 300 IN CNAME web",
    "web 300 IN A 10.20.1.10",
    "web 300 IN A 10.20.1.11",
    "api 300 IN A 10.20.2.10",
    "vpn 300 IN A 10.20.3.1",
    "legacy 300 IN A 10.20.9.9",
    "_sip._tcp 300 IN SRV 10 60 5060 sip",
    "sip 300 IN A 10.20.4.5",
    "* 300 IN A 10.20.0.99",
    "lab 300 IN NS ns.lab",
    "ns.lab 300 IN A 10.30.0.53",
    'printer 300 IN HINFO "HP" "LaserJet"',
    # A zone file (like the wire) holds at most 255 bytes per string, so long keys come in pieces.
    "selector1._domainkey 300 IN TXT "
    + " ".join(f'"{_DKIM[i : i + 255]}"' for i in range(0, len(_DKIM), 255)),
] + [f"host{number:02d} 300 IN A 10.20.10.{number}" for number in range(1, 31)]


def master_records() -> list[str]:
    """The master today: two new hosts, api moved, legacy gone, vpn's TTL raised."""
    records = [line for line in BASE_RECORDS if not line.startswith(("legacy ", "api ", "vpn "))]
    return [
        *records,
        "api 300 IN A 10.20.2.20",
        "vpn 3600 IN A 10.20.3.1",
        "db 300 IN A 10.20.5.10",
        "cache 300 IN A 10.20.5.20",
    ]


def seed(ctx: SeedContext) -> list[str]:
    origin = DOMAIN + "."
    master = LocalMaster(zone_text(origin, SERIAL - 1, BASE_RECORDS), origin).start()
    ctx.facts["dns.master"] = master  # keeps it serving for the demo's lifetime (daemon thread)

    ec2 = client("ec2")
    vpc_id = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
    zone_id = (
        client("route53")
        .create_hosted_zone(
            Name=origin,
            CallerReference=f"opsbot-demo-{ctx.now.timestamp()}",
            HostedZoneConfig={
                "Comment": "opsbot demo: mirror of the on-premises corp zone",
                "PrivateZone": True,
            },
            VPC={"VPCRegion": ctx.settings.region, "VPCId": vpc_id},
        )["HostedZone"]["Id"]
        .rsplit("/", 1)[-1]
    )

    zone = ZoneConfig(domain=origin, master=master.address, zone_id=zone_id)
    # Yesterday's sync, by the real mirror, from yesterday's zone.
    mirror(zone, state=ctx.state, actor="schedule", now=ctx.now - timedelta(days=1))
    master.set_zone_text(zone_text(origin, SERIAL, master_records()))
    # Edits made in Route 53 by hand: an alias (left alone by the mirror) and a stray record.
    client("route53").change_resource_record_sets(
        HostedZoneId=zone_id,
        ChangeBatch={
            "Changes": [
                {
                    "Action": "CREATE",
                    "ResourceRecordSet": {
                        "Name": f"app.{origin}",
                        "Type": "A",
                        "AliasTarget": {
                            "HostedZoneId": "Z35SXDOTRQ7X7K",
                            "DNSName": "internal-app-123456.us-east-1.elb.amazonaws.com.",
                            "EvaluateTargetHealth": False,
                        },
                    },
                },
                {
                    "Action": "CREATE",
                    "ResourceRecordSet": {
                        "Name": f"temp.{origin}",
                        "Type": "TXT",
                        "TTL": 60,
                        "ResourceRecords": [{"Value": '"added by hand"'}],
                    },
                },
            ]
        },
    )
    os.environ["OPSBOT_DNS_ZONES"] = json.dumps(
        [{"domain": DOMAIN, "master": str(master.address), "zone_id": zone_id, "ignore_ttl": False}]
    )
    # As deployed: the Slack function sends /dns work to the mirror function, here run in this process.
    os.environ["OPSBOT_DNS_FUNCTION"] = DEMO_MIRROR_FUNCTION
    serve_locally(DEMO_MIRROR_FUNCTION, _demo_mirror)
    ctx.facts.update(
        {
            "dns.domain": DOMAIN,
            "dns.zone_id": zone_id,
            "dns.master_address": str(master.address),
            "dns.function": DEMO_MIRROR_FUNCTION,
        }
    )
    return [
        f"/dns: {DOMAIN} served by a local master at {master.address} (serial {SERIAL}); Route 53 zone "
        f"{zone_id} was mirrored from serial {SERIAL - 1} and edited by hand. Try",
        "  /dns status",
        f"  /dns plan {DOMAIN}",
        f"  /dns resync {DOMAIN}    (then click Apply)",
    ]
