"""The access policy as data: roles mapped to levels per service category and per sensitive
field, what a legitimate relationship and break-glass raise them to, and each role's
permissions. Pure: no I/O beyond reading the file, no framework.

Levels are ordered: none < exists < summary < full.
  none     the role does not learn that the service is involved at all (no row, no count, no hint)
  exists   "known to <service>" only
  summary  dates, status, allocated worker and team
  full     everything, with the source record
"""

from __future__ import annotations

import hashlib
import tomllib
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from canonical.codes import ServiceCategory


class PolicyError(Exception):
    """The policy file is unreadable or invalid; the message names the file and the field."""


class Level(IntEnum):
    NONE = 0
    EXISTS = 1
    SUMMARY = 2
    FULL = 3

    @classmethod
    def parse(cls, value: str | Level) -> Level:
        if isinstance(value, Level):
            return value
        try:
            return cls[value.upper()]
        except KeyError:
            raise ValueError(f"level {value!r}: expected none, exists, summary or full") from None

    @property
    def label(self) -> str:
        return self.name.lower()


CATEGORIES: tuple[str, ...] = tuple(c.value for c in ServiceCategory)

# Sensitive fields of a person, each governed by its own level.
FIELDS: tuple[str, ...] = (
    "identifiers",       # NHS number, UPN, local ids
    "address",           # current address of anyone not in care
    "address_in_care",   # address of a child who is looked after (placement address)
    "contacts",          # phone numbers, e-mail
    "ethnicity",
    "first_language",
    "health_conditions",
)

PERMISSIONS: tuple[str, ...] = (
    "search",        # find people
    "view",          # open the consolidated view of a person
    "break_glass",   # raise own access to one person, with a reason, for a limited time
    "export",        # subject-access export of everything held on a person
    "audit",         # read the audit log and the break-glass review list
    "review",        # identity review queue (data stewards)
    "console",       # admin console: messages, adapters, systems, dashboards
    "users",         # manage accounts and tokens
    "write",         # front-end business applications: write persons and involvements through the hub
)


def _levels(mapping: dict[str, str], known: tuple[str, ...], what: str) -> dict[str, Level]:
    unknown = sorted(set(mapping) - set(known))
    if unknown:
        raise ValueError(f"unknown {what} {', '.join(unknown)}; known: {', '.join(known)}")
    return {k: Level.parse(v) for k, v in mapping.items()}


class Grant(BaseModel):
    """Levels per service category and per field; anything not named is `none`."""

    model_config = ConfigDict(extra="forbid")

    categories: dict[str, Level] = Field(default_factory=dict)
    fields: dict[str, Level] = Field(default_factory=dict)

    @field_validator("categories", mode="before")
    @classmethod
    def _categories(cls, v: dict[str, str]) -> dict[str, Level]:
        return _levels(v, CATEGORIES, "service category")

    @field_validator("fields", mode="before")
    @classmethod
    def _fields(cls, v: dict[str, str]) -> dict[str, Level]:
        return _levels(v, FIELDS, "field")


class RoleSpec(Grant):
    """A role's own levels (categories and fields, validated as in Grant), permissions and raises."""

    label: str
    permissions: list[str] = Field(default_factory=list)
    relationship: Grant = Field(default_factory=Grant, description="levels when the person or a family "
                                "member is on the user's caseload or team (raises, never lowers)")

    @field_validator("permissions")
    @classmethod
    def _permissions(cls, v: list[str]) -> list[str]:
        unknown = sorted(set(v) - set(PERMISSIONS))
        if unknown:
            raise ValueError(f"unknown permission {', '.join(unknown)}; known: {', '.join(PERMISSIONS)}")
        return v


class BreakGlassSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    minutes: int = Field(60, ge=1, le=24 * 60)
    level: Level = Level.FULL
    min_reason_length: int = 10

    @field_validator("level", mode="before")
    @classmethod
    def _level(cls, v: str) -> Level:
        return Level.parse(v)


