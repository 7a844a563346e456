"""The system-of-record matrix: for each system, entity and field, who owns the value.

Derived from the lifecycle phases (a `connected` system owns its own records; from
`hub_primary` on the hub owns them) and overridable per system, entity and field
in config/sor.toml. An override may name a single system as the owner of a field
for everyone (e.g. health owns `person.birth_date`) while that system is connected.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from routing.lifecycle import Phase

HUB = "hub"
LEGACY = "legacy"
ENTITY_FIELDS: dict[str, tuple[str, ...]] = {
    "person": ("name", "birth_date", "death_date", "sex", "address", "contacts", "identifiers", "ethnicity",
               "first_language", "health_conditions"),
    "involvement": ("service_category", "kind", "started_on", "ended_on", "status", "allocated_worker", "team",
                    "sensitivity", "summary"),
    "relationship": ("kind", "period"),
}


class SorConfigError(ValueError):
    """config/sor.toml is invalid; the message names the file and the entry."""


class SorOverride(BaseModel):
    model_config = ConfigDict(extra="forbid")

    system: str = Field("*", description="a system name, or * for every system")
    entity: str
    field: str = Field("*", description="a field of the entity, or * for all")
    owner: str = Field(..., description="'legacy' (the system itself), 'hub', or one named system")
    reason: str = ""


def load_overrides(path: str | Path | None) -> list[SorOverride]:
    """Read `[[override]]` entries; a missing file means no overrides."""
    if not path or not Path(path).exists():
        return []
    try:
        data = tomllib.loads(Path(path).read_text())
    except tomllib.TOMLDecodeError as exc:
        raise SorConfigError(f"{path}: {exc}") from exc
    out = []
    for i, entry in enumerate(data.get("override", [])):
        try:
            o = SorOverride.model_validate(entry)
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(str(x) for x in e['loc'])}: {e['msg']}" for e in exc.errors())
            raise SorConfigError(f"{path}: override[{i}]: {problems}") from exc
        if o.entity not in ENTITY_FIELDS or (o.field != "*" and o.field not in ENTITY_FIELDS[o.entity]):
            raise SorConfigError(f"{path}: override[{i}]: unknown entity or field {o.entity}.{o.field}")
        out.append(o)
    return out


@dataclass(frozen=True)
class Ownership:
    owner: str  # "hub", or the name of the legacy system that owns the value
    source: str  # "phase" or "override: <reason>"


class SorMatrix:
    """Answers `owner(system, entity, field)` from phases and overrides (the more specific override wins)."""

    def __init__(self, phases: Mapping[str, Phase], overrides: Iterable[SorOverride] = ()) -> None:
        self.phases = dict(phases)
        self.overrides = list(overrides)

    def ownership(self, system: str, entity: str, field: str) -> Ownership:
        if system == HUB:
            return Ownership(HUB, "hub record")
        phase = self.phases.get(system, Phase.CONNECTED)
        best: tuple[int, SorOverride] | None = None
        for o in self.overrides:
            if o.entity != entity or o.system not in ("*", system) or o.field not in ("*", field):
                continue
            specificity = (o.system != "*") * 2 + (o.field != "*")
            if best is None or specificity >= best[0]:
                best = (specificity, o)
        if best is not None:
            owner = best[1].owner
            named = owner not in (LEGACY, HUB)
            if owner == LEGACY and phase is not Phase.DECOMMISSIONED:
                return Ownership(system, f"override: {best[1].reason}".rstrip(": "))
            if named and self.phases.get(owner, Phase.CONNECTED).legacy_is_system_of_record:
                return Ownership(owner, f"override: {best[1].reason}".rstrip(": "))
            if owner == HUB:
                return Ownership(HUB, f"override: {best[1].reason}".rstrip(": "))
        return Ownership(system if phase.legacy_is_system_of_record else HUB, f"phase {phase.value}")

    def owner(self, system: str, entity: str, field: str) -> str:
        return self.ownership(system, entity, field).owner

    def legacy_owns(self, system: str, entity: str, field: str) -> bool:
        """True when `system`'s own records are the system of record for this field."""
        return self.owner(system, entity, field) == system

    def legacy_owned_fields(self, system: str) -> list[str]:
        """Fields of `system`'s records that `system` itself still owns (the read_only gate)."""
        return [f"{entity}.{f}" for entity, fields in ENTITY_FIELDS.items() for f in fields
                if self.owner(system, entity, f) == system]

    def rows(self, systems: Iterable[str]) -> list[dict[str, Any]]:
        """The matrix as rows (system, entity, field, owner, source) for display."""
        out = []
        for system in systems:
            for entity, fields in ENTITY_FIELDS.items():
                for f in fields:
                    o = self.ownership(system, entity, f)
                    out.append({"system": system, "phase": self.phases.get(system, Phase.CONNECTED).value,
                                "entity": entity, "field": f, "owner": o.owner, "source": o.source})
        return out
