"""The Slack function's on-failure destination: lazy work Lambda dropped (too old) or that died."""

from bot.intake.lazy_failure import LazyFailureApp
from bot.observability import lambda_entry

handler = lambda_entry(LazyFailureApp(), "lazy-failure")
