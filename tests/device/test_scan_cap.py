"""A selective /device list on a big catalog reads at most a few pages per answer, says so, and goes on."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bot.aws.clients import client
from bot.aws.devices import scan_devices
from bot.config import Settings
from bot.core.device.commands import DeviceFilters, list_devices
from bot.render.device import page_text


def _catalog(put_device: Callable[..., dict[str, Any]], plain: int, rare: int) -> None:
    for n in range(plain):
        put_device(f"SN-{n:06d}", "ID-A", type="sensor", activated="false")
    for n in range(rare):
        put_device(f"SN-R{n:05d}", "ID-A", type="gateway", activated="false")


def test_a_selective_scan_stops_at_its_page_cap_and_continues_without_skipping(
    device_settings: Settings, put_device: Callable[..., dict[str, Any]]
) -> None:
    _catalog(put_device, plain=120, rare=7)
    calls: list[int] = []
    client("dynamodb").meta.events.register(
        "provide-client-params.dynamodb.Scan", lambda **_: calls.append(1)
    )
    seen: list[str] = []
    start = None
    rounds = 0
    while True:
        page = scan_devices(
            "iotCatalog", device_type="gateway", limit=5, start_after=start, page_size=10, max_requests=3
        )
        rounds += 1
        assert page.requests <= 3
        seen += [str(item["serialNumber"]) for item, _ in page.items]
        if page.next_key is None:
            break
        assert page.partial or len(page.items) == 5
        start = page.next_key
    assert sorted(seen) == [f"SN-R{n:05d}" for n in range(7)] and len(set(seen)) == 7
    assert rounds > 2 and len(calls) <= 3 * rounds  # bounded per answer, every page read once overall


def test_a_partial_page_says_so_and_offers_to_go_on(
    device_settings: Settings, put_device: Callable[..., dict[str, Any]], monkeypatch: Any
) -> None:
    import bot.aws.devices as devices

    _catalog(put_device, plain=60, rare=1)
    original = devices.scan_devices
    monkeypatch.setattr(
        devices, "scan_devices", lambda *a, **k: original(*a, **{**k, "page_size": 10, "max_requests": 2})
    )
    page = list_devices(device_settings, DeviceFilters(type="gateway", limit=5))
    assert page.partial and page.next_cursor and page.to_json()["partial"] is True
    text = page_text(page)
    assert "Stopped after reading 2 pages of the catalog" in text and f"--cursor {page.next_cursor}" in text
