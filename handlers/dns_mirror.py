"""EventBridge schedule (one per zone) -> transfer, plan and apply into Route 53 (see bot.core.dns.commands).

Accepts the original aws-lambda-mirror-dns-function event unchanged
(``{"Domain", "MasterDns", "ZoneId", "IgnoreTTL", "ZoneSerial"}``) and our own ``{"domain": "..."}``;
``{"opsbot_dns": {...}}`` is /dns work sent by the Slack function (bot.core.dns.worker).
"""

from __future__ import annotations

from bot.core.dns.commands import mirror_handler
from bot.observability import lambda_entry

handler = lambda_entry(mirror_handler(), "dns-mirror")
