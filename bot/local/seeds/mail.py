"""Demo SES feedback: deliveries, bounces and complaints sent through the real feedback handler.

The handler posts its alerts to the demo's local Slack (``OPSBOT_ALERT_CHANNEL``), so the alert channel
shows disabled addresses with working buttons, and ``/mail status`` and ``/mail stats`` have data.
"""

from __future__ import annotations

import os
from typing import Any

from bot.aws.clients import client
from bot.aws.mailing import create_mailing_table
from bot.intake.ses_feedback import SesFeedbackApp
from bot.local import mail_samples
from bot.local.seeds import SeedContext

BOUNCED = "jane.doe@example.com"
COMPLAINED = "angry.reader@example.net"
HEALTHY = "happy.reader@example.com"
FULL = "full.mailbox@example.org"
UNSURE = "maybe@example.org"
NEWSLETTER = "Example News <news@example.org>"
BILLING = "billing@example.org"
WIRED_IDENTITY = "example.org"
UNWIRED_IDENTITY = "billing.example.org"  # no bounce topic: what /ops doctor fails on


def feedback(now_ms: int) -> list[dict[str, Any]]:
    """A day of feedback, oldest first; the last notification is a duplicate SNS delivered again."""
    hour = 3_600_000
    start = now_ms - 24 * hour
    regulars = [f"reader{n:02d}@example.com" for n in range(1, 31)]
    messages: list[dict[str, Any]] = [
        mail_samples.delivery([*regulars, HEALTHY, COMPLAINED, BOUNCED], start, source=NEWSLETTER),
        mail_samples.delivery([FULL, UNSURE], start + hour, source=BILLING),
        mail_samples.bounce(
            [FULL], start + 2 * hour, bounce_type="Transient", subtype="MailboxFull", source=BILLING
        ),
        mail_samples.bounce([BOUNCED], start + 3 * hour, subtype="General", source=NEWSLETTER),
        mail_samples.complaint([COMPLAINED], start + 4 * hour, source=NEWSLETTER),
        mail_samples.bounce(
            [UNSURE], start + 5 * hour, bounce_type="Undetermined", subtype="Undetermined", source=BILLING
        ),
        # The complainer's later delivery does not re-enable them: complaints are sticky.
        mail_samples.delivery([*regulars, HEALTHY, COMPLAINED], start + 20 * hour, source=NEWSLETTER),
        mail_samples.bounce(
            ["nobody@example.invalid"],
            start + 21 * hour,
            subtype="NoEmail",
            source=NEWSLETTER,
            event_publishing=True,
        ),
    ]
    return [*messages, messages[3]]


def wire_ses(ctx: SeedContext) -> str:
    """SES as the stack wires it: opsbot's feedback topic with its queue subscribed, and the sending
    identity example.org notifying that topic. billing.example.org was verified later and never wired:
    its bounces reach no topic, which `/ops doctor` reports with the command that fixes it."""
    sns, sqs, ses = client("sns"), client("sqs"), client("ses")
    topic = sns.create_topic(Name="opsbot-ses-feedback")["TopicArn"]
    queue_url = sqs.create_queue(QueueName="opsbot-ses-feedback")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    for identity in (WIRED_IDENTITY, UNWIRED_IDENTITY):
        ses.verify_domain_identity(Domain=identity)
    for kind in ("Bounce", "Complaint"):
        ses.set_identity_notification_topic(Identity=WIRED_IDENTITY, NotificationType=kind, SnsTopic=topic)
    # The demo builds its Settings after seeding: the doctor compares identities against this topic.
    os.environ.setdefault("OPSBOT_MAIL_FEEDBACK_TOPIC", topic)
    return topic


def seed(ctx: SeedContext) -> list[str]:
    settings = ctx.settings
    wire_ses(ctx)
    create_mailing_table(settings.mailing_table)
    app = SesFeedbackApp(settings)
    now_ms = int(ctx.now.timestamp() * 1000)
    disabled: list[str] = []
    for message in feedback(now_ms):
        # As the queue hands them over when feedback trickles in: one notification at a time.
        report = app.handle(mail_samples.sqs_event([message]))
        disabled.extend(report.disabled)
    ctx.facts.update(
        {
            "mail.bounced": BOUNCED,
            "mail.complained": COMPLAINED,
            "mail.healthy": HEALTHY,
            "mail.disabled": disabled,
        }
    )
    where = f"alerts in {settings.alert_channel}" if settings.alert_channel else "no alert channel set"
    return [
        f"/mail: {len(disabled)} addresses disabled by SES feedback sent through the real handler ({where});",
        f"  try /mail status {BOUNCED}    /mail status {COMPLAINED}    /mail stats    /mail list --state disable",
    ]
