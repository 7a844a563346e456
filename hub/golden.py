"""Golden record of a person: one value per field chosen from its member records,
each with the provenance of the record that supplied it.

Survivorship here: among the records allowed to speak for a field, the most
recently observed one that has the field wins (most frequent value for the date of
birth); identifiers are the union. Which records may speak is the system-of-record
matrix (`routing.sor.SorMatrix`) when one is given: a legacy system that owns the
field outranks the hub's own records, and a hub record outranks the mirrors of
records the hub now owns. Without a matrix every record may speak.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Protocol

FIELDS = ("name", "birth_date", "sex", "address", "ethnicity", "first_language")
HUB = "hub"


class SystemOfRecord(Protocol):
    def owner(self, system: str, entity: str, field: str) -> str: ...


def golden_record(members: list[dict[str, Any]], sor: SystemOfRecord | None = None) -> dict[str, Any]:
    """`members`: dicts with ref, system, source_id, observed_at and person (canonical JSON)."""
    ordered = sorted(members, key=lambda m: m.get("observed_at") or "", reverse=True)
    values: dict[str, Any] = {}
    provenance: dict[str, Any] = {}
    for field in FIELDS:
        having = [m for m in ordered if _field(m["person"], field) not in (None, "", "unknown")]
        pool, rule = _speakers(having, field, sor)
        if field == "birth_date" and pool:
            top, _ = Counter(_dob_key(m["person"]) for m in pool).most_common(1)[0]
            winner = next(m for m in pool if _dob_key(m["person"]) == top)
            rule = "most_frequent" if rule == "most_recent" else f"{rule}, most_frequent"
        else:
            winner = pool[0] if pool else None
        if winner is not None:
            values[field] = _field(winner["person"], field)
            provenance[field] = {"system": winner["system"], "source_id": winner["source_id"],
                                 "observed_at": winner.get("observed_at"), "rule": rule}
    identifiers = {}
    for m in ordered:
        for ident in m["person"].get("identifiers", []):
            key = (ident["scheme"], ident.get("issuer"), ident["value"])
            identifiers.setdefault(key, {**ident, "system": m["system"], "source_id": m["source_id"]})
    values["identifiers"] = list(identifiers.values())
    return {"values": values, "provenance": provenance, "members": [m["ref"] for m in ordered]}


def _speakers(having: list[dict[str, Any]], field: str, sor: SystemOfRecord | None) -> tuple[list[dict], str]:
    """The records allowed to supply `field` (newest first) and the rule that chose them."""
    if sor is None or not having:
        return having, "most_recent"
    owner = {id(m): sor.owner(m["system"], "person", field) for m in having}
    legacy = [m for m in having if m["system"] != HUB and owner[id(m)] == m["system"]]
    named = {o for m in having for o in [owner[id(m)]] if o not in (m["system"], HUB)}
    designated = [m for m in legacy if m["system"] in named]
    if designated:
        return designated, "system_of_record (override)"
    hub_records = [m for m in having if m["system"] == HUB]
    if hub_records:
        return (legacy, "legacy_system_of_record") if legacy else (hub_records, "hub_record")
    mirrors = [m for m in having if m["system"] != HUB and owner[id(m)] == HUB]
    pool = [m for m in having if m in legacy or m in mirrors]
    return (pool, "most_recent") if pool else (having, "most_recent")


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
