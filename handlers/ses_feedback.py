"""SES bounce, complaint and delivery feedback: SNS -> the mailing table -> alerts in Slack."""

from bot.intake.ses_feedback import SesFeedbackApp
from bot.observability import lambda_entry

handler = lambda_entry(SesFeedbackApp(), "ses-feedback")
