"""SES feedback handler throughput against moto: wall time and DynamoDB calls per notification.

Feeds N SES notifications (deliveries, bounces of every type, complaints; 1-3 recipients; 10 % of them
delivered twice, all shuffled over 30 days) through ``SesFeedbackApp`` against moto's in-process DynamoDB,
twice: as deployed (SNS -> SQS -> Lambda: SQS events of ``--batch`` records, 10 by default, as the event
source delivers them under load) and with one SNS record per invocation (the function subscribed to the
topic directly, or a trickle of feedback). The baseline, measured in the same run on the same SQS events,
is the seed post's handler: one unconditional PutItem per recipient, nothing read, no ordering, no
duplicate detection (it is given every record, not only the first). Alerts are not posted (no channel),
so only the table work is measured. moto's per-call cost is far above DynamoDB's, so calls per
notification is the portable figure. Last, each table is compared with the issue's rules applied one
event at a time in event-time order (``rules_in_time_order``, which does not use opsbot's merge).

    .venv/bin/python bench/mail_bench.py [--notifications 10000] [--batch 10] [--quick]
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import sys
import time
from collections import Counter
from typing import Any

ADDRESSES = 2000
T0 = 1_714_550_400_000
HOUR = 3_600_000


def stream(rng: random.Random, count: int) -> list[dict[str, Any]]:
    """Notifications over 30 days in the order they arrive: SES's feedback comes minutes after the event
    (here ten on average), now and then a day late (retries, a redriven dead-letter queue), and 10 % of it
    a second time within the hour (SNS delivers at least once)."""
    from bot.local import mail_samples

    addresses = [f"user{n:05d}@example.com" for n in range(ADDRESSES)]
    distinct = count - count // 10
    arrivals: list[tuple[float, dict[str, Any]]] = []
    for n in range(distinct):
        at = T0 + rng.randrange(0, 30 * 24) * HOUR + rng.randrange(0, 3600) * 1000
        recipients = rng.sample(addresses, rng.choice([1, 1, 1, 1, 2, 3]))
        roll = rng.random()
        if roll < 0.70:
            message = mail_samples.delivery(recipients, at, seed=f"n{n}")
        elif roll < 0.80:
            message = mail_samples.bounce(recipients, at, seed=f"n{n}")
        elif roll < 0.95:
            message = mail_samples.bounce(
                recipients, at, bounce_type="Transient", subtype="MailboxFull", seed=f"n{n}"
            )
        elif roll < 0.97:
            message = mail_samples.bounce(
                recipients, at, bounce_type="Undetermined", subtype="Undetermined", seed=f"n{n}"
            )
        else:
            message = mail_samples.complaint(recipients, at, seed=f"n{n}")
        delay = rng.expovariate(1 / (10 * 60_000)) + (rng.uniform(0, 24 * HOUR) if rng.random() < 0.05 else 0)
        arrivals.append((at + delay, message))
    arrivals += [
        (arrival + rng.uniform(0, HOUR), message)
        for arrival, message in rng.sample(arrivals, count - distinct)
    ]
    return [message for _, message in sorted(arrivals, key=lambda pair: pair[0])]


def original_handler(table: str, event: dict[str, Any]) -> None:
    """The seed post's Node.js handler in Python (every record, to compare like with like)."""
    import json

    from bot.aws.clients import client

    ddb = client("dynamodb")
    for record in event["Records"]:
        envelope = json.loads(record["body"]) if "body" in record else record["Sns"]
        message = json.loads(envelope["Message"])
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
    """Each address's state by the issue's rules, its events taken one at a time in event-time order."""
    from bot.core.mail.commands import mail_config
    from bot.core.mail.feedback import RecipientEvent, parse_notification
    from bot.local.mail_samples import rules_in_time_order

    rules = mail_config(settings).rules
    by_address: dict[str, list[RecipientEvent]] = {}
    for message in messages:
        for event in parse_notification(message).events:
            by_address.setdefault(event.address, []).append(event)
    return {address: rules_in_time_order(events, rules)[0] for address, events in by_address.items()}


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
    per = ", ".join(f"{n / notifications:.2f} {name}" for name, n in sorted(counter.calls.items()))
    print(
        f"{label:<24} {elapsed:7.1f} s {notifications / elapsed:6.0f} notifications/s "
        f"{total / notifications:5.2f} DynamoDB calls/notification ({per})"
    )
    return {"seconds": elapsed, "calls": total}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--notifications", type=int, default=10_000)
    parser.add_argument(
        "--batch", type=int, default=10, help="records per SQS event (the event source's up to 10)"
    )
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
    from bot.intake.ses_feedback import SesFeedbackApp
    from bot.local import mail_samples

    messages = stream(random.Random(7), count)
    batched = [
        mail_samples.sqs_event(messages[i : i + args.batch]) for i in range(0, len(messages), args.batch)
    ]
    singles = [mail_samples.sns_event([message]) for message in messages]
    recipients = sum(
        len(m.get("delivery", {}).get("recipients", []))
        + len(m.get("bounce", {}).get("bouncedRecipients", []))
        + len(m.get("complaint", {}).get("complainedRecipients", []))
        for m in messages
    )
    print(
        f"{count:,} notifications ({recipients:,} recipient events, {count // 10:,} duplicates, out of order), "
        f"{ADDRESSES:,} addresses, moto in-process; SQS events of {args.batch} records "
        f"({len(batched):,} invocations) or one SNS record per invocation"
    )
    tables = {"original": "mailing-original", "opsbot, SQS": "mailing-sqs", "opsbot, SNS": "mailing-sns"}
    with mock_aws():
        clients.clear_caches()
        for table in tables.values():
            create_mailing_table(table)
        create_state_table("state-sqs")
        create_state_table("state-sns")

        def app(name: str) -> Any:
            env = {"AWS_REGION": "us-east-1", "OPSBOT_MAILING_TABLE": tables[name]}
            return SesFeedbackApp(
                Settings.from_env({**env, "OPSBOT_STATE_TABLE": f"state-{name[-3:].lower()}"})
            )

        baseline = run("original", batched, lambda e: original_handler(tables["original"], e), count)
        ours = run(f"opsbot, SQS x{args.batch}", batched, app("opsbot, SQS"), count)
        single = run("opsbot, SNS x1", singles, app("opsbot, SNS"), count)
        expected = expected_states(messages, Settings.from_env({}))
        wrong = {
            name: sum(1 for item in scan_all(table) if item["state"] != expected[item["UserId"]])
            for name, table in tables.items()
        }
    for label, result in ((f"SQS x{args.batch}", ours), ("SNS x1", single)):
        print(
            f"opsbot ({label}) / original: {result['seconds'] / baseline['seconds']:.2f}x the time, "
            f"{result['calls'] / baseline['calls']:.2f}x the DynamoDB calls"
        )
    print(
        f"addresses left in the wrong state (vs the rules applied one event at a time in event-time order, "
        f"of {len(expected):,}): " + ", ".join(f"{name} {n:,}" for name, n in wrong.items())
    )
    misses: list[str] = [f"{name}: {wrong[name]:,} addresses in the wrong state (target 0)" for name in tables
              if name != "original" and wrong[name]]  # fmt: skip
    # The order-independent merge reads before it writes; the original writes blindly. At most 1.25x its calls.
    ratio = ours["calls"] / baseline["calls"]
    if ratio > 1.25:
        misses.append(f"{ratio:.2f}x the original's DynamoDB calls (target <= 1.25x)")
    for miss in misses:
        print(f"TARGET MISSED: {miss}")
    return 1 if misses else 0


if __name__ == "__main__":
    sys.exit(main())
