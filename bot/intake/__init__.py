"""Event intake: the Lambda apps fed by AWS events rather than by Slack (SES feedback through SNS/SQS).

Like ``bot.listeners`` for Slack, an intake app parses the event, calls ``bot.core`` and posts what
``bot.render`` made of the result; ``handlers/`` builds one at import and delegates to it.
"""
