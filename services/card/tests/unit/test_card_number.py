"""Card numbers: shape, Damm check digit, and what it catches."""

from __future__ import annotations

import pytest
from card.domain.card_number import card_number, check_digit, is_valid_card_number
from hypothesis import given
from hypothesis import strategies as st


def test_a_card_number_is_the_intake_year_a_serial_and_a_check_digit() -> None:
    assert check_digit("572") == "4"  # the published example of Damm's algorithm
    assert card_number(2026, 17) == "2026000177"
    assert card_number(2026, 1) == "2026000014"
    assert card_number(2026, 123456) == "20261234565"
    assert all(is_valid_card_number(card_number(2026, n)) for n in range(1, 500))


@pytest.mark.parametrize(
    "value",
    ["2026000170", "2026000178", "2026000717", "", "2026-00017", "202600017x", "1234567", "1" * 17],
)
def test_wrong_check_digits_and_shapes_are_refused(value: str) -> None:
    assert not is_valid_card_number(value)


def test_the_payload_must_be_ascii_digits() -> None:
    with pytest.raises(ValueError, match="digits only"):
        check_digit("20\uff126")
    with pytest.raises(ValueError, match="start at 1"):
        card_number(2026, 0)
    with pytest.raises(ValueError, match="four digits"):
        card_number(126, 1)


serials = st.integers(min_value=1, max_value=99_999_999)


@given(serial=serials, position=st.integers(min_value=0), delta=st.integers(1, 9))
def test_every_single_digit_error_is_detected(serial: int, position: int, delta: int) -> None:
    number = card_number(2026, serial)
    i = position % len(number)
    typo = number[:i] + str((int(number[i]) + delta) % 10) + number[i + 1 :]
    assert not is_valid_card_number(typo)


@given(serial=serials, position=st.integers(min_value=0))
def test_every_swap_of_adjacent_different_digits_is_detected(serial: int, position: int) -> None:
    number = card_number(2026, serial)
    i = position % (len(number) - 1)
    if number[i] == number[i + 1]:
        return
    swapped = number[:i] + number[i + 1] + number[i] + number[i + 2 :]
    assert not is_valid_card_number(swapped)


def test_swaps_that_luhn_and_mod_11_10_miss_are_caught() -> None:
    # 09 <-> 90 is the classic transposition Luhn cannot see.
    number = card_number(2026, 9)
    assert number[-3:-1] == "09"
    assert not is_valid_card_number(number[:-3] + "90" + number[-1])
    # ISO 7064 MOD 11,10 would accept 2026309008 for 2026390008.
    number = card_number(2026, 39000)
    assert not is_valid_card_number(number[:5] + number[6] + number[5] + number[7:])
