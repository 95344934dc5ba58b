"""Tail by request: how long after a request's first line does a polling tail hold all of its lines?

The figure behind ``GRACE_MS`` (bot/core/apilogs/tail_requests.py). The demo stage (7 log groups) gets
live traffic (a request every 0.3-0.8 s, some failing, the authorizer on GET /orders) in moto; each
request's Lambda lines are written ``--lambda-lag`` seconds after its API Gateway lines (Lambda hands its
lines to CloudWatch after the invocation; API Gateway as it goes), and the real ``Tail`` polls at the
production pace (2.5 FilterLogEvents calls a second). For every request the folder completes, the time
from its first line seen to complete is recorded. Exit 1 when the worst exceeds GRACE_MS.

    .venv/bin/python bench/tail_grace.py [--seconds 40] [--lambda-lag 3]
"""

from __future__ import annotations

import argparse
import os
import random
import threading
import time
from datetime import UTC, datetime

os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")


def main() -> int:
    from moto import mock_aws

    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=40.0)
    parser.add_argument("--lambda-lag", type=float, default=3.0)
    args = parser.parse_args()
    with mock_aws():
        from bot.aws.clients import client
        from bot.core.apilogs import discovery as disc
        from bot.core.apilogs.tail import Tail
        from bot.core.apilogs.tail_requests import GRACE_MS, RequestFolder
        from bot.local.apilogs_traffic import write_events
        from bot.local.seeds import apilogs as seed_module

        api_id, account = seed_module.create_api("us-east-1")
        demo = seed_module.generate(api_id, account, datetime.now(UTC), count=5)
        write_events(client("logs"), (e for r in demo.requests for e in r.events))
        found = disc.discover(disc.resolve_stage(api_id, "prod", region="us-east-1"))
        api_groups = set(found.api_groups)
        assert demo.traffic is not None
        traffic, rng = demo.traffic, random.Random(5)
        stop = threading.Event()
        lock = threading.Lock()

        def writer() -> None:
            routes = list(seed_module.ROUTES)
            while not stop.wait(rng.uniform(0.3, 0.8)):
                with lock:
                    at = max(int(time.time() * 1000) - 500, traffic.last_end + 1)
                    route = rng.choice(routes)
                    request = traffic.request(
                        at, route, fail=rng.random() < 0.15, use_authorizer=route == "GET /orders"
                    )
                write_events(client("logs"), [e for e in request.events if e.group in api_groups])
                late = [e for e in request.events if e.group not in api_groups]
                threading.Timer(args.lambda_lag, write_events, args=(client("logs"), late)).start()

        tail = Tail(list(found.all_groups), start_ms=int(time.time() * 1000), mode="poll")
        folder = RequestFolder.for_discovery(found, grace_ms=10**9)  # never give up: measure
        thread = threading.Thread(target=writer, daemon=True)
        thread.start()
        began = time.monotonic()
        waits: list[int] = []
        batches = tail.batches()
        for batch in batches:
            now = int(time.monotonic() * 1000)
            folder.add(batch.events, now)
            for entry in folder.ready(now):
                if entry.kind == "request":
                    waits.append(now - entry.opened_ms)
            if time.monotonic() - began > args.seconds:
                break
        batches.close()
        stop.set()
        waits.sort()
        if not waits:
            print("TARGET MISSED: no request completed")
            return 1
        p50, p95, worst = waits[len(waits) // 2], waits[int(len(waits) * 0.95)], waits[-1]
        rounds = tail.summary.stats.calls.get("FilterLogEvents", 0)
        print(
            f"{len(waits)} requests over {args.seconds:.0f} s, {len(found.all_groups)} groups, "
            f"{rounds} FilterLogEvents calls, Lambda lines {args.lambda_lag:.1f} s after API Gateway's"
        )
        print(
            f"first line seen -> complete: p50 {p50} ms, p95 {p95} ms, worst {worst} ms; GRACE_MS {GRACE_MS}"
        )
        if worst > GRACE_MS:
            print("TARGET MISSED: a request needed longer than the grace period (GRACE_MS)")
            return 1
        print("OK")
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
