"""Vault numbers: every error code, the display form, and what MOD 97-10 catches."""

from __future__ import annotations

import itertools
import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from stdnum import iban
from stdnum.iso7064 import mod_97_10

from registry import numbers
from registry.numbers import InvalidNumber, NumberError

ALLOCATORS = {"VLT1"}
ALPHABET = string.ascii_uppercase + string.digits
serials = st.integers(min_value=0, max_value=10**12 - 1).map(lambda n: f"{n:012d}")
allocator_codes = st.tuples(
    st.sampled_from(string.ascii_uppercase), st.text(ALPHABET, min_size=3, max_size=3)
).map("".join)
countries = st.text(string.ascii_uppercase, min_size=2, max_size=2)


def code_of(value: str, allocators=ALLOCATORS) -> NumberError:
    with pytest.raises(InvalidNumber) as caught:
        numbers.parse(value, allocators)
    return caught.value.code


def test_design_example_is_valid_and_displays_in_groups_of_four():
    # given the number printed in DESIGN.md
    number = numbers.parse("FR97 VLT1 0123 4567 8901")
    # then it is normalised, split into its parts, and displayed in groups of four
    assert number.value == "FR97VLT101234567890" + "1"
    assert (number.country, number.check_digits, number.allocator, number.serial) == (
        "FR",
        "97",
        "VLT1",
        "012345678901",
    )
    assert number.display == "FR97 VLT1 0123 4567 8901"


@pytest.mark.parametrize(
    "typed",
    [
        "fr97vlt1012345678901",
        "FR97-VLT1-0123-4567-8901",
        "fr97.vlt1.0123.4567.8901",
        " FR97\u00a0VLT1\u202f0123 4567\t8901 ",
        "Fr97 vLt1 0123-4567.8901",
    ],
)
def test_any_typed_form_normalises_to_the_same_number(typed):
    assert numbers.parse(typed, ALLOCATORS).value == "FR97VLT1012345678901"


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("", NumberError.EMPTY),
        (" - . ", NumberError.EMPTY),
        ("FR97 VLT1 0123 4567 890!", NumberError.INVALID_CHARACTERS),
        ("FR97 VLT1 0123 4567 89É1", NumberError.INVALID_CHARACTERS),
        ("FR97_VLT1012345678901", NumberError.INVALID_CHARACTERS),
        ("FR97 VLT1 0123 4567 890", NumberError.INVALID_LENGTH),
        ("FR97 VLT1 0123 4567 89012", NumberError.INVALID_LENGTH),
        ("1R97 VLT1 0123 4567 8901", NumberError.INVALID_COUNTRY),
        ("FR97 1LT1 0123 4567 8901", NumberError.INVALID_ALLOCATOR),
        ("FR97 VLT1 0123 4567 890A", NumberError.INVALID_SERIAL),
        ("FR98 VLT1 0123 4567 8901", NumberError.INVALID_CHECK_DIGITS),
        ("FRA7 VLT1 0123 4567 8901", NumberError.INVALID_CHECK_DIGITS),
        (numbers.make("FR", "ZZZ9", "012345678901").value, NumberError.UNKNOWN_ALLOCATOR),
    ],
)
def test_every_error_code(value, code):
    assert code_of(value) == code


def test_every_error_code_has_a_message():
    for code in NumberError:
        assert InvalidNumber(code).message


def test_a_vault_number_is_not_an_iban():
    # given a valid vault number, then no IBAN validator accepts it (20 characters, not 27)
    number = numbers.make("FR", "VLT1", "012345678901").value
    assert not iban.is_valid(number)


@given(countries, allocator_codes, serials)
def test_check_digits_are_iban_style_mod_97_10(country, allocator, serial):
    # given any parts, when the number is made, then rotating the first four to the end is 1 mod 97
    number = numbers.make(country, allocator, serial).value
    assert mod_97_10.checksum(number[4:] + number[:4]) == 1
    assert numbers.parse(number, {allocator}).value == number


@settings(max_examples=300, deadline=None)
@given(countries, allocator_codes, serials)
def test_every_single_character_substitution_is_rejected(country, allocator, serial):
    # given a valid number of a federation that knows its allocator code
    number = numbers.make(country, allocator, serial).value
    # when any one character is replaced by any other letter or digit, then it is refused
    for position in range(len(number)):
        for character in ALPHABET:
            if character == number[position]:
                continue
            typo = number[:position] + character + number[position + 1 :]
            assert not numbers.is_valid(typo, {allocator}), typo


@settings(max_examples=300, deadline=None)
@given(countries, allocator_codes, serials)
def test_every_adjacent_transposition_is_rejected(country, allocator, serial):
    number = numbers.make(country, allocator, serial).value
    for position in range(len(number) - 1):
        a, b = number[position], number[position + 1]
        if a == b:
            continue
        typo = number[:position] + b + a + number[position + 2 :]
        assert not numbers.is_valid(typo, {allocator}), typo


def test_draw_is_random_valid_and_not_sequential():
    drawn = [numbers.draw("FR", "VLT1") for _ in range(200)]
    assert all(numbers.is_valid(n.value, ALLOCATORS) for n in drawn)
    serials_drawn = sorted(int(n.serial) for n in drawn)
    assert len(set(serials_drawn)) == 200
    gaps = {b - a for a, b in itertools.pairwise(serials_drawn)}
    assert gaps != {1}


def test_make_refuses_bad_parts():
    with pytest.raises(InvalidNumber):
        numbers.make("F1", "VLT1", "012345678901")
    with pytest.raises(InvalidNumber):
        numbers.make("FR", "VLT1", "1234")


near_numbers = st.builds(
    lambda n, pos, ch, sep: (n[:pos] + ch + n[pos + 1 :]).replace("", sep)[1:-1] if sep else n,
    st.builds(lambda s: numbers.make("FR", "VLT1", s).value, serials),
    st.integers(0, 19),
    st.sampled_from(ALPHABET),
    st.sampled_from(["", " ", "-", "."]),
)


@settings(max_examples=2000, deadline=None)
@given(st.one_of(near_numbers, st.text(max_size=30)))
def test_bulk_fast_path_agrees_with_the_stdnum_parser(value):
    # the routing plan's fast path accepts exactly what parse() accepts, with the same result
    expected = (
        numbers.parse(value, ALLOCATORS).value if numbers.is_valid(value, ALLOCATORS) else None
    )
    assert numbers.normalise_fast(value, ALLOCATORS) == expected
