import pytest

from mash.identifiers import (
    is_valid_nhs_number,
    is_valid_upn,
    normalise_nhs_number,
    normalise_upn,
    upn_check_letter,
)


@pytest.mark.parametrize("number", ["9434765919", "4010232137", "9990548609"])
def test_valid_nhs_numbers_pass_the_modulus_11_check(number: str) -> None:
    assert is_valid_nhs_number(number)


@pytest.mark.parametrize("number", ["9434765918", "943476591", "94347659190", "943476591X", "", None])
def test_mistyped_or_malformed_nhs_numbers_fail(number: str | None) -> None:
    assert not is_valid_nhs_number(number)


def test_nhs_number_whose_check_digit_would_be_10_is_never_valid() -> None:
    # 123456789: weighted sum 210, 11 - 210 % 11 = 10, so no check digit makes it valid
    assert not any(is_valid_nhs_number(f"123456789{d}") for d in range(10))


def test_nhs_number_spacing_is_normalised() -> None:
    assert normalise_nhs_number(" 943 476-5919 ") == "9434765919"
    assert normalise_nhs_number("   ") is None


def test_upn_check_letter_matches_the_dfe_algorithm() -> None:
    assert upn_check_letter("801200005001") == "B"
    assert is_valid_upn("B801200005001")
    assert not is_valid_upn("A801200005001")


def test_temporary_upn_with_a_letter_in_position_13_is_checked() -> None:
    body = "80120000500A"
    assert is_valid_upn(upn_check_letter(body) + body)


@pytest.mark.parametrize("upn", ["B80120000500", "B80120000500I", "b801200005001x", "", None])
def test_malformed_upns_fail(upn: str | None) -> None:
    assert not is_valid_upn(upn)


def test_upn_is_normalised_to_upper_case_without_spaces() -> None:
    assert normalise_upn(" b8012 00005001 ") == "B801200005001"
