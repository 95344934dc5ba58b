"""Domain logic, one package per capability, the same shape in each.

``bot.core.<capability>.commands`` is what the Slack listener (``bot.listeners.<capability>``) and the CLI
(``bot.cli.<capability>``) call: one function per subcommand, plain arguments and settings in, a result
dataclass out. The other modules of a package are its pure parts (parsers, planners, state machines) and
the orchestration over ``bot.aws``. No slack_bolt/slack_sdk imports and no ``bot.render``,
``bot.listeners`` or ``bot.cli`` imports: core returns data, the caller renders.
"""
