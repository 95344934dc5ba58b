from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from bot.core.dns.serial import HALF, MODULUS, Order, compare


def test_plain_order() -> None:
    assert compare(1, 2) is Order.BEFORE
    assert compare(2, 1) is Order.AFTER
    assert compare(7, 7) is Order.SAME


def test_wraparound_is_forwards() -> None:
    # 4294967295 -> 5 is a step forwards in RFC 1982, backwards for a plain integer comparison.
    assert compare(5, MODULUS - 1) is Order.AFTER
    assert compare(MODULUS - 1, 5) is Order.BEFORE


def test_exactly_half_apart_is_undefined() -> None:
    assert compare(0, HALF) is Order.UNDEFINED
    assert compare(HALF, 0) is Order.UNDEFINED
    assert compare(HALF - 1, 0) is Order.AFTER and compare(HALF + 1, 0) is Order.BEFORE


@given(st.integers(0, MODULUS - 1), st.integers(1, HALF - 1))
def test_any_increment_below_half_moves_forwards(serial: int, increment: int) -> None:
    later = (serial + increment) % MODULUS
    assert compare(later, serial) is Order.AFTER
    assert compare(serial, later) is Order.BEFORE


@given(st.integers(0, MODULUS - 1), st.integers(0, MODULUS - 1))
def test_compare_is_antisymmetric(a: int, b: int) -> None:
    forward, backward = compare(a, b), compare(b, a)
    mirror = {Order.BEFORE: Order.AFTER, Order.AFTER: Order.BEFORE}
    assert backward is mirror.get(forward, forward)
