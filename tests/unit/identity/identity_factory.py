"""Building features for identity tests."""

from __future__ import annotations

import datetime as dt
import itertools

from identity_index.features import PersonFeatures, features_from_canonical

_serial = itertools.count(1)


def person_json(given: str | None = "Amy", family: str | None = "Smith", dob: str | None = "2015-03-02", *,
                sex: str = "female", postcode: str | None = "NE1 4AB", nhs: str | None = None,
                upn: str | None = None, precision: str = "day", previous_family: str | None = None,
                extra_postcodes: tuple[str, ...] = ()) -> dict:
    names = [{"given": given, "family": family, "type": "legal"}]
    if previous_family:
        names.append({"given": given, "family": previous_family, "type": "previous"})
    person: dict = {"names": names, "sex": sex, "identifiers": [], "addresses": []}
    if dob:
        person["birth_date"] = {"value": dob, "precision": precision}
    if nhs:
        person["identifiers"].append({"scheme": "nhs_number", "value": nhs})
    if upn:
        person["identifiers"].append({"scheme": "upn", "value": upn})
    for pc in ((postcode,) if postcode else ()) + extra_postcodes:
        person["addresses"].append({"postcode": pc, "lines": []})
    return person


def feat(given: str | None = "Amy", family: str | None = "Smith", dob: str | None = "2015-03-02", *,
         ref: str | None = None, **kw) -> PersonFeatures:
    return features_from_canonical(ref or f"test/person/{next(_serial)}", person_json(given, family, dob, **kw))


def day(value: str) -> dt.date:
    return dt.date.fromisoformat(value)
