"""fanout: the stream fan-out mappings of the ``aws-lambda-fanout`` targets table.

Entry points (what ``bot.listeners.fanout`` and ``bot.cli.fanout`` call): ``commands``
(``list_mappings``, ``check``, ``resolve_target``, ``set_active``), over ``bot.aws.fanout``.
"""
