"""A legacy system as its mapping file declares it: identity, schedule, source and mapping.

    [system]    name, kind, title, service_category, schedule, trust_rank
    [source]    where the kind reads from (its own keys; ${VAR} expanded from the environment)
    [codes.*]   code tables
    [entities.*] per entity: the kind's keys (table, file, record_xpath, path...) and the
                 record blocks (person / persons / involvements / relationships)
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from adapters.kinds import kind_module
from adapters.kinds.common import SourceConfigError
from adapters.mapping.document import Document, Key, read_document
from adapters.mapping.engine import SystemMapping
from adapters.mapping.loader import MAPPING_KEYS, compile_codes, compile_mapping
from adapters.port import SourceAdapter
from canonical.codes import ServiceCategory

TOP_LEVEL = {"system", "source", "codes", "entities"}
_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_INTERVAL = re.compile(r"^(?:every\s+)?(\d+(?:\.\d+)?)\s*([a-z]+)$")
_CRON_FIELD = re.compile(r"^[0-9A-Za-z*/,\-?]+$")
_UNIT_S = {"s": 1, "sec": 1, "second": 1, "seconds": 1, "m": 60, "min": 60, "minute": 60, "minutes": 60,
           "h": 3600, "hour": 3600, "hours": 3600, "d": 86400, "day": 86400, "days": 86400}


def schedule_trigger(schedule: str) -> tuple[str, Any]:
    """("interval", seconds) for "15m" / "every 2 hours", ("cron", "m h dom mon dow") for a crontab
    line (optionally written "cron ..."), ("manual", None) for "manual": the scheduler's grammar."""
    text = schedule.strip().lower()
    if text == "manual":
        return "manual", None
    m = _INTERVAL.match(text)
    if m and m.group(2) in _UNIT_S:
        seconds = float(m.group(1)) * _UNIT_S[m.group(2)]
        if seconds <= 0:
            raise ValueError("an interval must be positive")
        return "interval", seconds
    fields = text.removeprefix("cron ").split()
    if len(fields) == 5 and all(_CRON_FIELD.match(f) for f in fields):
        return "cron", " ".join(fields)
    raise ValueError(f"schedule {schedule!r} is neither an interval like '15m' or 'every 2 hours', "
                     "a five-field cron expression, nor 'manual'")


