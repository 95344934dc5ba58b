"""Embedded defaults for running without an AWS account or a Slack workspace."""
