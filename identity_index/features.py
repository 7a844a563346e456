"""What the identity index looks at in a person record: normalised names, dates,
sex, postcodes and strong identifiers, extracted once from the canonical JSON.

`PersonFeatures` is small, immutable and JSON-serialisable (`to_json`/`from_json`)
so the hub can store it beside each record and never re-parse canonical JSON to
compare candidates.
"""

from __future__ import annotations

import datetime as dt
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

LEGAL_TYPES = ("legal", "birth", "preferred", "alias", "previous")


# Every ASCII character but a-z, deleted by `str.translate` (an ASCII name needs no folding).
_ASCII_NOT_LETTERS = {c: None for c in range(128) if not ord("a") <= c <= ord("z")}


@lru_cache(maxsize=1 << 16)
def normalise_name(value: str | None) -> str:
    """Lower-case letters only, accents folded: "O'Brien-Smith" → "obriensmith". Remembered:
    names repeat (a bulk link normalises each record's names, ~8 % of its clustering at 100,000
    people, almost all of them seen before)."""
    if not value:
        return ""
    if value.isascii():
        return value.lower().translate(_ASCII_NOT_LETTERS)
    folded = unicodedata.normalize("NFKD", value)
    return "".join(ch for ch in folded.lower() if "a" <= ch <= "z")


@lru_cache(maxsize=1 << 16)
def name_parts(value: str | None) -> tuple[str, ...]:
    """The parts of a hyphenated or double-barrelled name, each normalised."""
    if not value:
        return ()
    pieces = value.replace("-", " ").replace("'", "").split()
    return tuple(p for p in (normalise_name(x) for x in pieces) if p)


def normalise_phone(value: str | None) -> str:
    """Digits of a UK number in national form: "+44 7700 900123" → "07700900123"; "" if too short."""
    digits = "".join(ch for ch in (value or "") if ch.isdigit())
    if digits.startswith("44") and len(digits) >= 12:
        digits = "0" + digits[2:]
    return digits if len(digits) >= 9 else ""


def compact_postcode(value: str | None) -> str:
    return (value or "").upper().replace(" ", "")


@dataclass(frozen=True, slots=True)
class PersonFeatures:
    """The comparable facts of one person record (`ref` is its source-record key)."""

    ref: str
    given: str = ""
    family: str = ""
    middle: str = ""
    given_alts: frozenset[str] = field(default_factory=frozenset)
    family_alts: frozenset[str] = field(default_factory=frozenset)
    dob: dt.date | None = None
    dob_precision: str = "day"
    sex: str | None = None
    postcode: str = ""
    postcodes: frozenset[str] = field(default_factory=frozenset)
    uprn: str = ""
    nhs: str = ""
    upn: str = ""
    phones: frozenset[str] = field(default_factory=frozenset)

    @property
    def given_initial(self) -> str:
        return self.given[:1]

    def to_json(self) -> dict[str, Any]:
        return {"ref": self.ref, "given": self.given, "family": self.family, "middle": self.middle,
                "given_alts": sorted(self.given_alts), "family_alts": sorted(self.family_alts),
                "dob": self.dob.isoformat() if self.dob else None, "dob_precision": self.dob_precision,
                "sex": self.sex, "postcode": self.postcode, "postcodes": sorted(self.postcodes),
                "uprn": self.uprn, "nhs": self.nhs, "upn": self.upn, "phones": sorted(self.phones)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PersonFeatures:
        dob = data.get("dob")
        return cls(ref=data["ref"], given=data.get("given", ""), family=data.get("family", ""),
                   middle=data.get("middle", ""), given_alts=frozenset(data.get("given_alts", ())),
                   family_alts=frozenset(data.get("family_alts", ())),
                   dob=dt.date.fromisoformat(dob) if dob else None,
                   dob_precision=data.get("dob_precision", "day"), sex=data.get("sex"),
                   postcode=data.get("postcode", ""), postcodes=frozenset(data.get("postcodes", ())),
                   uprn=data.get("uprn", ""), nhs=data.get("nhs", ""), upn=data.get("upn", ""),
                   phones=frozenset(data.get("phones", ())))


def features_from_canonical(ref: str, person: dict[str, Any]) -> PersonFeatures:
    """Extract the features of a canonical Person given as JSON (as stored and sent on the bus)."""
    names = list(person.get("names") or [])
    current = _current_name(names)
    given = normalise_name(current.get("given"))
    family = normalise_name(current.get("family"))
    given_alts: set[str] = set()
    family_alts: set[str] = set(name_parts(current.get("family")))
    for n in names:
        g, f = normalise_name(n.get("given")), normalise_name(n.get("family"))
        if g:
            given_alts.add(g)
        if f:
            family_alts.add(f)
            family_alts.update(name_parts(n.get("family")))
    given_alts.discard(given)
    family_alts.discard(family)
    birth = person.get("birth_date") or {}
    dob = dt.date.fromisoformat(birth["value"]) if birth.get("value") else None
    sex = person.get("sex")
    addresses = list(person.get("addresses") or [])
    current_address = _current_address(addresses)
    postcodes = {compact_postcode(a.get("postcode")) for a in addresses if a.get("postcode")}
    idents = {i.get("scheme"): str(i.get("value", "")) for i in person.get("identifiers") or []
              if i.get("scheme") in ("nhs_number", "upn")}
    return PersonFeatures(
        ref=ref, given=given, family=family, middle=normalise_name(current.get("middle")),
        given_alts=frozenset(given_alts), family_alts=frozenset(family_alts),
        dob=dob, dob_precision=birth.get("precision", "day") if dob else "day",
        sex=sex if sex in ("male", "female") else None,
        postcode=compact_postcode(current_address.get("postcode")) if current_address else "",
        postcodes=frozenset(postcodes), uprn=(current_address or {}).get("uprn") or "",
        nhs=idents.get("nhs_number", ""), upn=idents.get("upn", "").upper(),
        phones=frozenset(p for p in (normalise_phone(c.get("value")) for c in person.get("contacts") or []
                                     if c.get("kind") in ("phone", "mobile")) if p))


def _current_name(names: list[dict[str, Any]]) -> dict[str, Any]:
    live = [n for n in names if not (n.get("period") or {}).get("end")]
    for kind in LEGAL_TYPES:
        for n in live:
            if n.get("type", "legal") == kind:
                return n
    return (live or names or [{}])[0]


def _current_address(addresses: list[dict[str, Any]]) -> dict[str, Any] | None:
    current = [a for a in addresses if not (a.get("period") or {}).get("end")]
    return (current or addresses or [None])[0]