class SystemTable(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(..., pattern=r"^[a-z][a-z0-9_]*$")
    kind: str = Field(..., pattern=r"^[a-z][a-z0-9_]*$")
    title: str | None = None
    service_category: ServiceCategory
    schedule: str = "every 1h"
    trust_rank: int = Field(10, ge=1, description="1 is the most trusted source when values conflict")

    @field_validator("schedule")
    @classmethod
    def _schedule(cls, v: str) -> str:
        schedule_trigger(v)
        return v.strip()


@dataclass(frozen=True)
class SystemDefinition:
    name: str
    kind: str
    title: str
    service_category: ServiceCategory
    schedule: str
    trust_rank: int
    mapping: SystemMapping
    entities: dict[str, dict[str, Any]]  # per entity, the kind's own keys
    source: dict[str, Any]
    path: Path | None = None
    base_dir: Path = field(default_factory=Path.cwd)
    env: Mapping[str, str] = field(default_factory=dict)

    @property
    def trigger(self) -> tuple[str, Any]:
        return schedule_trigger(self.schedule)


def _expand(doc: Document, key: Key, value: Any, env: Mapping[str, str]) -> Any:
    if isinstance(value, str) and "${" in value:
        def sub(m: re.Match[str]) -> str:
            if m.group(1) in env:
                return env[m.group(1)]
            if m.group(2) is not None:
                return m.group(2)
            raise doc.error(key, f"environment variable {m.group(1)} is not set (write ${{{m.group(1)}:-default}} "
                                 "for a default)")
        return _ENV.sub(sub, value)
    if isinstance(value, Mapping):
        return {k: _expand(doc, key + (k,), v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand(doc, key + (i,), v, env) for i, v in enumerate(value)]
    return value


def load_system(path: str | Path, env: Mapping[str, str] | None = None) -> SystemDefinition:
    """Read and validate one mapping file; MappingError names the file, line and field of any problem."""
    env = dict(env or {})
    doc = read_document(path)
    data = doc.data
    unknown = set(data) - TOP_LEVEL
    if unknown:
        name = sorted(unknown)[0]
        raise doc.error((name,), f"unknown top-level table (known: {', '.join(sorted(TOP_LEVEL))})")
    if not isinstance(data.get("system"), Mapping):
        raise doc.error(("system",), "the [system] table is missing")
    try:
        system = SystemTable.model_validate(_expand(doc, ("system",), dict(data["system"]), env))
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        loc = tuple(str(p) for p in err["loc"])
        raise doc.error(("system",) + loc, err["msg"]) from None
    try:
        module = kind_module(system.kind)
    except SourceConfigError as exc:
        raise doc.error(("system", "kind"), str(exc)) from None
    source = data.get("source", {})
    if not isinstance(source, Mapping):
        raise doc.error(("source",), "must be a table")
    source = _expand(doc, ("source",), dict(source), env)
    entities = data.get("entities")
    if not isinstance(entities, Mapping) or not entities:
        raise doc.error(("entities",), "a system needs at least one [entities.<name>] table")
    kind_entities: dict[str, dict[str, Any]] = {}
    mapping_entities: dict[str, dict[str, Any]] = {}
    for name, table in entities.items():
        if not isinstance(table, Mapping):
            raise doc.error(("entities", name), "must be a table")
        kind_entities[name] = _expand(doc, ("entities", name),
                                      {k: v for k, v in table.items() if k not in MAPPING_KEYS}, env)
        mapping_entities[name] = {k: v for k, v in table.items() if k in MAPPING_KEYS}
    codes = compile_codes(doc, data.get("codes"))
    version = hashlib.sha256(doc.text.encode()).hexdigest()[:12]
    mapping = compile_mapping(doc, system.name, system.kind, version, codes, mapping_entities)
    base_dir = doc.path.resolve().parent
    for name, entity in mapping.entities.items():
        if entity.groups is None:
            continue
        if not getattr(module, "READS_GROUPS", False):
            raise doc.error(("entities", name, "group_relationships"),
                            f"the {system.kind} kind cannot provide the other rows of a group, which "
                            "group_relationships needs (kinds that can: spreadsheet)")
        kind_entities[name]["group_relationships"] = {"by": entity.groups.by, "role": entity.groups.role}
    columns = getattr(module, "columns", None)
    if callable(columns):
        for name in mapping.entities:
            try:
                available = columns(source, kind_entities[name], base_dir=base_dir, env=env)
            except SourceConfigError as exc:
                raise doc.error(("entities", name), str(exc)) from None
            if available is None:
                continue
            known = set(available)
            groups = mapping.entities[name].groups
            for column_key, column in ((("by",), groups.by), (("role",), groups.role)) if groups else ():
                if column not in known:
                    raise doc.error(("entities", name, "group_relationships") + column_key,
                                    f"source column {column!r} does not exist in {name} "
                                    f"(columns: {', '.join(sorted(known))})")
            for block_key, block in _block_keys(doc, name, mapping_entities[name]):
                for fm_key, fields in _field_sources(block_key, block):
                    for f in fields:
                        if f not in known and f.split(".")[0] not in known:
                            raise doc.error(fm_key, f"source column {f!r} does not exist in {name} "
                                                    f"(columns: {', '.join(sorted(known))})")
    return SystemDefinition(name=system.name, kind=system.kind, title=system.title or system.name,
                            service_category=system.service_category, schedule=system.schedule,
                            trust_rank=system.trust_rank, mapping=mapping, entities=kind_entities,
                            source=source, path=doc.path, base_dir=base_dir, env=env)


def _block_keys(doc: Document, entity: str, table: Mapping[str, Any]) -> list[tuple[Key, Mapping[str, Any]]]:
    out = []
    for section, value in table.items():
        if section == "group_relationships":
            continue  # its columns are checked on their own
        key: Key = ("entities", entity, section)
        if isinstance(value, list):
            out += [(key + (i,), v) for i, v in enumerate(value)]
        else:
            out.append((key, value))
    return out


def _field_sources(key: Key, block: Mapping[str, Any]) -> list[tuple[Key, list[str]]]:
    from adapters.mapping.engine import Template

    out: list[tuple[Key, list[str]]] = []
    for name in ("source_id", "subject", "related"):
        if name in block:
            out.append((key + (name,), Template(block[name]).fields))
    when = block.get("when", [])
    out.append((key + ("when",), [when] if isinstance(when, str) else list(when)))
    for path, spec in block.get("fields", {}).items():
        fk = key + ("fields", path)
        if isinstance(spec, str):
            out.append((fk, [spec]))
        elif "field" in spec:
            out.append((fk + ("field",), [spec["field"]]))
        elif "fields" in spec:
            out.append((fk + ("fields",), list(spec["fields"])))
        elif "template" in spec:
            out.append((fk + ("template",), Template(spec["template"]).fields))
    return out


def build_adapter(defn: SystemDefinition) -> SourceAdapter:
    """The `SourceAdapter` of the definition's kind, reading the definition's source."""
    module = kind_module(defn.kind)
    return module.build(defn.name, defn.source, defn.entities, base_dir=defn.base_dir, env=defn.env)
