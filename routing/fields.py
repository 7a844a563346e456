"""Canonical records as flat field paths, the vocabulary of write-back and routed changes.

A legacy system's write mapping names columns for paths such as `name.given`,
`address.postcode` or `ended_on`; the hub sends only the paths that changed.
"""

from __future__ import annotations

from typing import Any

PERSON_PATHS = ("name.given", "name.middle", "name.family", "birth_date", "death_date", "sex", "address.line1",
                "address.line2", "address.town", "address.postcode", "address.uprn", "ethnicity",
                "first_language", "contact.phone", "contact.mobile", "contact.email")
INVOLVEMENT_PATHS = ("subject", "service_category", "kind", "started_on", "ended_on", "status", "allocated_worker",
                     "team", "sensitivity", "summary")


def _current(items: list[dict[str, Any]] | None, legal_only: bool = False) -> dict[str, Any]:
    items = items or []
    current = [i for i in items if not (i.get("period") or {}).get("end")]
    if legal_only:
        current = [i for i in current if i.get("type", "legal") == "legal"] or current
    return (current or items or [{}])[0]


def flatten_person(person: dict[str, Any]) -> dict[str, Any]:
    """The current values of a canonical person as flat paths (absent values are None)."""
    name = _current(person.get("names"), legal_only=True)
    address = _current(person.get("addresses"))
    lines = list(address.get("lines") or [])
    dob = person.get("birth_date")
    out: dict[str, Any] = {
        "name.given": name.get("given"), "name.middle": name.get("middle"), "name.family": name.get("family"),
        "birth_date": dob.get("value") if isinstance(dob, dict) else dob,
        "death_date": person.get("death_date"), "sex": person.get("sex"),
        "address.line1": lines[0] if lines else None, "address.line2": lines[1] if len(lines) > 1 else None,
        "address.town": address.get("town"), "address.postcode": address.get("postcode"),
        "address.uprn": address.get("uprn"), "ethnicity": person.get("ethnicity"),
        "first_language": person.get("first_language"),
    }
    for kind in ("phone", "mobile", "email"):
        contact = next((c for c in person.get("contacts") or [] if c.get("kind") == kind
                        and not (c.get("period") or {}).get("end")), {})
        out[f"contact.{kind}"] = contact.get("value")
    return out


def flatten_involvement(involvement: dict[str, Any]) -> dict[str, Any]:
    out = {p: involvement.get(p) for p in INVOLVEMENT_PATHS if p != "subject"}
    subject = involvement.get("subject") or {}
    out["subject"] = subject.get("source_id")
    return out


def flatten(entity: str, canonical: dict[str, Any]) -> dict[str, Any]:
    if entity == "person":
        return flatten_person(canonical)
    if entity == "involvement":
        return flatten_involvement(canonical)
    return {}


def group_of(path: str) -> str:
    """The field a path belongs to (`address.postcode` → `address`), as in the SoR matrix."""
    head = path.split(".", 1)[0]
    return {"contact": "contacts"}.get(head, head)


def changed_paths(entity: str, before: dict[str, Any] | None, after: dict[str, Any]) -> dict[str, Any]:
    """Paths whose value differs between two canonical forms, with the new values."""
    new = flatten(entity, after)
    old = flatten(entity, before) if before else {}
    return {p: v for p, v in new.items() if old.get(p) != v and not (before is None and v is None)}


def changed_fields(entity: str, before: dict[str, Any] | None, after: dict[str, Any]) -> list[str]:
    return sorted({group_of(p) for p in changed_paths(entity, before, after)})


class UnknownPath(ValueError):
    """A change names a path that is not in the canonical vocabulary of the entity."""


def apply_person_paths(person: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """A canonical person (JSON) with flat-path changes applied to its current values."""
    unknown = sorted(set(changes) - set(PERSON_PATHS))
    if unknown:
        raise UnknownPath(f"unknown person field(s) {unknown}; known: {', '.join(PERSON_PATHS)}")
    out = {k: v for k, v in person.items()}
    groups = {group_of(p) for p in changes}
    if "name" in groups:
        current = _current(out.get("names"), legal_only=True)
        new = {**current, **{p.split(".", 1)[1]: v for p, v in changes.items() if p.startswith("name.")}}
        new.setdefault("type", "legal")
        out["names"] = [new] + [n for n in out.get("names") or [] if n is not current and n != current]
    if "address" in groups:
        current = _current(out.get("addresses"))
        flat = flatten_person(out)
        flat.update({p: v for p, v in changes.items() if p.startswith("address.")})
        lines = [x for x in (flat["address.line1"], flat["address.line2"]) if x]
        new = {**{k: v for k, v in current.items() if k not in ("lines", "town", "postcode", "uprn")},
               "lines": lines, "town": flat["address.town"], "postcode": flat["address.postcode"],
               "uprn": flat["address.uprn"]}
        out["addresses"] = [new] + [a for a in out.get("addresses") or [] if a is not current and a != current]
    if "contacts" in groups:
        contacts = list(out.get("contacts") or [])
        for path, value in changes.items():
            if path.startswith("contact."):
                kind = path.split(".", 1)[1]
                contacts = [c for c in contacts if c.get("kind") != kind or (c.get("period") or {}).get("end")]
                if value:
                    contacts.insert(0, {"kind": kind, "value": value})
        out["contacts"] = contacts
    for path in ("sex", "ethnicity", "first_language", "death_date"):
        if path in changes:
            out[path] = changes[path]
    if "birth_date" in changes:
        out["birth_date"] = {"value": changes["birth_date"], "precision": "day"} if changes["birth_date"] else None
    return out


def present(values: dict[str, Any]) -> dict[str, Any]:
    """Only the paths that have a value (what a create sends)."""
    return {p: v for p, v in values.items() if v not in (None, "", [], {})}


_PERSON_WRITE_PATHS = {
    "name.given": "person.names[0].given", "name.middle": "person.names[0].middle",
    "name.family": "person.names[0].family", "birth_date": "person.birth_date", "death_date": "person.death_date",
    "sex": "person.sex", "address.line1": "person.addresses[0].lines[0]",
    "address.line2": "person.addresses[0].lines[1]", "address.town": "person.addresses[0].town",
    "address.postcode": "person.addresses[0].postcode", "address.uprn": "person.addresses[0].uprn",
    "ethnicity": "person.ethnicity", "first_language": "person.first_language",
    "contact.phone": "person.contacts[phone].value", "contact.mobile": "person.contacts[mobile].value",
    "contact.email": "person.contacts[email].value",
}


def writeback_paths(entity: str, values: dict[str, Any]) -> dict[str, Any]:
    """Flat paths as the mapping files' `write.columns` name them (`person.names[0].given`,
    `involvement.ended_on`); a path already in that form is kept."""
    if entity == "person":
        return {_PERSON_WRITE_PATHS.get(p, p): v for p, v in values.items()}
    return {p if p.startswith(f"{entity}.") else f"{entity}.{p}": v for p, v in values.items()}
