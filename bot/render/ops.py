"""Presentation of ``/ops doctor``: Block Kit sections per area (worst first) and a terminal table."""

from __future__ import annotations

import re
from typing import Any

from bot.core.ops.accounts import AccountsReport, RoleCheck
from bot.core.ops.doctor import STATUSES, DoctorReport, Finding
from bot.render.blocks import (
    MAX_SECTION_TEXT,
    Block,
    context,
    escape,
    fit,
    header,
    section,
    times_in,
    truncate,
)
from bot.render.text import paint

ICONS = {"fail": ":x:", "warn": ":warning:", "ok": ":white_check_mark:", "skip": ":white_circle:"}
LABELS = {"fail": "FAIL", "warn": "WARN", "ok": "ok", "skip": "skip"}
COLOURS = {"fail": "31", "warn": "33", "ok": "32", "skip": "2"}
AREA_TITLES = {
    "slack": "Slack",
    "aws": "AWS",
    "apilogs": "/apilogs",
    "mail": "/mail",
    "device": "/device",
    "dns": "/dns",
    "fanout": "/fanout",
}
# One area's section; a finding's own line is cut to this so that one verbose fix cannot push the others out.
MAX_FINDING_TEXT = 2800


def summary_line(report: DoctorReport) -> str:
    counts = report.summary()
    parts = [f"{counts[s]} {LABELS[s]}" for s in ("fail", "warn", "ok", "skip") if counts[s]]
    where = f" in {report.scope}" if report.scope else ""
    return f"{', '.join(parts) or 'nothing checked'}{where} ({report.seconds:.1f} s)"


def _finding_text(finding: Finding) -> str:
    """One finding's line (and its fix). A line cut to fit loses its code spans: an unclosed backtick would
    swallow the formatting of every finding after it."""
    target = escape(finding.target.replace("`", "'"))
    # times_in escapes the detail and shows its ISO times as Slack dates (each reader's zone).
    line = f"{ICONS[finding.status]} *{escape(finding.check)}* `{target}`: {times_in(finding.detail, slack=True)}"
    if finding.fix and finding.status != "ok":
        line += f"\n      _Fix:_ {escape(finding.fix)}"
    if len(line) <= MAX_FINDING_TEXT:
        return line
    return truncate(line.replace("`", ""), MAX_FINDING_TEXT)


def _natural(text: str) -> list[Any]:
    """qa2 before qa10."""
    return [int(part) if part.isdecimal() else part for part in re.split(r"(\d+)", text)]


def _distinct(findings: list[Finding]) -> list[Finding]:
    """The same finding once (a log group shared by two stages is checked for each)."""
    seen: set[tuple[str, str, str, str]] = set()
    kept = []
    for f in findings:
        key = (f.check, f.target, f.status, f.detail)
        if key not in seen:
            seen.add(key)
            kept.append(f)
    return kept


def doctor_blocks(report: DoctorReport) -> tuple[str, list[Block]]:
    """Failing areas first; within an area, failing checks first, one section per few findings (a section
    holds 3,000 characters, so none is cut mid-word). The ok checks of an area are one line (their names),
    so a healthy deploy reads in one screen and a broken one shows its fixes; what does not fit one message
    is counted, with the command that shows it all."""
    verdict = ":x: Not wired yet" if report.failed else ":white_check_mark: Wired"
    if not report.failed and report.summary()["warn"]:
        verdict = ":warning: Wired, with warnings"
    blocks: list[Block] = [header("opsbot doctor"), section(f"*{verdict}*: {escape(summary_line(report))}")]
    counts = [0, 0]  # finding lines per block, to say how many did not fit
    for area, findings in report.by_area():
        title = AREA_TITLES.get(area, area)
        findings = sorted(
            _distinct(findings), key=lambda f: (STATUSES.index(f.status), f.check, _natural(f.target))
        )
        lines = [_finding_text(f) for f in findings if f.status != "ok"]
        fine = [f for f in findings if f.status == "ok"]
        if fine:
            names = ", ".join(sorted({f.check for f in fine}))
            also = "also " if lines else ""
            lines.append(f"{ICONS['ok']} {also}ok ({len(fine)}): {escape(names)}")
        chunk, count = f"*{title}*", 0
        for line in lines:
            if len(chunk) + 1 + len(line) > MAX_SECTION_TEXT:
                blocks.append(section(chunk))
                counts.append(count)
                chunk, count = line, 0
            else:
                chunk += "\n" + line
            count += 1
        blocks.append(section(chunk))
        counts.append(count)
    if report.cut_short:
        counts.append(0)
        blocks.append(
            context(
                f"Cut short ({len(report.cut_short)}): "
                + escape(truncate(", ".join(report.cut_short), 2500))
                + ". Run it again with more time: `opsbot doctor --timeout 300`."
            )
        )
    blocks.append(
        context("Read-only: nothing was changed. `opsbot doctor --json` gives the same checks as JSON.")
    )
    kept, dropped = fit(
        blocks, note="More findings than one message holds: `opsbot doctor` shows all of them."
    )
    if dropped:
        hidden = sum(counts) - sum(counts[: len(kept) - 1])
        kept[-1] = context(
            f"{hidden} more finding lines than one message holds: `opsbot doctor` (or `--only AREA`) shows "
            "all of them."
        )
    fallback = f"opsbot doctor: {summary_line(report)}"
    return fallback, kept


