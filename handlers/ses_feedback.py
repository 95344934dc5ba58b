"""SES bounce, complaint and delivery feedback: SNS -> the mailing table -> alerts in Slack."""

from bot.mail_feedback_app import SesFeedbackApp

handler = SesFeedbackApp()
