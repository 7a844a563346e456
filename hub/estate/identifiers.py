"""National identifiers with real check digits, so a mistyped one is detectably wrong."""

from __future__ import annotations

import random

UPN_CHECK_LETTERS = "ABCDEFGHJKLMNPQRTUVWXYZ"


def nhs_check_digit(first_nine: str) -> int | None:
    """Modulus 11 check digit of an NHS number, or None when no digit makes it valid (10)."""
    total = sum(int(d) * (10 - i) for i, d in enumerate(first_nine))
    check = 11 - total % 11
    if check == 11:
        return 0
    return None if check == 10 else check


def new_nhs_number(rng: random.Random) -> str:
    """A ten-digit NHS number in the 9xx test range with a valid check digit."""
    while True:
        first_nine = "9" + "".join(str(rng.randrange(10)) for _ in range(8))
        check = nhs_check_digit(first_nine)
        if check is not None:
            return first_nine + str(check)


def break_nhs_number(value: str) -> str:
    """The same number with a check digit that fails the modulus 11 check."""
    # Only one digit satisfies the check for given first nine, so any other one fails.
    return value[:9] + str((int(value[9]) + 1) % 10)


def space_nhs_number(value: str) -> str:
    """'9434765919' -> '943 476 5919', the way it is printed on letters."""
    return f"{value[:3]} {value[3:6]} {value[6:]}"


def upn(la_code: str, estab: str, year: int, serial: int) -> str:
    """A Unique Pupil Number: check letter, LA (3), establishment (4), year (2), serial (3)."""
    digits = f"{la_code}{estab}{year % 100:02d}{serial % 1000:03d}"
    total = sum(int(d) * w for d, w in zip(digits, range(2, 14)))
    return UPN_CHECK_LETTERS[total % 23] + digits
