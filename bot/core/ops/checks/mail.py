"""Mail wiring: the mailing table, where each SES identity sends its bounces and complaints, and the
subscription that carries them from opsbot's topic to its queue.

opsbot's topic is ``OPSBOT_MAIL_FEEDBACK_TOPIC`` (the stack sets it; a terminal outside a stack usually
lacks it). Without it an identity that sends its feedback to no topic is still a failure (no feedback
can arrive anywhere), but one that sends it to some topic cannot be told apart from one that sends it to
ours.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from bot.aws import wiring
from bot.aws.wiring import TableKeys
from bot.core.ops.checks.tables import table_finding
from bot.core.ops.commands import DoctorContext
from bot.core.ops.doctor import Finding, Probe, Status

AREA = "mail"
TOPIC_ENV = "OPSBOT_MAIL_FEEDBACK_TOPIC"
TOPIC_PLACEHOLDER = "<opsbot-topic-arn>"
MAILING_KEYS = TableKeys("UserId")
NOTIFICATION_TYPES = (("Bounce", "BounceTopic"), ("Complaint", "ComplaintTopic"))
IDENTITIES = "SES identities"
SUBSCRIPTION = "topic to queue"


def feedback_topic(context: DoctorContext) -> str:
    return context.settings.extra.get(TOPIC_ENV, "").strip()


def set_topic_command(identity: str, kind: str, topic: str) -> str:
    return (
        f"aws ses set-identity-notification-topic --identity {identity} --notification-type {kind} "
        f"--sns-topic {topic or TOPIC_PLACEHOLDER}"
    )


def identity_finding(identity: str, attributes: Mapping[str, Any], ours: str) -> Finding:
    """Where one identity's bounces and complaints go, judged against opsbot's topic ("" = not known).
    Pure."""
    wrong: list[tuple[str, Status, str]] = []  # (notification type, verdict, where it goes)
    for kind, key in NOTIFICATION_TYPES:
        topic = str(attributes.get(key) or "")
        if not topic:
            wrong.append((kind, "fail", "no topic"))
        elif ours and topic != ours:
            wrong.append((kind, "warn", topic))
    if not wrong:
        where = "opsbot's topic" if ours else "an SNS topic"
        return Finding(AREA, "feedback topic", identity, "ok", f"bounces and complaints go to {where}")
    status: Status = "fail" if any(verdict == "fail" for _, verdict, _ in wrong) else "warn"
    places = {where for _, _, where in wrong}
    if len(wrong) == 2 and len(places) == 1:
        detail = f"bounces and complaints go to {wrong[0][2]}"
    else:
        detail = ", ".join(f"{kind.lower()}s go to {where}" for kind, _, where in wrong)
    detail += " instead of opsbot's topic" if ours else ": opsbot never hears of them"
    fix = "`" + " && ".join(set_topic_command(identity, kind, ours) for kind, _, _ in wrong) + "`"
    if not ours:
        fix += f" (opsbot's topic ARN is the stack output MailFeedbackTopicArn; set {TOPIC_ENV} to check it here)"
    return Finding(AREA, "feedback topic", identity, status, detail, fix)


def identity_findings(notifications: Mapping[str, Mapping[str, Any]], ours: str) -> list[Finding]:
    """One finding per identity that is not in order, one ok finding for all the others (a Slack answer
    for an account with hundreds of identities stays short). Pure."""
    judged = [identity_finding(identity, notifications[identity], ours) for identity in sorted(notifications)]
    findings = [f for f in judged if f.status != "ok"]
    good = [f.target for f in judged if f.status == "ok"]
    if good:
        where = (
            "opsbot's topic" if ours else f"an SNS topic ({TOPIC_ENV} not set: not checked it is opsbot's)"
        )
        shown = ", ".join(good[:3]) + (f" and {len(good) - 3} more" if len(good) > 3 else "")
        count = f"{len(good)} identit{'y' if len(good) == 1 else 'ies'}"
        findings.append(
            Finding(
                AREA,
                "feedback topic",
                IDENTITIES,
                "ok",
                f"{count} send{'s' if len(good) == 1 else ''} bounces and complaints to {where}: {shown}",
            )
        )
    return findings


def _identities(ours: str) -> list[Finding]:
    identities = wiring.ses_identities()
    if not identities:
        return [
            Finding(
                AREA,
                "feedback topic",
                IDENTITIES,
                "warn",
                "SES has no identity in this region: no mail is sent, so no feedback can arrive",
                "Check the region (the doctor's --region), or verify the sending domain in the SES console "
                "(Amazon SES > Configuration > Identities).",
            )
        ]
    notifications = wiring.identity_notifications(identities)
    # An identity listed but not answered for (deleted in between) has nothing to report.
    return identity_findings({i: notifications[i] for i in identities if i in notifications}, ours)


def subscription_finding(topic: str, subscriptions: Sequence[Mapping[str, Any]] | None) -> Finding:
    """Whether opsbot's topic delivers to an SQS queue (the feedback function's). Pure."""
    subscribe = (
        f"Redeploy the stack (it subscribes its queue), or `aws sns subscribe --topic-arn {topic} "
        "--protocol sqs --notification-endpoint <queue-arn>` with the stack's SesFeedbackQueue ARN."
    )
    if subscriptions is None:
        return Finding(
            AREA,
            "subscription",
            topic,
            "fail",
            "the topic does not exist",
            f"Set the template parameter MailFeedbackTopicArn to an existing topic (or leave it empty to "
            f"create one) and redeploy; {TOPIC_ENV} must name the same topic.",
        )
    queues = [s for s in subscriptions if str(s.get("Protocol", "")).lower() == "sqs"]
    confirmed = [s for s in queues if str(s.get("SubscriptionArn", "")).startswith("arn:")]
    if confirmed:
        endpoints = ", ".join(str(s.get("Endpoint", "")) for s in confirmed)
        return Finding(AREA, "subscription", topic, "ok", f"delivers to the queue {endpoints}")
    if queues:
        return Finding(
            AREA,
            "subscription",
            topic,
            "warn",
            f"the subscription of {queues[0].get('Endpoint', 'the queue')} is pending confirmation",
            "Redeploy the stack, or delete the subscription and subscribe the queue again "
            "(an SQS subscription in the same account is confirmed at once).",
        )
    return Finding(
        AREA, "subscription", topic, "fail", "no SQS queue is subscribed: feedback goes nowhere", subscribe
    )


def _subscription(topic: str) -> list[Finding]:
    return [subscription_finding(topic, wiring.topic_subscriptions(topic))]


def _identities_probe(context: DoctorContext, ours: str) -> Probe:
    if context.member is None:
        return Probe(AREA, "feedback topic", IDENTITIES, lambda: _identities(ours))
    # A member account's SES feedback goes to the stack deployed there (docs/accounts.md): its wiring is
    # that stack's doctor's to check, and no command reads it (the member role may not list identities).
    skip = Finding(
        AREA,
        "feedback topic",
        IDENTITIES,
        "skip",
        f"SES feedback in account `{context.member.label}` goes to the opsbot stack deployed there: its "
        "doctor checks where the identities send it",
        f"Run `opsbot doctor --only mail` there (that account's credentials, its stack's {TOPIC_ENV}).",
    )
    return Probe(AREA, "feedback topic", IDENTITIES, lambda: [skip])


def probes(context: DoctorContext) -> list[Probe]:
    settings = context.settings
    ours = feedback_topic(context)
    table = settings.mailing_table
    found = [
        Probe(
            AREA,
            "table",
            f"mailing table {table}",
            lambda: [
                table_finding(
                    AREA,
                    "mailing table",
                    table,
                    MAILING_KEYS,
                    missing_fix="Redeploy with the template parameter MailingTableExists=false (the stack creates "
                    "it), or set MailingTableName (OPSBOT_MAILING_TABLE) to the existing table.",
                    setting="OPSBOT_MAILING_TABLE (template parameter MailingTableName)",
                )
            ],
        ),
        _identities_probe(context, ours),
    ]
    # opsbot's own topic and queue: in its own account, wherever the doctor is aimed.
    if ours:
        found.append(Probe(AREA, "subscription", ours, lambda: _subscription(ours), own=True))
    else:
        found.append(
            Probe(
                AREA,
                "subscription",
                "opsbot's feedback topic",
                lambda: [
                    Finding(
                        AREA,
                        "subscription",
                        "opsbot's feedback topic",
                        "skip",
                        f"{TOPIC_ENV} is not set here, so opsbot's topic is not known",
                        f"Set {TOPIC_ENV} to the stack output MailFeedbackTopicArn.",
                    )
                ],
                own=True,
            )
        )
    return found
