"""Domain logic. No slack_bolt/slack_sdk imports; AWS only through bot.aws."""
