"""Strong identifiers of a child and their check characters.

Only an identifier whose check character is right is trusted for linking: a mistyped NHS number
that happens to belong to another child would otherwise put one child's events in another's
record.
"""

from __future__ import annotations

import re

_NHS = re.compile(r"^[0-9]{10}$")
_UPN = re.compile(r"^[A-Z][0-9]{11}[0-9A-Z]$")
# DfE UPN check letters: the 23 letters without I, O and S, indexed by the weighted sum mod 23.
_UPN_LETTERS = "ABCDEFGHJKLMNPQRTUVWXYZ"


def normalise_nhs_number(raw: str | None) -> str | None:
    """Digits only ("943 476 5919" and "943-476-5919" are the same number); None if blank."""
    if raw is None:
        return None
    digits = re.sub(r"[\s-]", "", raw)
    return digits or None


def is_valid_nhs_number(number: str | None) -> bool:
    """Modulus 11 check: weights 10..2 on the first nine digits; 10 is never issued."""
    if number is None or not _NHS.match(number):
        return False
    total = sum(int(d) * w for d, w in zip(number[:9], range(10, 1, -1), strict=True))
    check = 11 - total % 11
    if check == 11:
        check = 0
    return check != 10 and check == int(number[9])


def normalise_upn(raw: str | None) -> str | None:
    if raw is None:
        return None
    upn = re.sub(r"\s", "", raw).upper()
    return upn or None


def upn_check_letter(body: str) -> str:
    """The check letter for the 12 characters after it (positions 2 to 13, weights 2 to 13).

    A letter in position 13 (a temporary UPN) counts by its place in the check-letter table.
    """
    total = 0
    for weight, char in enumerate(body, start=2):
        value = int(char) if char.isdigit() else _UPN_LETTERS.index(char)
        total += value * weight
    return _UPN_LETTERS[total % 23]


def is_valid_upn(upn: str | None) -> bool:
    if upn is None or not _UPN.match(upn):
        return False
    if not upn[12].isdigit() and upn[12] not in _UPN_LETTERS:
        return False
    return upn[0] == upn_check_letter(upn[1:])
