"""The doctor's mail checks: mailing table, each identity's feedback topic, the topic's subscription."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from botocore.stub import Stubber

from bot.aws.clients import client
from bot.aws.mailing import create_mailing_table
from bot.aws.state import create_table
from bot.core.ops.checks import mail
from tests.ops.conftest import only, run_area, settings_with

TOPIC = "arn:aws:sns:us-east-1:123456789012:opsbot-ses-notifications"
OTHER = "arn:aws:sns:us-east-1:123456789012:someone-elses"


@pytest.fixture
def ses(aws: None) -> Iterator[Stubber]:
    """SES v1 identities and their notification attributes (moto does not keep the topics it is given)."""
    with Stubber(client("ses")) as stubber:
        yield stubber


def answer(stubber: Stubber, attributes: dict[str, dict[str, Any]]) -> None:
    names = list(attributes)
    stubber.add_response("list_identities", {"Identities": names})
    for start in range(0, len(names), 100):
        batch = names[start : start + 100]
        stubber.add_response(
            "get_identity_notification_attributes",
            {"NotificationAttributes": {n: {"ForwardingEnabled": False, **attributes[n]} for n in batch}},
            {"Identities": batch},
        )


def feedback(bounce: str = TOPIC, complaint: str = TOPIC) -> dict[str, Any]:
    # The service model marks the three topics required; an unset one comes back empty.
    return {"BounceTopic": bounce, "ComplaintTopic": complaint, "DeliveryTopic": ""}


def subscribed_topic(*, subscribe: bool = True) -> str:
    arn: str = client("sns").create_topic(Name="opsbot-ses-notifications")["TopicArn"]
    if subscribe:
        url = client("sqs").create_queue(QueueName="opsbot-feedback")["QueueUrl"]
        queue = client("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
        client("sns").subscribe(TopicArn=arn, Protocol="sqs", Endpoint=queue["Attributes"]["QueueArn"])
    return arn


def test_a_stack_wired_as_the_template_declares_is_all_ok(ses: Stubber) -> None:
    create_mailing_table("mailing")
    assert subscribed_topic() == TOPIC
    answer(ses, {"example.com": feedback(), "news@example.com": feedback()})
    findings = run_area(mail, settings_with(OPSBOT_MAIL_FEEDBACK_TOPIC=TOPIC))
    assert [f.status for f in findings] == ["ok", "ok", "ok"]
    assert "UserId (HASH)" in only(findings, "table").detail
    topic = only(findings, "feedback topic")
    assert topic.target == "SES identities" and "2 identities" in topic.detail
    assert "opsbot-feedback" in only(findings, "subscription").detail


def test_identities_sending_feedback_nowhere_or_elsewhere(ses: Stubber) -> None:
    create_mailing_table("mailing")
    subscribed_topic()
    answer(
        ses,
        {
            "example.com": feedback(),
            "lost@example.com": feedback(bounce="", complaint=""),
            "other@example.com": feedback(complaint=OTHER),
        },
    )
    findings = run_area(mail, settings_with(OPSBOT_MAIL_FEEDBACK_TOPIC=TOPIC))
    by_target = {f.target: f for f in findings if f.check == "feedback topic"}
    lost = by_target["lost@example.com"]
    assert (
        lost.status == "fail"
        and lost.detail == "bounces and complaints go to no topic instead of opsbot's topic"
    )
    assert lost.fix == (
        f"`aws ses set-identity-notification-topic --identity lost@example.com --notification-type Bounce "
        f"--sns-topic {TOPIC} && aws ses set-identity-notification-topic --identity lost@example.com "
        f"--notification-type Complaint --sns-topic {TOPIC}`"
    )
    other = by_target["other@example.com"]
    assert other.status == "warn" and OTHER in other.detail and "Bounce" not in other.fix
    assert "--notification-type Complaint --sns-topic " + TOPIC in other.fix
    summary = by_target["SES identities"]
    assert summary.status == "ok" and "1 identity" in summary.detail and "example.com" in summary.detail


def test_without_opsbots_topic_only_missing_topics_fail(ses: Stubber) -> None:
    """The CLI outside a stack: an identity with no topic still fails; one with some topic cannot be
    judged and is counted as ok, saying so; the subscription is skipped."""
    create_mailing_table("mailing")
    answer(
        ses, {"a@example.com": feedback(bounce=""), "b@example.com": feedback(bounce=OTHER, complaint=OTHER)}
    )
    findings = run_area(mail, settings_with())
    [failed] = [f for f in findings if f.status == "fail"]
    assert failed.target == "a@example.com"
    assert "--notification-type Bounce --sns-topic <opsbot-topic-arn>" in failed.fix
    assert "OPSBOT_MAIL_FEEDBACK_TOPIC" in failed.fix
    [summary] = [f for f in findings if f.target == "SES identities"]
    assert summary.status == "ok" and "not checked it is opsbot's" in summary.detail
    assert only(findings, "subscription").status == "skip"


def test_many_identities_are_read_in_batches_and_summarised(ses: Stubber) -> None:
    create_mailing_table("mailing")
    subscribed_topic()
    identities = {f"user{n:03}@example.com": feedback() for n in range(250)}
    identities["user007@example.com"] = feedback(complaint="")
    answer(ses, identities)  # three batches: 100, 100, 50 (the Stubber checks each request)
    findings = run_area(mail, settings_with(OPSBOT_MAIL_FEEDBACK_TOPIC=TOPIC))
    topics = [f for f in findings if f.check == "feedback topic"]
    assert [(f.target, f.status) for f in topics] == [
        ("user007@example.com", "fail"),
        ("SES identities", "ok"),
    ]
    assert "249 identities" in topics[1].detail and "and 246 more" in topics[1].detail
    ses.assert_no_pending_responses()


def test_no_identity_in_the_region_is_a_warning(ses: Stubber) -> None:
    create_mailing_table("mailing")
    answer(ses, {})
    finding = only(run_area(mail, settings_with()), "feedback topic")
    assert finding.status == "warn" and "no identity" in finding.detail


@pytest.mark.parametrize("subscribe", [False, True])
def test_the_topic_must_deliver_to_a_confirmed_queue(ses: Stubber, subscribe: bool) -> None:
    create_mailing_table("mailing")
    subscribed_topic(subscribe=False)
    if subscribe:  # an SQS subscription still waiting for its confirmation (another account's queue)
        sns = Stubber(client("sns"))
        sns.add_response(
            "list_subscriptions_by_topic",
            {
                "Subscriptions": [
                    {
                        "SubscriptionArn": "PendingConfirmation",
                        "Protocol": "sqs",
                        "Endpoint": "arn:aws:sqs:us-east-1:210987654321:q",
                        "TopicArn": TOPIC,
                        "Owner": "1",
                    }
                ]
            },
        )
        sns.activate()
    answer(ses, {"example.com": feedback()})
    finding = only(run_area(mail, settings_with(OPSBOT_MAIL_FEEDBACK_TOPIC=TOPIC)), "subscription")
    if subscribe:
        assert finding.status == "warn" and "pending confirmation" in finding.detail
    else:
        assert finding.status == "fail"
        assert (
            f"aws sns subscribe --topic-arn {TOPIC} --protocol sqs --notification-endpoint <queue-arn>"
            in finding.fix
        )


def test_a_topic_that_does_not_exist(ses: Stubber) -> None:
    create_mailing_table("mailing")
    answer(ses, {"example.com": feedback(bounce=TOPIC + "-gone", complaint=TOPIC + "-gone")})
    findings = run_area(mail, settings_with(OPSBOT_MAIL_FEEDBACK_TOPIC=TOPIC + "-gone"))
    finding = only(findings, "subscription")
    assert (
        finding.status == "fail"
        and "does not exist" in finding.detail
        and "MailFeedbackTopicArn" in finding.fix
    )


def test_the_mailing_table_missing_or_keyed_otherwise(ses: Stubber) -> None:
    create_table(
        "mailing",
        {
            "AttributeDefinitions": [{"AttributeName": "email", "AttributeType": "S"}],
            "KeySchema": [{"AttributeName": "email", "KeyType": "HASH"}],
            "BillingMode": "PAY_PER_REQUEST",
        },
    )
    answer(ses, {})
    answer(ses, {})
    wrong = only(run_area(mail, settings_with()), "table")
    assert wrong.status == "fail" and "email (HASH)" in wrong.detail and "UserId (HASH)" in wrong.detail
    missing = only(run_area(mail, settings_with(OPSBOT_MAILING_TABLE="nosuch")), "table")
    assert missing.status == "fail" and "no table nosuch" in missing.detail
    assert "MailingTableExists=false" in missing.fix


def test_denied_reads(ses: Stubber, deny: Callable[..., list[str]]) -> None:
    """A doctor's own read refused is a warning naming the permission; the capability's read of the
    table refused is a failure."""
    create_mailing_table("mailing")
    refused = deny("DescribeTable", "ListIdentities")
    findings = run_area(mail, settings_with())
    table = only(findings, "table")
    assert table.status == "warn" and "dynamodb:DescribeTable" in table.fix  # GetItem still works
    identities = only(findings, "feedback topic")
    assert identities.status == "warn" and "ses:ListIdentities" in identities.detail
    assert set(refused) == {"DescribeTable", "ListIdentities"}
    deny("DescribeTable", "GetItem", "ListIdentities")
    table = only(run_area(mail, settings_with()), "table")
    assert table.status == "fail" and "dynamodb:GetItem" in table.detail