class PolicyDocument(BaseModel):
    model_config = ConfigDict(extra="forbid")

    break_glass: BreakGlassSpec = Field(default_factory=BreakGlassSpec)
    systems: dict[str, str] = Field(default_factory=dict, description="legacy system → service category")
    roles: dict[str, RoleSpec]

    @field_validator("systems")
    @classmethod
    def _systems(cls, v: dict[str, str]) -> dict[str, str]:
        bad = sorted(f"{k}={c}" for k, c in v.items() if c not in CATEGORIES)
        if bad:
            raise ValueError(f"unknown service category for {', '.join(bad)}")
        return v


@dataclass(frozen=True)
class Context:
    """What raises a user's levels for one person."""

    relationship: bool = False
    break_glass: bool = False


@dataclass(frozen=True)
class Clearance:
    """The resolved levels of one user for one person: what the redaction applies."""

    categories: dict[str, Level]
    fields: dict[str, Level]
    relationship: bool
    break_glass: bool

    def category(self, name: str | None) -> Level:
        return self.categories.get(name or "", Level.NONE)

    def field(self, name: str) -> Level:
        return self.fields.get(name, Level.NONE)


class AccessPolicy:
    """Evaluates the policy document for a set of roles (a user may hold several: highest wins)."""

    def __init__(self, document: PolicyDocument, *, source: str = "", digest: str = "") -> None:
        self.document = document
        self.source = source
        self.digest = digest

    @property
    def roles(self) -> list[str]:
        return sorted(self.document.roles)

    @property
    def break_glass(self) -> BreakGlassSpec:
        return self.document.break_glass

    def role(self, name: str) -> RoleSpec:
        try:
            return self.document.roles[name]
        except KeyError:
            raise PolicyError(f"no role {name!r} in the access policy") from None

    def known_roles(self, roles: list[str]) -> list[RoleSpec]:
        return [self.document.roles[r] for r in roles if r in self.document.roles]

    def permits(self, roles: list[str], permission: str) -> bool:
        if permission not in PERMISSIONS:
            raise PolicyError(f"unknown permission {permission!r}")
        return any(permission in spec.permissions for spec in self.known_roles(roles))

    def clearance(self, roles: list[str], context: Context = Context()) -> Clearance:
        """The levels of a user holding `roles` for one person in `context`."""
        specs = self.known_roles(roles)
        cats = {c: Level.NONE for c in CATEGORIES}
        fields = {f: Level.NONE for f in FIELDS}
        for spec in specs:
            for c, lvl in spec.categories.items():
                cats[c] = max(cats[c], lvl)
            for f, lvl in spec.fields.items():
                fields[f] = max(fields[f], lvl)
            if context.relationship:
                for c, lvl in spec.relationship.categories.items():
                    cats[c] = max(cats[c], lvl)
                for f, lvl in spec.relationship.fields.items():
                    fields[f] = max(fields[f], lvl)
        if context.break_glass and any("break_glass" in s.permissions for s in specs):
            raised = self.document.break_glass.level
            cats = {c: max(lvl, raised) for c, lvl in cats.items()}
            fields = {f: max(lvl, raised) for f, lvl in fields.items()}
        return Clearance(cats, fields, context.relationship, context.break_glass)

    def system_category(self, system: str) -> str | None:
        return self.document.systems.get(system)


def parse_policy(text: str, source: str = "access policy") -> AccessPolicy:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PolicyError(f"{source}: {exc}") from exc
    try:
        document = PolicyDocument.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise PolicyError(f"{source}: {problems}") from exc
    return AccessPolicy(document, source=source, digest=hashlib.sha256(text.encode()).hexdigest())


def load_policy(path: str | Path) -> AccessPolicy:
    """Read and validate the policy file; errors name the file and the field."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise PolicyError(f"{path}: {exc}") from exc
    return parse_policy(text, str(path))


def default_policy_path() -> Path:
    return Path(__file__).resolve().parents[2] / "config" / "access_policy.toml"


def describe(policy: AccessPolicy) -> dict[str, Any]:
    """The policy as plain data, for the docs page and the audit of a policy change."""
    return policy.document.model_dump(mode="json")
