"""How many examples the property tests (Hypothesis) try: every one in CI, a share in the developer loop.

``HYPOTHESIS_PROFILE=full`` (the default, and what .ci/run sets): each test tries the count it names, or
Hypothesis's 100. ``HYPOTHESIS_PROFILE=dev`` (`make test`, the developer loop): a third of that, at least
5 (or the whole count when it is smaller). The property tests were about a seventh of the loop's CPU; CI
runs `make test` with the full counts on every landing, so no property is tried less before it lands.
A test that names its count writes ``max_examples=examples(400)``.
"""

from __future__ import annotations

import math
import os

from hypothesis import HealthCheck, settings

PROFILES = ("full", "dev")
DEV_SHARE = 1 / 3


def profile() -> str:
    chosen = os.environ.get("HYPOTHESIS_PROFILE", "") or "full"
    if chosen not in PROFILES:
        raise SystemExit(f"HYPOTHESIS_PROFILE={chosen!r} is not a profile of this suite: use full or dev.")
    return chosen


def examples(count: int) -> int:
    """The number of examples to try for a test that asks for ``count`` in CI."""
    if profile() == "full":
        return count
    return max(min(count, 5), math.ceil(count * DEV_SHARE))


def load_profile() -> None:
    # Hypothesis's timing checks (a 200 ms deadline per example, "data generation too slow") measure the
    # machine, not the code: on two cores shared with other test workers they fail tests whose logic holds.
    common = {
        "deadline": None,
        "suppress_health_check": [HealthCheck.too_slow, HealthCheck.large_base_example],
    }
    settings.register_profile("full", **common)  # type: ignore[arg-type]
    settings.register_profile("dev", max_examples=examples(100), **common)  # type: ignore[arg-type]
    settings.load_profile(profile())
