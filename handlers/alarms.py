"""CloudWatch alarms: SNS/EventBridge -> SQS -> one Slack message per alarm episode, correlated."""

from bot.intake.alarms import AlarmsApp
from bot.observability import lambda_entry

handler = lambda_entry(AlarmsApp(), "alarms")