def doctor_text(report: DoctorReport, *, colour: bool = False) -> str:
    """A table: status, area, check, target, then the detail and fix indented beneath."""
    rows = report.ordered()
    width_area = max([len("AREA"), *(len(f.area) for f in rows)])
    width_check = max([len("CHECK"), *(len(f.check) for f in rows)])
    lines = [f"{'STATUS':<6}  {'AREA':<{width_area}}  {'CHECK':<{width_check}}  TARGET"]
    for finding in rows:
        status = paint(f"{LABELS[finding.status]:<6}", COLOURS[finding.status], colour)
        lines.append(
            f"{status}  {finding.area:<{width_area}}  {finding.check:<{width_check}}  {finding.target}"
        )
        lines.append(f"        {finding.detail}")
        if finding.fix and finding.status != "ok":
            lines.append(f"        fix: {finding.fix.replace('`', '')}")
    lines.append("")
    lines.append(summary_line(report))
    if report.cut_short:
        lines.append("cut short: " + "; ".join(report.cut_short))
    return "\n".join(lines)


def _account_line(check: RoleCheck, *, markup: bool) -> str:
    account = check.account
    name = account.label
    where = ", ".join(account.regions) if account.regions else "any region"
    role = {"own": "opsbot's own credentials", "read": "read-only role", "change": "change role"}[check.role]
    default = " (default)" if account.default else ""
    if markup:
        head = f"{ICONS['ok' if check.verdict == 'ok' else 'fail']} *{escape(name)}*{default} — {role}"
        arn = f" `{escape(check.role_arn)}`" if check.role_arn else ""
        verb = "runs as" if check.role == "own" else "assumed as"
        body = escape(check.message) if check.message else f"{verb} `{escape(check.identity)}`"
        return f"{head}{arn}, {escape(where)}\n{body}"
    label = LABELS["ok" if check.verdict == "ok" else "fail"]
    arn = f" {check.role_arn}" if check.role_arn else ""
    body = check.message or f"{'runs as' if check.role == 'own' else 'assumed as'} {check.identity}"
    return f"{label:4}  {name}{default}: {role}{arn}, {where}\n      {body}"


def accounts_blocks(report: AccountsReport) -> tuple[str, list[Block]]:
    """``/ops accounts``: one section per role checked, a verdict each."""
    failed = sum(1 for c in report.checks if c.verdict != "ok")
    title = "opsbot's accounts"
    summary = f"{len(report.checks) - failed} ok, {failed} failing" if failed else "every role can be assumed"
    blocks: list[Block] = [header(title)]
    for check in report.checks[:45]:
        blocks.append(section(truncate(_account_line(check, markup=True), MAX_SECTION_TEXT)))
    note = (
        "No accounts configured (OPSBOT_ACCOUNTS): opsbot works in its own account. See docs/accounts.md."
        if not report.configured
        else f"Default: `{escape(report.default)}`. Each role was assumed once, in your name, and asked "
        "sts:GetCallerIdentity."
    )
    blocks.append(context(note))
    return f"{title}: {summary}", blocks


def accounts_text(report: AccountsReport) -> str:
    lines = [_account_line(check, markup=False) for check in report.checks]
    if not report.configured:
        lines.append("No accounts configured (OPSBOT_ACCOUNTS): opsbot works in its own account.")
    return "\n".join(lines)
