"""Which channel an alarm goes to: ``OPSBOT_ALARM_ROUTES``, first match wins, else ``OPSBOT_ALERT_CHANNEL``.

Pure. Routes are a JSON list of ``{"match": "<glob on the alarm name>" | "namespace:AWS/ApiGateway",
"channel": "C…"}``; the glob is ``fnmatch``'s, case-sensitive like alarm names.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from fnmatch import fnmatchcase

from bot.core.alarms.model import Alarm
from bot.errors import ConfigError

ROUTES_VARIABLE = "OPSBOT_ALARM_ROUTES"


@dataclass(frozen=True)
class Route:
    match: str
    channel: str

    def matches(self, alarm: Alarm) -> bool:
        if self.match.startswith("namespace:"):
            wanted = self.match[len("namespace:") :]
            return any(m.namespace == wanted for m in alarm.metrics)
        return fnmatchcase(alarm.name, self.match)


def parse_routes(raw: str) -> tuple[Route, ...]:
    """The routes of ``OPSBOT_ALARM_ROUTES``; a sentence naming the problem when it cannot be read."""
    if not raw.strip():
        return ()
    try:
        data = json.loads(raw)
    except ValueError as error:
        raise ConfigError(f"{ROUTES_VARIABLE} is not JSON ({error}).") from None
    if not isinstance(data, list):
        raise ConfigError(f'{ROUTES_VARIABLE} must be a JSON list of {{"match": …, "channel": …}} objects.')
    routes = []
    for number, item in enumerate(data, 1):
        if (
            not isinstance(item, dict)
            or not isinstance(item.get("match"), str)
            or not isinstance(item.get("channel"), str)
            or not item["match"]
            or not item["channel"]
        ):
            raise ConfigError(
                f'{ROUTES_VARIABLE}: route {number} needs a "match" (a glob on the alarm name or '
                f'"namespace:AWS/…") and a "channel" (a channel id).'
            )
        routes.append(Route(item["match"], item["channel"]))
    return tuple(routes)


def channel_for(alarm: Alarm, routes: tuple[Route, ...], default: str) -> str:
    """The first route that matches, else ``default`` (empty: the alarm is not posted)."""
    for route in routes:
        if route.matches(alarm):
            return route.channel
    return default
