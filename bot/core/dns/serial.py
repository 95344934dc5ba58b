"""SOA serial arithmetic of RFC 1982 (32-bit serial numbers that wrap around).

A serial is "greater" than another when it is less than 2**31 steps ahead of it modulo 2**32; two serials
exactly 2**31 apart are not comparable. The original mirror compared serials as plain integers, so a
master whose serial wrapped (4294967295 -> 5) looked as if it had gone backwards.
"""

from __future__ import annotations

from enum import Enum

from dns.serial import Serial

SERIAL_BITS = 32
MODULUS = 1 << SERIAL_BITS
HALF = 1 << (SERIAL_BITS - 1)


class Order(Enum):
    BEFORE = -1
    SAME = 0
    AFTER = 1
    UNDEFINED = 2


def compare(a: int, b: int) -> Order:
    """Where ``a`` stands relative to ``b`` in RFC 1982 order: dnspython's arithmetic, with the case its
    ``Serial`` leaves implicit (exactly 2**31 apart: neither before nor after) named."""
    left, right = Serial(a, SERIAL_BITS), Serial(b, SERIAL_BITS)
    if left == right:
        return Order.SAME
    if left > right:
        return Order.AFTER
    if left < right:
        return Order.BEFORE
    return Order.UNDEFINED
