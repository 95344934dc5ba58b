"""What the event-driven intakes (SES feedback, alarms) share: settings read on first use, a poster made
on first use, and the answer Lambda's SQS event source expects (ReportBatchItemFailures)."""

from __future__ import annotations

from typing import Any

from bot.config import Settings, apply_log_level


class IntakeApp:
    """A callable Lambda handler; subclasses give ``handle`` (returning a report with ``failed_messages``
    and ``to_json()``) and ``make_poster``."""

    def __init__(self, settings: Settings | None = None, *, poster: Any = None) -> None:
        self._settings = settings
        self._poster = poster

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = Settings.from_env()
        return self._settings

    @property
    def poster(self) -> Any:
        if self._poster is None:
            self._poster = self.make_poster(self.settings)
        return self._poster

    def make_poster(self, settings: Settings) -> Any:
        raise NotImplementedError

    def handle(self, event: Any, context: Any = None) -> Any:
        """``context``: Lambda's (its ARN says which account the function runs in), None elsewhere."""
        raise NotImplementedError

    def __call__(self, event: Any, context: Any = None) -> dict[str, Any]:
        apply_log_level(self.settings)
        report = self.handle(event, context)
        if from_sqs(event):
            # The SQS event source (ReportBatchItemFailures) delivers again only the messages named here.
            return {"batchItemFailures": [{"itemIdentifier": i} for i in report.failed_messages]}
        result: dict[str, Any] = report.to_json()
        return result


def from_sqs(event: Any) -> bool:
    records = event.get("Records") if isinstance(event, dict) else None
    return isinstance(records, list) and any(
        isinstance(r, dict) and r.get("eventSource") == "aws:sqs" for r in records
    )
