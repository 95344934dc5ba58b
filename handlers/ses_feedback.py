"""SES bounce, complaint and delivery feedback: SNS -> the mailing table -> alerts in Slack."""

from bot.aws.targets import in_event_account
from bot.intake.ses_feedback import SesFeedbackApp
from bot.observability import lambda_entry

handler = lambda_entry(in_event_account(SesFeedbackApp(), "ses-feedback"), "ses-feedback")
