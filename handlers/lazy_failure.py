"""The Slack function's on-failure destination: lazy work Lambda dropped (too old) or that died."""

from bot.intake.lazy_failure import LazyFailureApp

handler = LazyFailureApp()
