"""SES feedback handler throughput against moto: wall time and DynamoDB calls per notification.

Feeds N SES notifications (deliveries, bounces of every type, complaints; 1-3 recipients; 10 % of them
delivered twice, all shuffled) through ``SesFeedbackApp`` the way SNS invokes it (one record per
invocation, or ``--batch`` records), against moto's in-process DynamoDB. The baseline, measured in the
same run on the same stream, is the seed post's handler: one unconditional PutItem per recipient, nothing
read, no ordering, no duplicate detection. Alerts are not posted (no channel), so only the table work is
measured. moto's per-call cost is far above DynamoDB's, so calls per notification is the portable figure.

    .venv/bin/python bench/mail_bench.py [--notifications 10000] [--batch 1] [--quick]
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import time
from collections import Counter
from typing import Any

ADDRESSES = 2000
T0 = 1_714_550_400_000
HOUR = 3_600_000


def stream(rng: random.Random, count: int) -> list[dict[str, Any]]:
    from bot.local import mail_samples

    addresses = [f"user{n:05d}@example.com" for n in range(ADDRESSES)]
    distinct = count - count // 10
    messages: list[dict[str, Any]] = []
    for n in range(distinct):
        at = T0 + rng.randrange(0, 30 * 24) * HOUR + rng.randrange(0, 3600) * 1000
        recipients = rng.sample(addresses, rng.choice([1, 1, 1, 1, 2, 3]))
        roll = rng.random()
        if roll < 0.70:
            messages.append(mail_samples.delivery(recipients, at, seed=f"n{n}"))
        elif roll < 0.80:
            messages.append(mail_samples.bounce(recipients, at, seed=f"n{n}"))
        elif roll < 0.95:
            messages.append(
                mail_samples.bounce(
                    recipients, at, bounce_type="Transient", subtype="MailboxFull", seed=f"n{n}"
                )
            )
        elif roll < 0.97:
            messages.append(
                mail_samples.bounce(
                    recipients, at, bounce_type="Undetermined", subtype="Undetermined", seed=f"n{n}"
                )
            )
        else:
            messages.append(mail_samples.complaint(recipients, at, seed=f"n{n}"))
    messages += rng.sample(messages, count - distinct)
    rng.shuffle(messages)
    return messages


def original_handler(table: str, event: dict[str, Any]) -> None:
    """The seed post's Node.js handler in Python (every record, to compare like with like)."""
    import json

    from bot.aws.clients import client

    ddb = client("dynamodb")
    for record in event["Records"]:
        message = json.loads(record["Sns"]["Message"])
        kind = message["notificationType"]
        if kind == "Bounce":
            addresses = [r["emailAddress"] for r in message["bounce"]["bouncedRecipients"]]
            state = "disable"
        elif kind == "Complaint":
            addresses = [r["emailAddress"] for r in message["complaint"]["complainedRecipients"]]
            state = "disable"
        else:
            addresses = message["delivery"]["recipients"]
            state = "enable"
        for address in addresses:
            ddb.put_item(
                TableName=table,
                Item={
                    "UserId": {"S": address},
                    "notificationType": {"S": kind},
                    "from": {"S": message["mail"]["source"]},
                    "timestamp": {"S": message["mail"]["timestamp"]},
                    "state": {"S": state},
                },
            )


def expected_states(messages: list[dict[str, Any]], settings: Any) -> dict[str, str]:
    """Each address's state by the rules, the events folded in event-time order, in memory."""
    from bot.core.mail import mail_config
    from bot.core.mail_feedback import parse_notification
    from bot.core.mail_state import AddressRecord, derive, merge

    rules = mail_config(settings).rules
    events = sorted(
        (event for message in messages for event in parse_notification(message).events),
        key=lambda e: e.at_ms,
    )
    records: dict[str, AddressRecord] = {}
    for event in events:
        records[event.address] = merge(records.get(event.address), event, rules)
    return {address: derive(record, rules).state for address, record in records.items()}


class CallCounter:
    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()

    def __call__(self, model: Any, **_: Any) -> None:
        self.calls[model.name] += 1


def run(label: str, events: list[dict[str, Any]], handle: Any, notifications: int) -> dict[str, Any]:
    from bot.aws.clients import client

    counter = CallCounter()
    ddb = client("dynamodb")
    ddb.meta.events.register("before-call.dynamodb", counter)
    started = time.perf_counter()
    for event in events:
        handle(event)
    elapsed = time.perf_counter() - started
    ddb.meta.events.unregister("before-call.dynamodb", counter)
    total = sum(counter.calls.values())
    print(
        f"{label:<10} {elapsed:8.1f} s  {notifications / elapsed:7.0f} notifications/s  "
        f"{total / notifications:5.2f} DynamoDB calls/notification  ({dict(sorted(counter.calls.items()))})"
    )
    return {"seconds": elapsed, "calls": total}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--notifications", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=1, help="SNS records per invocation (SNS sends 1)")
    parser.add_argument("--quick", action="store_true", help="1,000 notifications")
    args = parser.parse_args()
    count = 1000 if args.quick else args.notifications
    for key, value in {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_REGION": "us-east-1",
                       "AWS_DEFAULT_REGION": "us-east-1"}.items():  # fmt: skip
        os.environ[key] = value
    os.environ.pop("AWS_ENDPOINT_URL", None)
    logging.disable(logging.WARNING)

    from moto import mock_aws

    from bot.aws import clients
    from bot.aws.dynamo import scan_all
    from bot.aws.mailing import create_mailing_table
    from bot.aws.state import create_state_table
    from bot.config import Settings
    from bot.local import mail_samples
    from bot.mail_feedback_app import SesFeedbackApp

    messages = stream(random.Random(7), count)
    events = [
        mail_samples.sns_event(messages[i : i + args.batch]) for i in range(0, len(messages), args.batch)
    ]
    recipients = sum(
        len(m.get("delivery", {}).get("recipients", []))
        + len(m.get("bounce", {}).get("bouncedRecipients", []))
        + len(m.get("complaint", {}).get("complainedRecipients", []))
        for m in messages
    )
    print(
        f"{count:,} notifications ({recipients:,} recipient events, {count // 10:,} duplicates, shuffled), "
        f"{len(events):,} invocations of {args.batch} record(s), {ADDRESSES:,} addresses, moto in-process"
    )
    with mock_aws():
        clients.clear_caches()
        create_mailing_table("mailing-original")
        create_mailing_table("mailing")
        create_state_table("opsbot-state")
        baseline = run("original", events, lambda e: original_handler("mailing-original", e), count)
        settings = Settings.from_env({"AWS_REGION": "us-east-1"})
        ours = run("opsbot", events, SesFeedbackApp(settings).handle, count)
        expected = expected_states(messages, settings)
        wrong = {
            name: sum(1 for item in scan_all(table) if item["state"] != expected[item["UserId"]])
            for name, table in (("original", "mailing-original"), ("opsbot", "mailing"))
        }
    print(
        f"opsbot / original: {ours['seconds'] / baseline['seconds']:.2f}x the time, "
        f"{ours['calls'] / baseline['calls']:.2f}x the DynamoDB calls "
        "(for reading before writing, the conditional write, and the daily counters)"
    )
    print(
        f"addresses left in the wrong state (vs the rules applied in event-time order): "
        f"original {wrong['original']:,} of {len(expected):,}, opsbot {wrong['opsbot']:,}"
    )


if __name__ == "__main__":
    main()
