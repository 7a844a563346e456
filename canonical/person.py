"""The canonical Person: what any legacy system may say about a child, parent or carer.

Each value carries the period it was true for, because legacy systems hold
history (previous names, old addresses) and the golden record must choose the
current one with its provenance.
"""

from __future__ import annotations

import datetime as dt
import re

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from canonical.codes import AddressType, ContactKind, DatePrecision, IdentifierScheme, NameType, Sex


class CanonicalModel(BaseModel):
    """Base of every canonical value: immutable and strict about unknown fields."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)


class Period(CanonicalModel):
    start: dt.date | None = None
    end: dt.date | None = None

    @model_validator(mode="after")
    def _ordered(self) -> "Period":
        if self.start and self.end and self.end < self.start:
            raise ValueError(f"period ends ({self.end}) before it starts ({self.start})")
        return self

    def is_current(self, on: dt.date | None = None) -> bool:
        on = on or dt.date.today()
        return (self.start is None or self.start <= on) and (self.end is None or self.end >= on)


class PersonName(CanonicalModel):
    given: str | None = None
    middle: str | None = None
    family: str | None = None
    type: NameType = NameType.LEGAL
    period: Period | None = None

    @model_validator(mode="after")
    def _something(self) -> "PersonName":
        if not (self.given or self.family):
            raise ValueError("a name needs a given or a family name")
        return self

    @property
    def full(self) -> str:
        return " ".join(p for p in (self.given, self.middle, self.family) if p)


class PartialDate(CanonicalModel):
    """A date some systems know only to the month or year (`precision`)."""

    value: dt.date
    precision: DatePrecision = DatePrecision.DAY

    @field_validator("value")
    @classmethod
    def _plausible(cls, v: dt.date) -> dt.date:
        if v.year < 1900 or v > dt.date.today() + dt.timedelta(days=366):
            raise ValueError(f"date {v.isoformat()} is not plausible")
        return v


NHS_NUMBER = re.compile(r"^\d{10}$")
UPN = re.compile(r"^[A-Z]\d{11}[0-9A-Z]$")


def nhs_number_is_valid(value: str) -> bool:
    """Modulus 11 check digit of an NHS number."""
    if not NHS_NUMBER.match(value):
        return False
    total = sum(int(d) * (10 - i) for i, d in enumerate(value[:9]))
    check = 11 - total % 11
    check = 0 if check == 11 else check
    return check != 10 and check == int(value[9])


class Identifier(CanonicalModel):
    scheme: IdentifierScheme
    value: str
    issuer: str | None = Field(None, description="system that issued a local identifier")

    @field_validator("value")
    @classmethod
    def _no_spaces(cls, v: str) -> str:
        v = v.replace(" ", "").replace("-", "") if v.replace(" ", "").replace("-", "").isdigit() else v
        if not v:
            raise ValueError("identifier value is empty")
        return v

    @model_validator(mode="after")
    def _scheme_rules(self) -> "Identifier":
        if self.scheme == IdentifierScheme.NHS_NUMBER and not nhs_number_is_valid(self.value):
            raise ValueError(f"NHS number {self.value!r} fails its check digit")
        if self.scheme == IdentifierScheme.UPN and not UPN.match(self.value.upper()):
            raise ValueError(f"UPN {self.value!r} is not a letter, 11 digits and a check character")
        if self.scheme == IdentifierScheme.LOCAL and not self.issuer:
            raise ValueError("a local identifier needs the issuing system")
        return self


POSTCODE = re.compile(r"^([A-Z]{1,2}\d[A-Z\d]?) ?(\d[A-Z]{2})$")


def normalise_postcode(raw: str) -> str:
    """Upper case, single space before the inward code; raises on a malformed postcode."""
    compact = raw.upper().replace(" ", "")
    m = POSTCODE.match(compact)
    if not m:
        raise ValueError(f"postcode {raw!r} is not a UK postcode")
    return f"{m.group(1)} {m.group(2)}"


class Address(CanonicalModel):
    lines: tuple[str, ...] = ()
    town: str | None = None
    postcode: str | None = None
    uprn: str | None = None
    type: AddressType = AddressType.HOME
    period: Period | None = None

    @field_validator("postcode")
    @classmethod
    def _postcode(cls, v: str | None) -> str | None:
        return normalise_postcode(v) if v else None

    @field_validator("uprn")
    @classmethod
    def _uprn(cls, v: str | None) -> str | None:
        if v and not (v.isdigit() and len(v) <= 12):
            raise ValueError(f"UPRN {v!r} must be up to 12 digits")
        return v or None


class ContactDetail(CanonicalModel):
    kind: ContactKind
    value: str
    period: Period | None = None


class Person(CanonicalModel):
    names: tuple[PersonName, ...] = Field(..., min_length=1)
    birth_date: PartialDate | None = None
    death_date: dt.date | None = None
    sex: Sex = Sex.UNKNOWN
    identifiers: tuple[Identifier, ...] = ()
    addresses: tuple[Address, ...] = ()
    contacts: tuple[ContactDetail, ...] = ()
    ethnicity: str | None = Field(None, description="sensitive: shown only where the policy allows")
    first_language: str | None = None
    health_conditions: tuple[str, ...] = Field((), description="sensitive: health")

    @property
    def current_name(self) -> PersonName:
        legal = [n for n in self.names if n.type == NameType.LEGAL and (n.period is None or n.period.end is None)]
        return (legal or list(self.names))[0]

    @property
    def current_address(self) -> Address | None:
        current = [a for a in self.addresses if a.period is None or a.period.end is None]
        return (current or list(self.addresses) or [None])[0]

    def identifier(self, scheme: IdentifierScheme) -> str | None:
        return next((i.value for i in self.identifiers if i.scheme == scheme), None)
