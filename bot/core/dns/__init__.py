"""Mirror an on-premises DNS zone into a Route 53 hosted zone.

The pure parts (no I/O): ``serial`` (RFC 1982 arithmetic), ``names`` and ``records`` (normalising both
sides to one canonical form), ``plan`` (the diff, the batches within Route 53's limits, the guards and the
client-side validation of a batch), ``config`` (``OPSBOT_DNS_ZONES``, events, master addresses) and
``tsig`` (key file formats). The edges: ``transfer`` (SOA query and AXFR with dnspython) and ``commands``
(the orchestration the CLI, the Slack listener and the scheduled handler call), which reaches Route 53
only through ``bot.aws.route53``.
"""
