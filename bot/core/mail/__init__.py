"""mail: the bounce/complaint state of e-mail addresses, fed by SES notifications.

Entry points (what ``bot.listeners.mail``, ``bot.cli.mail`` and the SES intake call): ``commands``
(``record_event``, ``status``, ``list_addresses``, ``stats``, ``reenable``, ``suppress``).

Modules: ``feedback`` (parsing SNS/SES notifications, address normalisation), ``state`` (the per-address
state machine, independent of arrival order), ``alerts`` (which alerts to post, the bounce-storm digest),
``commands`` (the orchestration over ``bot.aws.mailing``). The Lambda app that feeds it is
``bot.intake.ses_feedback``.
"""
