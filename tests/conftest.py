"""Fixtures shared by every test: AWS through moto (in-process), with every client cache reset."""

from __future__ import annotations

import gc
import json
import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from bot.aws import clients
from bot.config import Settings
from bot.local.slack_api import LocalSlack
from tests.support import botocore_speed, moto_speed, properties
from tests.support.slack import SlackHarness, harness_settings, local_slack

FAKE_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SECURITY_TOKEN": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
}


class _UniquePaths(list[str]):
    """Search paths that each boto3 Session may append its own data path to without the list growing."""

    def append(self, path: str) -> None:
        if path not in self:
            super().append(path)


def _share_botocore_loader() -> None:
    """Every test starts from fresh boto3 sessions (``clients.clear_caches``), and each new session parses
    botocore's service model JSON from disk again: 0.1-0.25 s a client, thousands of times a run. The
    models are read-only data (one session already shares them between its clients), so this process
    keeps one loader per data path; sessions and clients are still made afresh by the code under test."""
    import botocore.loaders
    import botocore.session

    original = botocore.loaders.create_loader
    shared: dict[str | None, botocore.loaders.Loader] = {}

    def create_loader(search_path_string: str | None = None) -> botocore.loaders.Loader:
        loader = shared.get(search_path_string)
        if loader is None:
            loader = shared[search_path_string] = original(search_path_string)
            loader._search_paths = _UniquePaths(loader.search_paths)  # type: ignore[attr-defined]
        return loader

    botocore.session.create_loader = create_loader


_share_botocore_loader()
botocore_speed.install()


# Python's cyclic garbage collector, left at its defaults, took 15% of a test process's CPU: the process
# holds millions of long-lived objects (botocore's service models, moto's backends, every test module),
# and a full collection, every ~70,000 allocations, walks them all again. Collecting the youngest
# generation every 10,000 allocations instead of 700 makes full collections fourteen times rarer; what
# the imports and the collection made is frozen (``pytest_collection_finish``), out of every later walk.
# Garbage is still freed: reference counting frees nearly all of it at once, the collector the rest.
gc.set_threshold(10_000, 10, 10)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests marked ``waits`` (tails that run for their --for, 4-8 s each) go first. xdist hands each
    worker a run of the collection in order and lets an idle worker take queued tests from a busy one,
    but not the one a worker holds next: a run of long tests left at the end of one worker's queue kept
    the parallel run going 6-8 s after the others had finished."""
    items.sort(key=lambda item: item.get_closest_marker("waits") is None)  # stable: the order otherwise kept


def pytest_collection_finish(session: pytest.Session) -> None:
    gc.collect()
    gc.freeze()


def _moto_through_botocore_only() -> None:
    """opsbot reaches AWS only through botocore, which moto intercepts with its botocore stubber. Each
    ``mock_aws()`` start also registers every service's URL patterns with the ``responses`` library (for
    code that calls AWS through ``requests``): about a thousand patterns, 15-20 ms of CPU a start, and
    most tests start one. This process skips that part; the stubber, the resets and the data are moto's."""
    from moto.core import models

    def enable(self: models.MockAWS, reset: bool = True) -> None:
        models.botocore_stubber.enabled = True
        if reset:
            self.reset()

    def disable(self: models.MockAWS, remove_data: bool) -> None:
        models.botocore_stubber.enabled = False
        if remove_data:
            self.reset()
            models.reset_model_data()

    models.MockAWS._enable_patching = enable  # type: ignore[method-assign]
    models.MockAWS._disable_patching = disable  # type: ignore[method-assign]


def _dynamodb_writes_atomic() -> None:
    """DynamoDB checks a write's condition and applies it as one step; moto's in-process backend checks,
    then writes, with nothing between two threads. Under load two of opsbot's conditional writes (a lock,
    a once-only flag) could both pass moto's check where DynamoDB would refuse one, and a test of
    opsbot's concurrency would fail on moto's race. One lock around moto's item writes restores what
    DynamoDB guarantees (coarser: it also orders writes to different items, which DynamoDB need not)."""
    import threading

    from moto.dynamodb.models import DynamoDBBackend

    lock = threading.RLock()
    for name in ("put_item", "update_item", "delete_item", "transact_write_items"):
        original = getattr(DynamoDBBackend, name, None)
        if original is None:
            continue

        def locked(self: Any, *args: Any, __original: Any = original, **kwargs: Any) -> Any:
            with lock:
                return __original(self, *args, **kwargs)

        setattr(DynamoDBBackend, name, locked)


_moto_through_botocore_only()
_dynamodb_writes_atomic()
moto_speed.install()

# The property tests' profile: HYPOTHESIS_PROFILE=full (CI, the default) or dev (`make test`'s share of the
# examples); see tests/support/properties.py.
properties.load_profile()


@pytest.fixture(autouse=True)
def _no_real_aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No test can reach a real AWS account: fake credentials, no profile, no endpoint left over."""
    for key, value in FAKE_AWS_ENV.items():
        monkeypatch.setenv(key, value)
    for key in ("AWS_PROFILE", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(key, raising=False)
    for key in [k for k in os.environ if k.startswith(("OPSBOT_", "SLACK_"))]:
        monkeypatch.delenv(key, raising=False)
    clients.clear_caches()
    yield
    clients.clear_caches()


@pytest.fixture
def aws() -> Iterator[None]:
    """moto in-process for every AWS service; clients created after this point talk to it."""
    from moto import mock_aws

    with mock_aws():
        clients.clear_caches()
        yield
    clients.clear_caches()


@pytest.fixture
def atomic_dynamodb() -> Iterator[None]:
    """moto's DynamoDB with each item request atomic, as DynamoDB's are: for tests with concurrent writers,
    which must exercise our conditions and counters, not moto's missing locks."""
    from bot.local.aws import make_dynamodb_atomic

    undo = make_dynamodb_atomic()
    try:
        yield
    finally:
        undo()


@pytest.fixture
def state_table(aws: None) -> str:
    from bot.aws.state import create_state_table

    create_state_table("opsbot-state")
    return "opsbot-state"


@pytest.fixture
def settings() -> Settings:
    return Settings.from_env({"AWS_REGION": "us-east-1"})


# -- Slack: the real Bolt app, signed requests, a local Slack Web API server -------------------------

ONCALL_POLICY = {"rules": [{"allow": ["*"], "usergroups": ["S0ONCALL"], "description": "on-call engineers"}]}


@pytest.fixture
def slack_server() -> Iterator[LocalSlack]:
    """The local Slack Web API server; a test fails if the app sent anything Slack would reject."""
    server = local_slack().start()
    yield server
    server.stop()
    assert server.violations == [], f"Slack would have rejected: {server.violations}"


@pytest.fixture
def make_harness(state_table: str, slack_server: LocalSlack) -> Callable[..., SlackHarness]:
    """Build the app under test with extra environment (e.g. OPSBOT_POLICY=...)."""

    def make(**env: str) -> SlackHarness:
        return SlackHarness(slack_server, harness_settings(slack_server, **env))

    return make


@pytest.fixture
def harness(make_harness: Callable[..., SlackHarness]) -> SlackHarness:
    """The app with the on-call policy: members of S0ONCALL (alice) may do everything, others read."""
    return make_harness(OPSBOT_POLICY=json.dumps(ONCALL_POLICY))
