"""The doctor's entry: which probes run for the options given, and the run under one deadline."""

from __future__ import annotations

import dataclasses
import importlib
import os
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from bot.config import Settings
from bot.core.ops.checks.slack import SlackReader
from bot.core.ops.doctor import AREAS, DoctorReport, Finding, Probe, run_probes
from bot.errors import UsageError, echo, echo_all

# One module per area under bot.core.ops.checks, each with ``probes(context) -> list[Probe]``; slack is
# built separately because it needs the reader the caller passes.
AREA_MODULES: dict[str, str] = {
    "aws": "bot.core.ops.checks.aws",
    "apilogs": "bot.core.ops.checks.apilogs",
    "mail": "bot.core.ops.checks.mail",
    "device": "bot.core.ops.checks.device",
    "dns": "bot.core.ops.checks.dns",
    "fanout": "bot.core.ops.checks.fanout",
}


# Areas about the account's resources in a region (read in --region's region); the others check opsbot's
# own stack, which lives in the region opsbot runs in.
AREAS_IN_REGION = ("apilogs",)


@dataclass(frozen=True)
class DoctorOptions:
    region: str = ""  # "" = the configured region
    account: str = ""  # "" = the account of the credentials
    all_stages: bool = False  # every API stage of the region instead of the default API's
    areas: tuple[str, ...] = ()  # () = every area
    timeout: float = 60.0


@dataclass(frozen=True)
class DoctorContext:
    """What every area's probes may use. ``region`` is resolved (never empty)."""

    settings: Settings
    region: str
    account: str = ""
    all_stages: bool = False
    notes: list[str] = field(default_factory=list)


def parse_areas(text: str | None) -> tuple[str, ...]:
    if not text:
        return ()
    # "/apilogs" as the answer labels it, or "apilogs".
    words = text.replace(",", " ").split()
    wanted = tuple(dict.fromkeys(word.strip().lower().lstrip("/") for word in words if word.strip("/ ")))
    unknown = [a for a in wanted if a not in AREAS]
    if unknown:
        raise UsageError(f"Unknown area {echo_all(unknown)}: the doctor checks {', '.join(AREAS)}.")
    return wanted


_REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-\d{1,2}")
_ACCOUNT = re.compile(r"\d{12}")


def validate_options(options: DoctorOptions) -> None:
    """Bad input is refused before anything is read."""
    if options.region and not _REGION.fullmatch(options.region):
        raise UsageError(f"{echo(options.region)} is not an AWS region name (like us-east-1 or eu-west-2).")
    if options.account and not _ACCOUNT.fullmatch(options.account):
        raise UsageError(f"{echo(options.account)} is not an AWS account id (12 digits).")
    if options.timeout <= 0:
        raise UsageError("The time limit must be a positive number of seconds.")


def home_region(settings: Settings) -> str:
    """Where opsbot's own resources are: the environment's region, or the profile's (as boto3 finds it)."""
    from bot.aws.clients import default_region

    return default_region() if not os.environ.get("AWS_REGION") else settings.region


def probes_for(
    settings: Settings, options: DoctorOptions, *, slack: SlackReader | None, signing_secret_set: bool | None
) -> list[Probe]:
    from bot.core.ops.checks import slack as slack_checks

    home = home_region(settings)
    region = options.region or home
    context = DoctorContext(settings, region, account=options.account, all_stages=options.all_stages)
    wanted = options.areas or AREAS
    found: list[Probe] = []
    if "slack" in wanted:
        found += slack_checks.probes(settings, slack, signing_secret_set=signing_secret_set)
    for area, module in AREA_MODULES.items():
        if area in wanted:
            area_probes = importlib.import_module(module).probes(context)
            if area in AREAS_IN_REGION and region != home:
                area_probes = [in_region(p, region) for p in area_probes]
            found += area_probes
    return found


def in_region(probe: Probe, region: str) -> Probe:
    from bot.aws.clients import region_override

    def run() -> Sequence[Finding]:
        with region_override(region):
            return probe.run()

    return Probe(probe.area, probe.check, probe.target, run)


def doctor(
    settings: Settings,
    options: DoctorOptions,
    *,
    slack: SlackReader | None,
    signing_secret_set: bool | None,
) -> DoctorReport:
    """Run the read-only checks. ``--region`` moves the checks of what lives in a region of the account (the
    API stages) there; opsbot's own tables, topic, rule and functions are read where opsbot runs."""
    validate_options(options)
    home = home_region(settings)
    region = options.region or home
    probes = probes_for(settings, options, slack=slack, signing_secret_set=signing_secret_set)
    started = time.monotonic()
    # Who the credentials are, first: when AWS cannot say, every other AWS read would fail (or hang) the
    # same way, and one finding saying why reads better than a dozen repeating it.
    identity = [p for p in probes if p.area == "aws" and p.check == "identity"]
    first = run_probes(identity, timeout=min(IDENTITY_SECONDS, options.timeout))
    rest = [p for p in probes if p not in identity]

    def left() -> float:
        return max(0.1, options.timeout - (time.monotonic() - started))

    if any(f.status != "ok" for f in first.findings if f.check == "identity"):
        report = run_probes([p for p in rest if p.area == "slack"], timeout=left())
        report.findings += first.findings
        report.findings += [
            Finding(
                area,
                "AWS reads",
                "every check of this area",
                "skip",
                "not checked: AWS did not answer who these credentials are (see the identity check)",
            )
            for area in sorted({p.area for p in rest if p.area != "slack"})
        ]
        report.cut_short = first.cut_short + report.cut_short
    else:
        report = run_probes(rest, timeout=left())
        report.findings += first.findings
    report.seconds = time.monotonic() - started
    report.findings = with_regions(report.findings, region, home)
    report.scope = region if region == home else f"{region} (opsbot's own resources: {home})"
    return report


# Long enough for STS from a cold container; the rest of the doctor's time is for the other checks.
IDENTITY_SECONDS = 10.0

# The regional services whose commands a fix may name; IAM, STS and Route 53 are global.
_REGIONAL_COMMAND = re.compile(
    r"\baws (apigateway|apigatewayv2|logs|ses|sesv2|sns|sqs|iot|lambda|dynamodb|events) ([a-z0-9-]+)"
)


def with_regions(findings: list[Finding], region: str, home: str) -> list[Finding]:
    """Every regional ``aws`` command in a fix names the region it was checked in, so that pasting it into
    a shell whose default region is another changes the right resource."""
    fixed: list[Finding] = []
    for finding in findings:
        where = region if finding.area in AREAS_IN_REGION else home
        fix = _REGIONAL_COMMAND.sub(rf"\g<0> --region {where}", finding.fix)
        fixed.append(finding if fix == finding.fix else dataclasses.replace(finding, fix=fix))
    return fixed
