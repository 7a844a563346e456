"""Golden record of a person: one value per field chosen from its member records,
each with the provenance of the record that supplied it.

Survivorship here: the most recently observed record that has the field wins
(most frequent value for the date of birth); identifiers are the union.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

FIELDS = ("name", "birth_date", "sex", "address", "ethnicity", "first_language")


def golden_record(members: list[dict[str, Any]]) -> dict[str, Any]:
    """`members`: dicts with ref, system, source_id, observed_at and person (canonical JSON)."""
    ordered = sorted(members, key=lambda m: m.get("observed_at") or "", reverse=True)
    values: dict[str, Any] = {}
    provenance: dict[str, Any] = {}
    for field in FIELDS:
        for m in ordered:
            value = _field(m["person"], field)
            if value not in (None, "", "unknown"):
                values[field] = value
                provenance[field] = {"system": m["system"], "source_id": m["source_id"],
                                     "observed_at": m.get("observed_at"), "rule": "most_recent"}
                break
    dobs = Counter(_dob_key(m["person"]) for m in members if m["person"].get("birth_date"))
    if dobs:
        top, _ = dobs.most_common(1)[0]
        winner = next(m for m in ordered if _dob_key(m["person"]) == top)
        values["birth_date"] = winner["person"]["birth_date"]
        provenance["birth_date"] = {"system": winner["system"], "source_id": winner["source_id"],
                                    "observed_at": winner.get("observed_at"), "rule": "most_frequent"}
    identifiers = {}
    for m in ordered:
        for ident in m["person"].get("identifiers", []):
            key = (ident["scheme"], ident.get("issuer"), ident["value"])
            identifiers.setdefault(key, {**ident, "system": m["system"], "source_id": m["source_id"]})
    values["identifiers"] = list(identifiers.values())
    return {"values": values, "provenance": provenance, "members": [m["ref"] for m in ordered]}


def _dob_key(person: dict[str, Any]) -> str:
    return person["birth_date"]["value"]


def _field(person: dict[str, Any], field: str) -> Any:
    if field == "name":
        names = person.get("names") or []
        legal = [n for n in names if n.get("type") == "legal" and not (n.get("period") or {}).get("end")]
        return (legal or names or [None])[0]
    if field == "address":
        addrs = person.get("addresses") or []
        current = [a for a in addrs if not (a.get("period") or {}).get("end")]
        return (current or addrs or [None])[0]
    return person.get(field)
