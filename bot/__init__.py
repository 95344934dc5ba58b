"""opsbot: a Slack bot and CLI for serverless operations."""

__version__ = "0.1.0"
