"""Presentation of ``/ops doctor``: Block Kit sections per area (worst first) and a terminal table."""

from __future__ import annotations

from bot.core.ops.doctor import DoctorReport, Finding
from bot.render.blocks import Block, context, escape, fit, header, section, truncate
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
MAX_FINDING_TEXT = 900


def summary_line(report: DoctorReport) -> str:
    counts = report.summary()
    parts = [f"{counts[s]} {LABELS[s]}" for s in ("fail", "warn", "ok", "skip") if counts[s]]
    where = f" in {report.scope}" if report.scope else ""
    return f"{', '.join(parts) or 'nothing checked'}{where} ({report.seconds:.1f} s)"


def _finding_text(finding: Finding) -> str:
    line = f"{ICONS[finding.status]} *{escape(finding.check)}* `{escape(finding.target)}`: {escape(finding.detail)}"
    if finding.fix and finding.status != "ok":
        line += f"\n      _Fix:_ {escape(finding.fix)}"
    return truncate(line, MAX_FINDING_TEXT)


def doctor_blocks(report: DoctorReport) -> tuple[str, list[Block]]:
    """Failing areas first; within an area, failing checks first. The ok checks of an area are one line
    (their names), so a healthy deploy reads in one screen and a broken one shows its fixes."""
    verdict = ":x: Not wired yet" if report.failed else ":white_check_mark: Wired"
    if not report.failed and report.summary()["warn"]:
        verdict = ":warning: Wired, with warnings"
    blocks: list[Block] = [header("opsbot doctor"), section(f"*{verdict}*: {escape(summary_line(report))}")]
    for area, findings in report.by_area():
        title = AREA_TITLES.get(area, area)
        shown = [f for f in findings if f.status != "ok"]
        fine = [f for f in findings if f.status == "ok"]
        lines = [_finding_text(f) for f in shown]
        if fine:
            names = ", ".join(sorted({f.check for f in fine}))
            lines.append(f"{ICONS['ok']} {len(fine)} ok: {escape(names)}")
        text = f"*{title}*\n" + "\n".join(lines)
        blocks.append(section(truncate(text, 3000)))
    if report.cut_short:
        blocks.append(
            context(
                f"Cut short ({len(report.cut_short)}): "
                + escape(", ".join(report.cut_short))
                + ". Run `opsbot doctor` from a terminal for the rest."
            )
        )
    blocks.append(
        context("Read-only: nothing was changed. `opsbot doctor --json` gives the same checks as JSON.")
    )
    kept, _ = fit(blocks, note="More checks than one message holds: run `opsbot doctor` for all of them.")
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
            lines.append(f"        fix: {finding.fix}")
    lines.append("")
    lines.append(summary_line(report))
    if report.cut_short:
        lines.append("cut short: " + "; ".join(report.cut_short))
    return "\n".join(lines)
