"""``opsbot apilogs ID`` and ``opsbot apilogs tail``: the same core as /apilogs in Slack."""

from __future__ import annotations

import argparse
import sys
import time

from bot.config import Settings
from bot.errors import UsageError

LOOKUP_TIMEOUT = 120.0

DESCRIPTION = """\
Look up one request across API Gateway and every Lambda function behind it, or tail them all.

  opsbot apilogs ID [--api-id ID|NAME] [--stage S] [--since T] [--until T] [--timeout S] [--full] [--json]
  opsbot apilogs tail [--api-id ID|NAME] [--stage S] [--filter PATTERN] [--for 10m] [--since T]
                      [--raw | --errors] [--path P]
  opsbot apilogs errors [--api-id ID|NAME] [--stage S] [--since 15m] [--until T] [--status 5xx|4xx|all]
                        [--path P] [--json]

The lookup prints a compact timeline (request line, hops, every WARN/ERROR line, the functions' own
lines, START/REPORT) and counts what it leaves out; --full prints every line (--json always has all).
The tail prints one entry per request with its Lambda lines folded under it; --raw prints every line
as it comes, --errors only failing requests.

ID is a REST API request id (x-amzn-RequestId), an extended request id (x-amz-apigw-id), an HTTP API
apigw-requestid, a Lambda request id or an X-Ray trace id. API and stage default to OPSBOT_DEFAULT_API
and OPSBOT_DEFAULT_STAGE, or to the only ones in the region. Times: 2h ago, 2h30m, 30s, 3d, ISO 8601
(no zone = UTC), epoch seconds or milliseconds.

An id that starts with "-" (extended request ids are base64url: -Xb3kdjfk8sdfE=) goes after "--",
which ends the options:

  opsbot apilogs --api-id shop-api -- -Xb3kdjfk8sdfE=
"""


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "apilogs",
        help="correlated request logs and live tail across API Gateway and its Lambda functions",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    # The id and the times may arrive in several words (``x-amzn-RequestId: ID``, ``--since 2h ago``):
    # they are collected here and put back together in ``run``.
    parser.add_argument(
        "target",
        metavar="ID|tail|errors",
        nargs="*",
        help="the request id to look up, `tail`, or `errors` (an id starting with '-' goes after '--')",
    )
    parser.add_argument("--api-id", "--api", dest="api", default="", help="API id or name")
    parser.add_argument("--stage", default="", help="stage name")
    parser.add_argument(
        "--since",
        nargs="+",
        default=[],
        metavar="T",
        help="start of the search, e.g. 2h ago (default: the id's own time +/- 5 min, else 1h; "
        "errors: 15 min; tail: the last 10 s)",
    )
    parser.add_argument(
        "--until", nargs="+", default=[], metavar="T", help="end of the search (default: now)"
    )
    parser.add_argument("--filter", dest="pattern", default="", help="tail: a CloudWatch Logs filter pattern")
    parser.add_argument(
        "--for", dest="duration", default="", help="tail: stop after this long (default: Ctrl-C)"
    )
    parser.add_argument(
        "--mode", default="auto", choices=("auto", "live", "poll"), help="tail: Live Tail, polling, or auto"
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=None,
        metavar="SECONDS",
        help=f"lookup: stop searching after this long and show what was found, marked incomplete "
        f"(default {LOOKUP_TIMEOUT:.0f}; what throttling keeps from finishing is cut short, not lost)",
    )
    parser.add_argument("--full", action="store_true", help="lookup: every line of the timeline")
    parser.add_argument("--raw", action="store_true", help="tail: every line as it comes, not by request")
    parser.add_argument(
        "--errors", action="store_true", help="tail: only failing requests (4xx, 5xx, errors)"
    )
    parser.add_argument(
        "--status", default=None, choices=("5xx", "4xx", "all"), help="errors: which failures (default 5xx)"
    )
    parser.add_argument(
        "--path", default=None, metavar="P", help="errors, tail: only this resource path (/orders, /orders*)"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    parser.set_defaults(func=run)


def _regroup(args: argparse.Namespace) -> None:
    """Words argparse gave a time flag beyond its value belong to the id (``--since 2h ID``); the
    times become strings and ``target`` the one id or ``tail``."""
    from bot.core.apilogs.words import id_from_words
    from bot.core.common.timewords import take_time

    words = list(args.target)
    for name in ("since", "until"):
        value, rest = take_time(getattr(args, name))
        setattr(args, name, value)
        words += rest
    if words[:1] in (["tail"], ["errors"]):
        if words[1:]:
            raise UsageError(
                f"Unexpected {' '.join(repr(w) for w in words[1:])}. Quote a value that has spaces."
            )
        args.target = words[0]
        return
    if not words:
        raise UsageError("Give the request id to look up, or `tail`.")
    args.target = id_from_words(words)


def run(args: argparse.Namespace) -> int:
    _regroup(args)
    if args.target == "errors":
        if args.pattern or args.duration or args.mode != "auto" or args.timeout is not None:
            raise UsageError("--filter, --for, --mode and --timeout do not apply to `opsbot apilogs errors`.")
        if args.full or args.raw or args.errors:
            raise UsageError("--full, --raw and --errors do not apply to `opsbot apilogs errors`.")
        return _errors(args)
    if args.status is not None:
        raise UsageError("--status applies to `opsbot apilogs errors` only.")
    if args.target == "tail":
        if args.path is not None:
            from bot.core.apilogs.errors import check_args

            check_args(path=args.path)
            if args.raw:
                raise UsageError("--path keeps the requests to a path, --raw shows every line: choose one.")
        if args.timeout is not None:
            raise UsageError("--timeout applies to a lookup; use --for to stop a tail after a while.")
        if args.until:
            raise UsageError("--until does not apply to tail; use --for to stop after a while.")
        if args.full:
            raise UsageError("--full applies to a lookup; a tail shows every line of a request already.")
        if args.raw and args.errors:
            raise UsageError("--raw shows every line; --errors shows failing requests: choose one.")
        return _tail(args)
    if args.path is not None:
        raise UsageError("--path applies to `opsbot apilogs errors` and `opsbot apilogs tail` only.")
    if args.pattern or args.duration or args.mode != "auto" or args.raw or args.errors:
        raise UsageError("--filter, --for, --mode, --raw and --errors apply to `opsbot apilogs tail` only.")
    if args.timeout is not None and not 0 < args.timeout <= 3600:
        raise UsageError("--timeout is a number of seconds between 0 and 3600.")
    return _lookup(args)


def _lookup(args: argparse.Namespace) -> int:
    from bot.cli.output import print_json, use_colour
    from bot.core.apilogs.commands import lookup
    from bot.render.apilogs import lookup_text

    # A deadline, as in Slack: past it (CloudWatch Logs throttling, say) the searches stop and what was
    # read is shown, marked incomplete, rather than the whole lookup failing.
    timeout = LOOKUP_TIMEOUT if args.timeout is None else args.timeout
    result = lookup(
        args.target,
        Settings.from_env(),
        api=args.api,
        stage=args.stage,
        since=args.since,
        until=args.until,
        deadline=time.monotonic() + timeout,
        asked_from="cli",
    )
    if args.json:
        print_json(result.to_json())
    else:
        print(lookup_text(result, colour=use_colour(), full=args.full))
    return 0 if result.found else 1


def _tail(args: argparse.Namespace) -> int:
    from bot.cli.output import print_json, use_colour
    from bot.core.apilogs.commands import plan_tail
    from bot.core.apilogs.model import LogEvent, sort_key
    from bot.core.apilogs.tail_requests import RequestEntry, RequestFolder
    from bot.render.apilogs import (
        entry_text,
        group_label,
        tail_batch_text,
        tail_summary_text,
        timeline_header,
    )

    plan = plan_tail(
        Settings.from_env(),
        api=args.api,
        stage=args.stage,
        pattern=args.pattern,
        duration=args.duration,
        since=args.since,
        mode=args.mode,
    )
    from bot.core.apilogs.errors import path_wanted

    colour = use_colour()
    collected: list[LogEvent] = []
    folder = None if args.raw else RequestFolder.for_discovery(plan.discovery)
    printed: dict[str, set[tuple[str, str]]] = {}  # entry -> its lines printed (late ones print apart)
    shown: dict[str, RequestEntry] = {}

    def show(entries: list[RequestEntry]) -> None:
        for entry in entries:
            if args.errors and not entry.failed:
                continue
            if args.path and not (entry.kind == "request" and path_wanted(entry.path, args.path)):
                continue
            shown[entry.key] = entry
            if args.json:
                continue
            done = printed.setdefault(entry.key, set())
            new = [e for e in entry.events if e.key not in done]
            if not new:
                continue
            late = new if done else None
            for line in entry_text(entry, plan.stage, colour=colour, events=late):
                print(line, flush=True)
            done.update(e.key for e in new)

    if not args.json:
        labels = ", ".join(group_label(g, plan.stage) for g in plan.groups)
        how = "every line" if args.raw else "failing requests" if args.errors else "by request"
        print(f"Tailing {plan.stage.label} ({how}): {labels}. Ctrl-C to stop.", file=sys.stderr)
        if args.raw:
            print(timeline_header(colour=colour), flush=True)
    batches = plan.tail.batches()
    try:
        for batch in batches:
            if folder is not None:
                now = int(time.monotonic() * 1000)
                folder.add(batch.events, now)
                show(folder.ready(now))
            if args.json:
                collected.extend(batch.events)
                continue
            if folder is None:
                for line in tail_batch_text(batch, plan.stage, colour=colour):
                    print(line, flush=True)
    except KeyboardInterrupt:
        plan.tail.summary.stop_reason = "interrupted"
    finally:
        batches.close()
    if folder is not None:
        show(folder.drain())
    if args.json:
        # Batches come in the order lines arrived; a late line belongs earlier in the document.
        events = sorted(collected, key=sort_key)
        document: dict[str, object] = {
            "events": [e.to_json() for e in events],
            "summary": plan.tail.summary.to_json(),
        }
        if folder is not None:
            entries = sorted(shown.values(), key=lambda e: (e.first_ms, e.key))
            document["requests"] = [e.to_json() for e in entries]
        print_json(document)
    else:
        print(tail_summary_text(plan.tail.summary), file=sys.stderr)
    return 0


def _errors(args: argparse.Namespace) -> int:
    """Exit 0 with groups or without; 1 on an AWS failure (raised, mapped by the CLI); 2 on bad input."""
    from bot.cli.output import print_json
    from bot.core.apilogs.errors import check_args, errors
    from bot.render.apilogs_errors import errors_text

    status = args.status or "5xx"
    check_args(status, args.path or "", args.since, args.until)
    report = errors(
        Settings.from_env(),
        api=args.api,
        stage=args.stage,
        since=args.since,
        until=args.until,
        status=status,
        path=args.path or "",
        deadline=time.monotonic() + LOOKUP_TIMEOUT,
    )
    if args.json:
        print_json(report.to_json())
    else:
        print(errors_text(report))
    return 0
