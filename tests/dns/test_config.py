from __future__ import annotations

import contextlib
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.core.dns.config import (
    MasterAddress,
    ZoneConfig,
    find_zone,
    parse_event,
    parse_master,
    parse_zone_id,
    parse_zones,
)
from bot.core.dns.plan import Thresholds
from bot.errors import ConfigError, UsageError
from tests.support.events import load_event

ZONES = json.dumps(
    [
        {
            "domain": "Example.COM.",
            "master": "10.0.0.53",
            "zone_id": "/hostedzone/Z111",
            "ignore_ttl": "True",
        },
        {
            "domain": "corp.example.net",
            "master": "[fd00::53]:5353",
            "zone_id": "Z222",
            "tsig": "secretsmanager:opsbot/dns",
            "max_delete_percent": 5,
            "max_update_percent": "12.5",
            "guard_min_records": 0,
        },
    ]
)


def test_zones_are_parsed_and_normalised() -> None:
    first, second = parse_zones(ZONES)
    assert first == ZoneConfig("example.com.", MasterAddress("10.0.0.53"), "Z111", ignore_ttl=True)
    assert second.master == MasterAddress("fd00::53", 5353)
    assert second.tsig == "secretsmanager:opsbot/dns"
    assert second.max_delete_percent == 5
    assert second.thresholds == Thresholds(max_update_percent=12.5, max_delete_percent=5, min_records=0)
    assert first.thresholds == Thresholds(30, 30, 10)  # octoDNS's defaults
    assert str(second.master) == "[fd00::53]:5353"
    assert second.state_key == "dns:corp.example.net:Z222"


