"""Declarative routing rules (config/routing.toml): content-based routes between systems.

A route says: when a record of this entity changes in one of these systems, and
the change touches one of these fields (and its content matches), send the
changed values, transformed, to these other systems through their adapters.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from routing.fields import group_of
from routing.readiness import ReadinessPolicy


class RoutingConfigError(ValueError):
    """config/routing.toml is invalid; the message names the file and the field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class When(_Strict):
    source_system: list[str] = Field(default_factory=lambda: ["*"])
    entity: str = "person"
    changed: list[str] = Field(default_factory=list, description="fields any of which must have changed")
    match: dict[str, Any] = Field(default_factory=dict, description="flat path → required value")
    include_new: bool = Field(False, description="also route records seen for the first time")

    @field_validator("source_system", mode="before")
    @classmethod
    def _listify(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v


class Transform(_Strict):
    select: list[str] | None = Field(None, description="forward only these fields or paths")
    drop: list[str] = Field(default_factory=list)
    rename: dict[str, str] = Field(default_factory=dict)
    set: dict[str, Any] = Field(default_factory=dict, description="constant values added to the change")
    map: dict[str, dict[str, Any]] = Field(default_factory=dict, description="path → {value: new value}")


class Route(_Strict):
    name: str
    when: When
    to: list[str] = Field(..., min_length=1)
    transform: Transform = Transform()
    operation: str = "update"


class AlertRule(_Strict):
    name: str
    kind: str = Field("household_services", pattern="^household_services$")
    min_services: int = Field(3, ge=2)
    window_days: int = Field(90, ge=1)
    notify_category: str = Field("early_help", description="the alert goes to the team allocated in this service")
    fallback_team: str = Field(..., min_length=1)
    same_address: bool = Field(True, description="people at the same current address form a household")


class RoutingConfig(_Strict):
    readiness: ReadinessPolicy = ReadinessPolicy()
    route: list[Route] = Field(default_factory=list)
    alert: list[AlertRule] = Field(default_factory=list)


def load_routing(path: str | Path | None) -> RoutingConfig:
    """Read and validate config/routing.toml; a missing file means no routes and no alerts."""
    if not path or not Path(path).exists():
        return RoutingConfig()
    try:
        data = tomllib.loads(Path(path).read_text())
        return RoutingConfig.model_validate(data)
    except tomllib.TOMLDecodeError as exc:
        raise RoutingConfigError(f"{path}: {exc}") from exc
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise RoutingConfigError(f"{path}: {problems}") from exc


@dataclass(frozen=True)
class Change:
    """A mirrored record changed: which system, entity, fields, and the new flat values."""

    system: str
    entity: str
    source_id: str
    changed: dict[str, Any]  # flat path → new value (only the paths that changed)
    current: dict[str, Any]  # flat path → value (the whole record)
    created: bool = False  # first seen now (every value is "changed")


@dataclass(frozen=True)
class Delivery:
    route: str
    target: str
    operation: str
    values: dict[str, Any]


def matches(route: Route, change: Change) -> bool:
    w = route.when
    if w.entity != change.entity or (change.created and not w.include_new):
        return False
    if "*" not in w.source_system and change.system not in w.source_system:
        return False
    if w.changed and not ({group_of(p) for p in change.changed} & set(w.changed)
                          or set(change.changed) & set(w.changed)):
        return False
    return all(change.current.get(path) == value for path, value in w.match.items())


def _selected(path: str, names: list[str]) -> bool:
    return any(path == n or path.startswith(n + ".") or group_of(path) == n for n in names)


def transform(t: Transform, values: Mapping[str, Any]) -> dict[str, Any]:
    """Apply select, drop, map, rename and set, in that order."""
    out = {p: v for p, v in values.items() if t.select is None or _selected(p, t.select)}
    out = {p: v for p, v in out.items() if not _selected(p, t.drop)}
    for path, table in t.map.items():
        if path in out and str(out[path]) in table:
            out[path] = table[str(out[path])]
    out = {t.rename.get(p, p): v for p, v in out.items()}
    out.update(t.set)
    return out


def deliveries(config: RoutingConfig, change: Change) -> list[Delivery]:
    """Every delivery the routes ask for; never back to the system the change came from."""
    out = []
    for route in config.route:
        if not matches(route, change):
            continue
        values = transform(route.transform, change.changed)
        if not values:
            continue
        out += [Delivery(route.name, target, route.operation, values) for target in route.to if target != change.system]
    return out
