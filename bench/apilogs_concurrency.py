"""Benchmark: the account's FilterLogEvents rate with four lookups and a tail, each in its own container.

On Lambda every Slack command runs in a container of its own, so the per-process limiter of each one
(bot/aws/logs.py ``Limiter``) cannot keep the account within CloudWatch's 5 FilterLogEvents a second.
This bench starts a moto server on 127.0.0.1 (with the demo API's hour of logs, bot/local/seeds) and five
worker processes, one per "container": four run ``/apilogs <request id>`` lookups of different requests
and one runs a polling ``/apilogs tail``; all begin at the same moment. moto's FilterLogEvents handler
records the arrival time of every call, server side, across all of them. Two runs:

- baseline: each process with today's per-process limiter only (what the CLI does, and what the Slack
  function did before);
- shared: each process as the Slack function now runs (``share_budget`` on the state table).

Figures: the most FilterLogEvents calls in any 1-second sliding window, per run; each lookup's
completion time and recall (its events against the generated ground truth, as in apilogs_bench); the
DynamoDB requests the shared budget cost. Targets (exit 1 when missed): shared run <= 5 in every
1-second window, every lookup complete (recall 100 %); the baseline is expected to exceed 5.

Run: ``.venv/bin/python bench/apilogs_concurrency.py`` (``--tail-seconds`` to change the tail's span).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bot.aws.clients import client  # noqa: E402
from bot.config import Settings  # noqa: E402
from bot.local.apilogs_traffic import SimRequest, write_events  # noqa: E402

QUOTA = 5  # FilterLogEvents requests per second, per account and region
LOOKUPS = 4
STATE_TABLE = "opsbot-state"


# -- the recorder: moto's own FilterLogEvents handler, in this process (the server's) -------------------


def record_filter_log_events() -> list[float]:
    """Arrival times (epoch seconds) of every FilterLogEvents call the moto server answers."""
    from moto.logs.responses import LogsResponse

    arrivals: list[float] = []
    lock = threading.Lock()
    original = LogsResponse.filter_log_events

    def recorded(self: Any) -> Any:
        with lock:
            arrivals.append(time.time())
        return original(self)

    LogsResponse.filter_log_events = recorded  # type: ignore[method-assign]
    return arrivals


def most_in_window(times: list[float], window: float = 1.0) -> tuple[int, float]:
    """The most calls within any span shorter than ``window`` (a sliding window), and where it began."""
    ordered = sorted(times)
    best, at, first = 0, 0.0, 0
    for last, moment in enumerate(ordered):
        while moment - ordered[first] >= window:
            first += 1
        if last - first + 1 > best:
            best, at = last - first + 1, ordered[first]
    return best, at


# -- a worker: one "container" ---------------------------------------------------------------------------


def worker(spec: dict[str, Any]) -> None:
    """Run in a process of its own: wait for "go" on stdin, run the lookup or the tail, print JSON."""
    from bot.aws import logs as cw
    from bot.core.apilogs.commands import lookup, plan_tail

    if spec["shared"]:
        cw.share_budget(STATE_TABLE)  # what handlers/slack.py does in every container
    settings = Settings.from_env()
    print("ready", flush=True)
    sys.stdin.readline()
    began = time.monotonic()
    result: dict[str, Any] = {"kind": spec["kind"], "label": spec.get("label", "")}
    try:
        if spec["kind"] == "solo":
            # One lookup at a time, as a person types them: the budget's own cost, with no one to wait for.
            times = []
            for _ in range(spec["repeat"]):
                time.sleep(1.2)  # a quiet window, as between two commands
                started = time.monotonic()
                lookup(spec["request_id"], settings, api=spec["api"], stage=spec["stage"])
                times.append(time.monotonic() - started)
            result["times"] = times
        elif spec["kind"] == "lookup":
            found = lookup(spec["request_id"], settings, api=spec["api"], stage=spec["stage"])
            result["events"] = [[e.group, e.stream, e.timestamp, e.message] for e in found.events]
            result["filter_calls"] = found.stats.calls.get("FilterLogEvents", 0)
            result["throttled"] = found.stats.throttled
        else:
            plan = plan_tail(
                settings, api=spec["api"], stage=spec["stage"], duration=f"{spec['seconds']}s", mode="poll"
            )
            batches = sum(1 for _ in plan.tail.batches())
            summary = plan.tail.summary
            result["groups"] = len(plan.groups)
            result["polls"] = batches
            result["filter_calls"] = summary.stats.calls.get("FilterLogEvents", 0)
            result["stop"] = summary.stop_reason
    except Exception as error:  # reported, and the bench fails
        result["error"] = f"{type(error).__name__}: {error}"
    result["seconds"] = time.monotonic() - began
    shared = cw.LIMITER.shared
    if shared is not None:
        stats = shared.stats
        result["budget"] = {
            "reservations": stats.reservations,
            "requests": stats.requests,
            "granted": stats.granted,
            "stale": stats.stale,
            "busy": stats.busy,
            "fallbacks": stats.fallbacks,
            "skipped": stats.skipped,
            "resets": stats.resets,
        }
    print(json.dumps(result), flush=True)


def run(specs: list[dict[str, Any]], arrivals: list[float]) -> tuple[list[dict[str, Any]], list[float]]:
    """Start one process per spec, let them all go at once, collect their results and the calls."""
    processes = [
        subprocess.Popen(
            [sys.executable, __file__, "--worker", json.dumps(spec)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        for spec in specs
    ]
    for process in processes:
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        if line != "ready":
            raise SystemExit(f"a worker did not start: {line!r}")
    del arrivals[:]
    for process in processes:
        assert process.stdin is not None
        process.stdin.write("go\n")
        process.stdin.flush()
    results = []
    for process in processes:
        out, _ = process.communicate(timeout=180)
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results, list(arrivals)


def truth_of(request: SimRequest) -> set[tuple[str, str, int, str]]:
    return {(e.group, e.stream, e.timestamp, e.message) for e in request.events}


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--tail-seconds", type=int, default=8, help="how long the tail runs (default 8)")
    args = parser.parse_args()
    if args.worker:
        worker(json.loads(args.worker))
        return 0

    from bot.aws.state import create_state_table
    from bot.local.aws import start_embedded_aws
    from bot.local.seeds import apilogs as seed_module

    arrivals = record_filter_log_events()
    embedded = start_embedded_aws()  # DynamoDB made atomic per item, as the real one is
    try:
        create_state_table(STATE_TABLE)
        api_id, account = seed_module.create_api("us-east-1")
        demo = seed_module.generate(api_id, account, datetime.now(UTC), count=40)
        write_events(client("logs"), (e for r in demo.requests for e in r.events))
        chosen = [demo.failed] if demo.failed else []
        chosen += [r for r in reversed(demo.requests) if r is not demo.failed][: LOOKUPS - len(chosen)]
        truths = {r.api_request_id: truth_of(r) for r in chosen}
        events = sum(len(r.events) for r in demo.requests)
        groups = len({e.group for r in demo.requests for e in r.events})
        print(
            f"Seeded the demo API: {len(demo.requests)} requests, {events} events in {groups} log groups. "
            f"{LOOKUPS} lookups + 1 polling tail ({args.tail_seconds} s), each in its own process, "
            "started together."
        )

        def specs(shared: bool) -> list[dict[str, Any]]:
            lookups = [
                {
                    "kind": "lookup",
                    "label": f"lookup {index + 1} ({'failed' if r is demo.failed else r.method + ' ' + r.path})",
                    "request_id": r.api_request_id,
                    "api": api_id,
                    "stage": seed_module.STAGE,
                    "shared": shared,
                }
                for index, r in enumerate(chosen)
            ]
            tail = {
                "kind": "tail",
                "label": "tail (poll)",
                "api": api_id,
                "stage": seed_module.STAGE,
                "seconds": args.tail_seconds,
                "shared": shared,
            }
            return [*lookups, tail]

        solo: dict[str, list[float]] = {}
        for name, shared in (("baseline", False), ("shared", True)):
            spec = {
                "kind": "solo",
                "request_id": chosen[0].api_request_id,
                "api": api_id,
                "stage": seed_module.STAGE,
                "shared": shared,
                "repeat": 6,
            }
            (result,), _ = run([spec], arrivals)
            solo[name] = result["times"][1:]  # the first one reads the API and its functions (cold)
        base_ms, shared_ms = (statistics.median(solo[n]) * 1000 for n in ("baseline", "shared"))
        print(
            f"One lookup alone (warm, median of {len(solo['shared'])}): {base_ms:.0f} ms with the per-process "
            f"limiter, {shared_ms:.0f} ms with the shared budget ({shared_ms - base_ms:+.0f} ms)."
        )

        runs: dict[str, tuple[list[dict[str, Any]], list[float]]] = {}
        for name, shared in (("baseline", False), ("shared", True)):
            time.sleep(1.2)  # nothing of the previous run left in any window
            runs[name] = run(specs(shared), arrivals)

        failures: list[str] = []
        print()
        for name, (results, calls) in runs.items():
            peak, at = most_in_window(calls)
            t0 = min(calls) if calls else 0.0
            span = max(calls) - t0 if calls else 0.0
            title = (
                "baseline: per-process limiter only"
                if name == "baseline"
                else "shared: budget in the state table"
            )
            print(
                f"== {title}: {len(calls)} FilterLogEvents in {span:.1f} s, "
                f"at most {peak} in a 1 s window (from +{at - t0:.2f} s)"
            )
            header = f"{'worker':<34}{'seconds':>9}{'FLE':>6}{'recall':>8}{'throttled':>11}  notes"
            print(header)
            print("-" * len(header))
            budget_requests = budget_calls = reservations = skipped = stale = busy = 0
            for spec, result in zip(specs(name == "shared"), results, strict=True):
                notes = result.get("error", "")
                recall = ""
                if result["kind"] == "lookup" and "events" in result:
                    found = {tuple(e) for e in result["events"]}
                    truth = truths[spec["request_id"]]
                    share = len(found & truth) / len(truth)  # type: ignore[operator]
                    recall = f"{share:.0%}"
                    if name == "shared" and share < 1.0:
                        failures.append(f"{result['label']}: recall {share:.0%}")
                elif result["kind"] == "tail":
                    notes = (
                        notes
                        or f"{result.get('groups')} groups, {result.get('polls')} polls, {result.get('stop')}"
                    )
                if "error" in result and name == "shared":
                    failures.append(f"{result['label']}: {result['error']}")
                budget = result.get("budget")
                if budget:
                    budget_requests += budget["requests"]
                    budget_calls += budget["granted"]
                    reservations += budget["reservations"]
                    skipped += budget["skipped"]
                    stale += budget["stale"]
                    busy += budget["busy"]
                    if budget["fallbacks"]:
                        failures.append(f"{result['label']}: fell back to the local limiter")
                    if budget["resets"]:
                        # No clock here is skewed: a reset would be a real queue taken for a corrupt item.
                        failures.append(f"{result['label']}: reset the shared item {budget['resets']} times")
                print(
                    f"{result['label']:<34}{result['seconds']:>9.2f}{result.get('filter_calls', 0):>6}"
                    f"{recall:>8}{result.get('throttled', 0):>11}  {notes}"
                )
            if budget_calls:
                print(
                    f"shared budget: {reservations} reservations in {budget_requests} DynamoDB requests for "
                    f"{budget_calls} FilterLogEvents ({budget_requests / budget_calls:.2f} requests per call); "
                    f"{stale} starts missed ({busy} for want of a free slot), {skipped} calls went without waiting (start past the deadline "
                    "or 5 s)"
                )
            print()
            if name == "shared" and peak > QUOTA:
                failures.append(f"shared run: {peak} FilterLogEvents within 1 s (quota {QUOTA})")
            if name == "baseline" and peak <= QUOTA:
                print(f"note: the baseline stayed within {QUOTA} a second; the comparison shows nothing.")
        lookups_shared = [r["seconds"] for r in runs["shared"][0] if r["kind"] == "lookup"]
        lookups_base = [r["seconds"] for r in runs["baseline"][0] if r["kind"] == "lookup"]
        print(
            f"Slowest lookup: {max(lookups_base):.2f} s baseline, {max(lookups_shared):.2f} s shared; "
            f"most FilterLogEvents in 1 s: {most_in_window(runs['baseline'][1])[0]} baseline, "
            f"{most_in_window(runs['shared'][1])[0]} shared (target <= {QUOTA})."
        )
        if failures:
            print("FAILED: " + "; ".join(failures))
            return 1
        print("OK: within the account's quota, every lookup complete.")
        return 0
    finally:
        embedded.stop()
        os.environ.pop("AWS_ENDPOINT_URL", None)


if __name__ == "__main__":
    sys.exit(main())