def test_no_zones() -> None:
    assert parse_zones("") == ()
    assert parse_zones("   ") == ()


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("{not json", "not valid JSON"),
        ('"text"', "must be a JSON list"),
        ("[1]", "entry 1 is not an object"),
        ('[{"domain": "a.com", "master": "10.0.0.1"}]', "a.com: 'zone_id' is missing"),
        ('[{"domain": "a.com", "master": "10.0.0.1:99999", "zone_id": "Z1"}]', "port"),
        ('[{"domain": "a.com", "master": "10.0.0.1", "zone_id": "not an id"}]', "hosted zone id"),
        (
            '[{"domain": "a.com", "master": "10.0.0.1", "zone_id": "Z1", "tsig": "c2VjcmV0"}]',
            "location of the key",
        ),
        (
            '[{"domain": "a.com", "master": "10.0.0.1", "zone_id": "Z1", "ignoreTTL": true}]',
            "Unknown key 'ignoreTTL'",
        ),
        (
            '[{"domain": "a.com", "master": "10.0.0.1", "zone_id": "Z1", "ignore_ttl": "maybe"}]',
            "true or false",
        ),
        (
            '[{"domain": "a.com", "master": "10.0.0.1", "zone_id": "Z1", "max_update_percent": 120}]',
            "max_update_percent must be a number from 0 to 100, got 120",
        ),
        (
            '[{"domain": "a.com", "master": "10.0.0.1", "zone_id": "Z1", "guard_min_records": 2.5}]',
            "guard_min_records must be a whole number, got 2.5",
        ),
        (
            '[{"domain": "a.com", "master": "h", "zone_id": "Z1"}, {"domain": "A.com.", "master": "h", "zone_id": "Z1"}]',
            "twice",
        ),
    ],
)
def test_bad_configuration_is_explained(text: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_zones(text)
    assert fragment in str(caught.value)
    assert str(caught.value).startswith("OPSBOT_DNS_ZONES")


def test_a_tsig_secret_in_the_config_is_not_echoed() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_zones('[{"domain": "a.com", "master": "h", "zone_id": "Z1", "tsig": "' + "s" * 80 + '"}]')
    assert "s" * 61 not in str(caught.value)


@pytest.mark.parametrize(
    ("text", "address"),
    [
        ("10.0.0.53", MasterAddress("10.0.0.53", 53)),
        ("10.0.0.53:5353", MasterAddress("10.0.0.53", 5353)),
        ("NS1.Corp.Example.", MasterAddress("ns1.corp.example", 53)),
        ("[::1]:1053", MasterAddress("::1", 1053)),
        ("fd00:0::53", MasterAddress("fd00::53", 53)),
    ],
)
def test_master_addresses(text: str, address: MasterAddress) -> None:
    assert parse_master(text) == address


@pytest.mark.parametrize(
    "bad", ["", "10.0.0.1:", "10.0.0.1:0", "[::1", "[::1]x", "300.1.1.1", "a b", "::g", "h:p"]
)
def test_bad_master_addresses(bad: str) -> None:
    with pytest.raises(UsageError):
        parse_master(bad)


def test_zone_ids() -> None:
    assert parse_zone_id("/hostedzone/Z0123ABC") == "Z0123ABC"
    with pytest.raises(UsageError):
        parse_zone_id("z-lower")


def test_find_zone() -> None:
    zones = parse_zones(ZONES)
    assert find_zone(zones, "EXAMPLE.com").zone_id == "Z111"
    with pytest.raises(UsageError, match=r"Configured: example.com, corp.example.net"):
        find_zone(zones, "other.org")
    with pytest.raises(UsageError, match=r"`example.com` with hosted zone Z222 is not a configured zone"):
        find_zone(zones, "example.com", zone_id="Z222")


def test_one_domain_in_two_hosted_zones_needs_the_zone_id() -> None:
    zones = parse_zones(
        '[{"domain": "example.com", "master": "10.0.0.53", "zone_id": "Z111"},'
        ' {"domain": "example.com", "master": "10.0.0.53", "zone_id": "Z222"}]'
    )
    with pytest.raises(UsageError, match=r"several hosted zones \(Z111, Z222\); give --zone-id"):
        find_zone(zones, "example.com")
    assert find_zone(zones, "example.com", zone_id="/hostedzone/Z222") == zones[1]
    # The template's schedules name the hosted zone too, so each runs its own zone.
    for zone in zones:
        (request,) = parse_event({"domain": "example.com", "zone_id": zone.zone_id}, zones)
        assert request.zone == zone and not request.force
    with pytest.raises(UsageError, match="several hosted zones"):
        parse_event({"domain": "example.com"}, zones)
    with pytest.raises(UsageError, match=r"`example\.com` with hosted zone Z333 is not a configured zone"):
        parse_event({"domain": "example.com", "zone_id": "Z333"}, zones)
    with pytest.raises(UsageError, match="hosted zone id must be text"):
        parse_event({"domain": "example.com", "zone_id": 5}, zones)


def test_a_key_pasted_where_its_location_belongs_is_not_repeated() -> None:
    secret = "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0"
    with pytest.raises(ConfigError) as caught:
        parse_zones(
            json.dumps([{"domain": "a.org", "master": "h", "zone_id": "Z1", "tsig": f"xfer:{secret}"}])
        )
    assert "tsig must be file:PATH" in str(caught.value) and secret not in str(caught.value)


# -- events ----------------------------------------------------------------------------------------


def test_the_original_event_is_accepted_unchanged() -> None:
    (request,) = parse_event(load_event("dns_mirror_original"), ())
    assert request.zone.domain == "example.com."
    assert request.zone.master == MasterAddress("10.0.0.53")
    assert request.zone.zone_id == "AA11BB22CC33DD"
    assert request.zone.ignore_ttl is False
    assert not request.force


def test_the_original_event_borrows_the_tsig_key_of_a_configured_zone() -> None:
    zones = parse_zones('[{"domain": "example.com", "master": "h", "zone_id": "Z1", "tsig": "file:/k"}]')
    event = load_event("dns_mirror_original")
    event["IgnoreTTL"] = "True"
    (request,) = parse_event(event, zones)
    assert request.zone.tsig == "file:/k" and request.zone.ignore_ttl


def test_our_event_names_a_configured_zone() -> None:
    zones = parse_zones(ZONES)
    (request,) = parse_event(load_event("dns_mirror_zone"), zones)
    assert request.zone == zones[0]
    event = {**load_event("dns_mirror_zone"), "force": True, "ignore_ttl": False}
    (forced,) = parse_event(event, zones)
    assert forced.force and not forced.zone.ignore_ttl


def test_a_scheduled_event_without_input_mirrors_every_zone() -> None:
    zones = parse_zones(ZONES)
    requests = parse_event(load_event("eventbridge_scheduled"), zones)
    assert [r.zone for r in requests] == list(zones)


@pytest.mark.parametrize(
    "event",
    [
        [],
        {},
        {"Domain": "example.com", "MasterDns": "10.0.0.53"},
        {"Domain": 5, "MasterDns": "10.0.0.53", "ZoneId": "Z1"},
        {"domain": "unknown.org"},
        {"domain": "example.com", "force": "perhaps"},
    ],
)
def test_unusable_events_raise_usage_errors(event: object) -> None:
    with pytest.raises(UsageError):
        parse_event(event, parse_zones(ZONES))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=12), children, max_size=6)
    ),
    max_leaves=12,
)
zone_keys = st.sampled_from(
    [
        "domain",
        "master",
        "zone_id",
        "tsig",
        "ignore_ttl",
        "timeout",
        "max_delete_percent",
        "max_update_percent",
        "guard_min_records",
    ]
)
zone_objects = st.dictionaries(
    zone_keys, json_values | st.sampled_from(["example.com", "10.0.0.1", "Z1", "file:/k"])
)


@given(st.one_of(st.text(max_size=60), st.lists(zone_objects, max_size=3).map(json.dumps)))
def test_zone_parsing_raises_only_config_errors(text: str) -> None:
    with contextlib.suppress(ConfigError):
        parse_zones(text)


@given(
    st.one_of(
        json_values,
        zone_objects,
        st.dictionaries(st.sampled_from(["Domain", "MasterDns", "ZoneId", "IgnoreTTL"]), json_values),
    )
)
def test_event_parsing_raises_only_usage_errors(event: object) -> None:
    with contextlib.suppress(UsageError):
        parse_event(event, parse_zones(ZONES))


@given(st.text(max_size=40))
def test_master_parsing_raises_only_usage_errors(text: str) -> None:
    with contextlib.suppress(UsageError):
        parse_master(text)
