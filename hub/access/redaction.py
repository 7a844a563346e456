"""Applying a clearance to everything held on one person: what stays, at which level, and what
goes without a trace. Pure functions over plain data; `hub.services.view` feeds them.

The rule that keeps a hidden service hidden: the shape of the answer never depends on whether
a hidden involvement exists. Hidden involvements, the source records of hidden systems and their
relationships are dropped before anything is counted, ordered or summarised, and a field whose
visibility would depend on a hidden fact (the address of a child in care) is decided uniformly.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any, Protocol

from hub.access.policy import AccessPolicy, Clearance, Level
from hub.golden import golden_record

SUMMARY_FIELDS = ("name", "birth_date", "sex")  # always shown to anyone who may view a person
WINDOWS = (90, 365)


class Bundle(Protocol):
    id: str
    requested_id: str
    version: int
    name: str
    birth_date: str | None
    golden: dict[str, Any]
    members: list[dict[str, Any]]
    involvements: list[dict[str, Any]]
    relationships: list[dict[str, Any]]
    family_involvements: dict[str, list[dict[str, Any]]]
    household: list[dict[str, Any]]


def on_caseload(involvements: Iterable[dict[str, Any]], worker_name: str | None, teams: Iterable[str]) -> bool:
    """True if any involvement is allocated to the worker or to one of the teams."""
    worker = (worker_name or "").strip().lower()
    team_set = {t.strip().lower() for t in teams if t}
    for inv in involvements:
        c = inv["canonical"]
        if worker and (c.get("allocated_worker") or "").strip().lower() == worker:
            return True
        if (c.get("team") or "").strip().lower() in team_set:
            return True
    return False


def bundle_involvements(bundle: Bundle) -> list[dict[str, Any]]:
    """The person's and every family member's involvements: the caseload test looks at all of them."""
    family = [inv for invs in bundle.family_involvements.values() for inv in invs]
    return list(bundle.involvements) + family


def in_care(involvements: Iterable[dict[str, Any]], today: dt.date) -> bool:
    for inv in involvements:
        c = inv["canonical"]
        if c.get("kind") == "looked_after" and c.get("status") != "closed" and \
                (not c.get("ended_on") or c["ended_on"] >= today.isoformat()):
            return True
    return False


class Redactor:
    """Applies one clearance to one person's bundle."""

    def __init__(self, policy: AccessPolicy, clearance: Clearance, today: dt.date) -> None:
        self.policy = policy
        self.clearance = clearance
        self.today = today

    # -- levels -----------------------------------------------------------------------------
    def system_level(self, system: str, derived: dict[str, str]) -> Level:
        """A system's records are seen at its service category's level; a system the policy does
        not name takes the category of its involvements, else is treated as demographic only."""
        category = self.policy.system_category(system) or derived.get(system)
        if category is None:
            return Level.SUMMARY
        return self.clearance.category(category)

    def involvement_level(self, inv: dict[str, Any]) -> Level:
        c = inv["canonical"]
        level = self.clearance.category(c.get("service_category"))
        if c.get("sensitivity") == "restricted" and not (self.clearance.relationship or self.clearance.break_glass):
            level = min(level, Level.EXISTS)
        return level

    def address_level(self, child_in_care: bool) -> Level:
        """The address of a child in care is its own field. A role that may not know about social
        care involvement gets the lower of the two levels for everyone, so that withholding one
        address gives nothing away."""
        plain, care = self.clearance.field("address"), self.clearance.field("address_in_care")
        if child_in_care:
            return care
        if self.clearance.category("social_care") >= Level.EXISTS:
            return plain
        return min(plain, care)

    # -- the view ---------------------------------------------------------------------------
    def person(self, bundle: Bundle) -> dict[str, Any]:
        derived = _derived_categories(bundle.involvements)
        # A system the viewer knows of (`exists`) contributes demographics; its records are shown
        # side by side only at `summary` and above.
        known = [m for m in bundle.members if self.system_level(m["system"], derived) >= Level.EXISTS]
        members = [m for m in known if self.system_level(m["system"], derived) >= Level.SUMMARY]
        invs = [(inv, self.involvement_level(inv)) for inv in bundle.involvements]
        invs = [(inv, lvl) for inv, lvl in invs if lvl >= Level.EXISTS]
        child_in_care = in_care(bundle.involvements, self.today)
        addr_level = self.address_level(child_in_care)
        golden = golden_record([_member(m) for m in known]) if known else {"values": {}, "provenance": {}}
        family = self._family(bundle, derived)
        return {
            "id": bundle.id,
            "requested_id": bundle.requested_id,
            "name": bundle.name,
            "birth_date": bundle.birth_date,
            "access": self._access(),
            "summary": self._summary(golden, known, addr_level),
            "provenance": {k: v for k, v in golden.get("provenance", {}).items()
                           if k in SUMMARY_FIELDS or self._field_level(k, addr_level) >= Level.SUMMARY},
            "services": self._services(invs),
            "timeline": [self._involvement(inv, lvl) for inv, lvl in _newest_first(invs) if lvl >= Level.SUMMARY],
            "open_involvements": [self._involvement(inv, lvl) for inv, lvl in _newest_first(invs)
                                  if lvl >= Level.SUMMARY and _is_open(inv, self.today)],
            "collective_occurrences": self._collective(invs, bundle, {f["id"] for f in family}),
            "family": family,
            "household": bundle.household if addr_level >= Level.SUMMARY else [],
            "source_records": [self._source_record(m, addr_level) for m in members],
            "data_quality": _quality_flags(known),
        }

    def _access(self) -> dict[str, Any]:
        return {"relationship": self.clearance.relationship, "break_glass": self.clearance.break_glass,
                "categories": {c: lvl.label for c, lvl in self.clearance.categories.items()},
                "fields": {f: lvl.label for f, lvl in self.clearance.fields.items()}}

    def _field_level(self, name: str, addr_level: Level) -> Level:
        if name == "address":
            return addr_level
        if name in SUMMARY_FIELDS:
            return Level.FULL
        return self.clearance.field(name)

    def _summary(self, golden: dict[str, Any], members: list[dict[str, Any]], addr_level: Level) -> dict[str, Any]:
        values = golden.get("values", {})
        health = sorted({h for m in members for h in m["canonical"].get("health_conditions") or []})
        contacts = [c for m in members for c in m["canonical"].get("contacts") or []]
        out: dict[str, Any] = {k: values.get(k) for k in SUMMARY_FIELDS}
        raw = {"identifiers": values.get("identifiers") or [], "address": values.get("address"),
               "ethnicity": values.get("ethnicity"), "first_language": values.get("first_language"),
               "health_conditions": health, "contacts": contacts}
        for name, value in raw.items():
            out[name] = _at_level(value, self._field_level(name, addr_level))
        return out

    def _services(self, invs: list[tuple[dict[str, Any], Level]]) -> list[dict[str, Any]]:
        by_category: dict[str, list[tuple[dict[str, Any], Level]]] = {}
        for inv, lvl in invs:
            by_category.setdefault(inv["canonical"]["service_category"], []).append((inv, lvl))
        out = []
        for category in sorted(by_category):
            items = by_category[category]
            detail = [inv for inv, lvl in items if lvl >= Level.SUMMARY]
            entry: dict[str, Any] = {"category": category, "level": max(lvl for _, lvl in items).label,
                                     "open": None, "involvements": None, "last_started": None, "workers": None}
            if detail:
                entry.update(open=any(_is_open(i, self.today) for i in detail), involvements=len(detail),
                             last_started=max(i["canonical"]["started_on"] for i in detail),
                             workers=sorted({w for i in detail for w in (i["canonical"].get("allocated_worker"),
                                                                          i["canonical"].get("team")) if w}))
            out.append(entry)
        return out

    def _involvement(self, inv: dict[str, Any], level: Level) -> dict[str, Any]:
        c = inv["canonical"]
        full = level >= Level.FULL
        return {"category": c["service_category"], "kind": c["kind"], "started_on": c["started_on"],
                "ended_on": c.get("ended_on"), "status": c.get("status"), "allocated_worker": c.get("allocated_worker"),
                "team": c.get("team"), "system": inv["system"], "level": level.label,
                "summary": c.get("summary") if full else None,
                "sensitivity": c.get("sensitivity") if full else None,
                "source_id": inv["source_id"] if full else None,
                "provenance": inv["provenance"] if full else None}

    def _collective(self, invs: list[tuple[dict[str, Any], Level]], bundle: Bundle,
                    family_ids: set[str]) -> dict[str, Any]:
        family = [(inv, self.involvement_level(inv)) for pid, members in bundle.family_involvements.items()
                  if pid in family_ids for inv in members]
        family = [(inv, lvl) for inv, lvl in family if lvl >= Level.EXISTS]
        out: dict[str, Any] = {}
        for days in WINDOWS:
            since = self.today - dt.timedelta(days=days)
            child = sorted({i["canonical"]["service_category"] for i, _ in invs if _active_since(i, since, self.today)})
            fam = sorted({i["canonical"]["service_category"] for i, _ in family if _active_since(i, since, self.today)})
            out[f"last_{days}_days"] = {"child": child, "family": fam, "all": sorted(set(child) | set(fam))}
        return out

    def _family(self, bundle: Bundle, derived: dict[str, str]) -> list[dict[str, Any]]:
        out, seen = [], set()
        for rel in bundle.relationships:
            if self.system_level(rel["system"], derived) < Level.SUMMARY or not rel["other_id"]:
                continue
            key = (rel["other_id"], rel["kind"])
            if key in seen:
                continue
            seen.add(key)
            out.append({"id": rel["other_id"], "name": rel["other_name"], "birth_date": rel["other_birth_date"],
                        "kind": rel["kind"], "system": rel["system"]})
        return sorted(out, key=lambda r: (r["kind"] or "", r["name"] or ""))

    def _source_record(self, m: dict[str, Any], addr_level: Level) -> dict[str, Any]:
        c = m["canonical"]
        canonical = {"names": c.get("names"), "birth_date": c.get("birth_date"), "sex": c.get("sex")}
        for name, key in (("identifiers", "identifiers"), ("address", "addresses"), ("contacts", "contacts"),
                          ("ethnicity", "ethnicity"), ("first_language", "first_language"),
                          ("health_conditions", "health_conditions")):
            canonical[key] = _at_level(c.get(key), self._field_level(name, addr_level))
        return {"ref": m["ref"], "system": m["system"], "source_id": m["source_id"], "version": m["version"],
                "observed_at": m["observed_at"], "provenance": m["provenance"], "canonical": canonical}


