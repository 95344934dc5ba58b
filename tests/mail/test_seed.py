"""The demo seed feeds SES feedback through the real handler: alerts in the channel, data for /mail."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from bot.aws.state import StateTable
from bot.config import Settings
from bot.core.mail import commands as mail
from bot.local.seeds import SeedContext
from bot.local.seeds import mail as mail_seed
from bot.local.slack_api import LocalSlack
from tests.mail.conftest import ALERTS


def test_seed_leaves_alerts_with_buttons_and_status_data(
    state_table: str, mail_settings: Settings, slack_server: LocalSlack
) -> None:
    ctx = SeedContext(mail_settings, StateTable(state_table), datetime.now(UTC), slack=slack_server)
    banner = mail_seed.seed(ctx)
    assert any("/mail status jane.doe@example.com" in line and "/mail stats" in line for line in banner)
    assert sorted(ctx.facts["mail.disabled"]) == sorted(
        ["jane.doe@example.com", "angry.reader@example.net", "nobody@example.invalid"]
    )
    alerts = slack_server.visible(ALERTS)
    texts = [m.text for m in alerts]
    assert any(t.startswith("Disabled: jane.doe@example.com") for t in texts)
    assert any(t.startswith("Complaint, disabled: angry.reader@example.net") for t in texts)
    assert any(t.startswith("Needs review: maybe@example.org") for t in texts)
    action_ids = {
        e["action_id"] for m in alerts for b in m.blocks if b["type"] == "actions" for e in b["elements"]
    }
    assert action_ids == {"mail:reenable", "mail:suppress", "mail:history"}
    # Sticky against the later delivery:
    assert mail.status(mail_seed.COMPLAINED, mail_settings).state == "disable"
    assert mail.status(mail_seed.HEALTHY, mail_settings).state == "enable"
    assert mail.status(mail_seed.FULL, mail_settings).transient_count == 1
    stats = mail.stats(mail_settings, "3d")
    # 33 + 2 + 32 deliveries; the bounce delivered twice by SNS is counted once.
    assert (stats.deliveries, stats.permanent_bounces, stats.complaints) == (67, 2, 1)
    assert json.dumps(stats.to_json())
