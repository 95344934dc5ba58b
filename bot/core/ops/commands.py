"""The doctor's entry: which probes run for the options given, and the run under one deadline."""

from __future__ import annotations

import importlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from bot.config import Settings
from bot.core.ops.checks.slack import SlackReader
from bot.core.ops.doctor import AREAS, DoctorReport, Finding, Probe, run_probes
from bot.errors import UsageError, echo

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
    wanted = tuple(
        dict.fromkeys(word.strip().lower() for word in text.replace(",", " ").split() if word.strip())
    )
    unknown = [a for a in wanted if a not in AREAS]
    if unknown:
        raise UsageError(f"Unknown area {', '.join(unknown)}: the doctor checks {', '.join(AREAS)}.")
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


def probes_for(
    settings: Settings, options: DoctorOptions, *, slack: SlackReader | None, signing_secret_set: bool
) -> list[Probe]:
    from bot.core.ops.checks import slack as slack_checks

    region = options.region or settings.region
    context = DoctorContext(settings, region, account=options.account, all_stages=options.all_stages)
    wanted = options.areas or AREAS
    found: list[Probe] = []
    if "slack" in wanted:
        found += slack_checks.probes(settings, slack, signing_secret_set=signing_secret_set)
    for area, module in AREA_MODULES.items():
        if area in wanted:
            area_probes = importlib.import_module(module).probes(context)
            if area in AREAS_IN_REGION and region != settings.region:
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
    signing_secret_set: bool,
) -> DoctorReport:
    """Run the read-only checks. ``--region`` moves the checks of what lives in a region of the account (the
    API stages) there; opsbot's own tables, topic, rule and functions are read where opsbot runs."""
    validate_options(options)
    region = options.region or settings.region
    probes = probes_for(settings, options, slack=slack, signing_secret_set=signing_secret_set)
    report = run_probes(probes, timeout=options.timeout)
    report.scope = (
        region if region == settings.region else f"{region} (opsbot's own resources: {settings.region})"
    )
    return report