def _at_level(value: Any, level: Level) -> Any:
    """none: withheld (None); exists: whether anything is recorded; summary and full: the value."""
    if level <= Level.NONE:
        return None
    if level == Level.EXISTS:
        return {"recorded": bool(value)}
    return value


def _derived_categories(involvements: list[dict[str, Any]]) -> dict[str, str]:
    out: dict[str, str] = {}
    for inv in involvements:
        out.setdefault(inv["system"], inv["canonical"]["service_category"])
    return out


def _newest_first(invs: list[tuple[dict[str, Any], Level]]) -> list[tuple[dict[str, Any], Level]]:
    return sorted(invs, key=lambda p: (p[0]["canonical"].get("started_on") or "", p[0]["ref"]), reverse=True)


def _is_open(inv: dict[str, Any], today: dt.date) -> bool:
    c = inv["canonical"]
    return c.get("status") != "closed" and (not c.get("ended_on") or c["ended_on"] >= today.isoformat())


def _active_since(inv: dict[str, Any], since: dt.date, today: dt.date) -> bool:
    c = inv["canonical"]
    started = c.get("started_on") or ""
    ended = c.get("ended_on")
    return started <= today.isoformat() and (not ended or ended >= since.isoformat())


def _member(m: dict[str, Any]) -> dict[str, Any]:
    return {"ref": m["ref"], "system": m["system"], "source_id": m["source_id"], "observed_at": m["observed_at"],
            "person": m["canonical"]}


def _quality_flags(members: list[dict[str, Any]]) -> list[str]:
    flags = []
    dobs = {(m["canonical"].get("birth_date") or {}).get("value") for m in members} - {None}
    if len(dobs) > 1:
        flags.append(f"dates of birth differ between systems ({', '.join(sorted(dobs))})")
    families = {(n.get("family") or "").lower() for m in members for n in (m["canonical"].get("names") or [])[:1]}
    if len(families - {""}) > 1:
        flags.append("family names differ between systems")
    schemes = {i.get("scheme") for m in members for i in m["canonical"].get("identifiers") or []}
    if members and "nhs_number" not in schemes:
        flags.append("no NHS number in any system")
    if members and not any(m["canonical"].get("addresses") for m in members):
        flags.append("no address in any system")
    return flags
