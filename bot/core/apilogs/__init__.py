"""apilogs: correlated request lookup and live tail across API Gateway and its Lambda functions.

Entry points (one per subcommand, plain arguments + settings, result dataclasses):
``bot.core.apilogs.commands.lookup`` and ``bot.core.apilogs.commands.plan_tail``; failing requests
grouped by cause: ``bot.core.apilogs.errors.errors`` (the subcommand) and ``find_errors`` (for other
features, given an ``ApiStage`` and a window).

Modules: ``ids`` (what an id is, the time a UUID v1 encodes), ``formats`` (log line recognition),
``patterns`` (filter patterns re-checked on our side), ``correlate`` (pure correlation and merge),
``discovery`` (functions and log groups behind a stage), ``lookup`` and ``tail`` (the AWS-backed flows),
``links`` (console URLs).
"""
