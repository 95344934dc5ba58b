from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.core.dns.serial import HALF, MODULUS, Order, add, compare, is_after, is_before


def test_plain_order() -> None:
    assert compare(1, 2) is Order.BEFORE
    assert compare(2, 1) is Order.AFTER
    assert compare(7, 7) is Order.SAME


def test_wraparound_is_forwards() -> None:
    # 4294967295 -> 5 is a step forwards in RFC 1982, backwards for a plain integer comparison.
    assert is_after(5, MODULUS - 1)
    assert is_before(MODULUS - 1, 5)


def test_exactly_half_apart_is_undefined() -> None:
    assert compare(0, HALF) is Order.UNDEFINED
    assert compare(HALF, 0) is Order.UNDEFINED
    assert not is_before(0, HALF) and not is_after(0, HALF)


def test_add_wraps_and_bounds_the_increment() -> None:
    assert add(MODULUS - 1, 6) == 5
    with pytest.raises(ValueError):
        add(1, HALF)


@given(st.integers(0, MODULUS - 1), st.integers(1, HALF - 1))
def test_any_allowed_increment_moves_forwards(serial: int, increment: int) -> None:
    assert is_after(add(serial, increment), serial)
    assert is_before(serial, add(serial, increment))


@given(st.integers(0, MODULUS - 1), st.integers(0, MODULUS - 1))
def test_compare_is_antisymmetric(a: int, b: int) -> None:
    forward, backward = compare(a, b), compare(b, a)
    mirror = {Order.BEFORE: Order.AFTER, Order.AFTER: Order.BEFORE}
    assert backward is mirror.get(forward, forward)
