"""The source-record envelope: one legacy record, its raw payload and its canonical form.

The raw payload is kept beside the canonical form so that a record can be
re-translated after a mapping fix and so that decommissioning can archive
exactly what the legacy system held.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from canonical.codes import EntityKind


class SourceRef(BaseModel):
    """Names one record in one legacy system: the key every link and provenance uses."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    system: str = Field(..., min_length=1)
    entity: EntityKind
    source_id: str = Field(..., min_length=1)

    @property
    def key(self) -> str:
        return f"{self.system}/{self.entity.value}/{self.source_id}"

    @classmethod
    def parse(cls, key: str) -> "SourceRef":
        system, entity, source_id = key.split("/", 2)
        return cls(system=system, entity=EntityKind(entity), source_id=source_id)


class Provenance(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    adapter: str = Field(..., description="adapter kind: sql, xml_files, spreadsheet, rest, hub")
    location: str = Field(..., description="table, file, URL or query the record came from")
    mapping_version: str | None = None
    extracted_at: dt.datetime


_M = TypeVar("_M", bound=BaseModel)
_set = object.__setattr__


def trusted(cls: type[_M], **values: Any) -> _M:
    """An instance of `cls` from values known valid, every field given, as `model_construct` makes
    it without its search of each field's aliases and default (3.4 against 1.4 µs a call: a
    translation builds two or three a record). A call that does not give as many values as `cls`
    has fields raises TypeError, where `model_construct` would fill a default or drop one."""
    if len(values) != len(cls.__pydantic_fields__):
        raise TypeError(f"{cls.__name__}: trusted() takes every field, {sorted(cls.__pydantic_fields__)}; "
                        f"given {sorted(values)}")
    instance = cls.__new__(cls)
    _set(instance, "__dict__", values)
    _set(instance, "__pydantic_fields_set__", set(values))
    _set(instance, "__pydantic_extra__", None)
    _set(instance, "__pydantic_private__", None)
    return instance


def content_hash(raw: dict[str, Any]) -> str:
    """Stable hash of a raw payload, for change detection and reconciliation."""
    blob = json.dumps(raw, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


class SourceRecord(BaseModel):
    """A legacy record in transit: who said it, when, raw and canonical."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    ref: SourceRef
    content_hash: str
    observed_at: dt.datetime = Field(..., description="when the legacy system last changed it, or when we saw it")
    version: int = Field(0, description="monotonic per source record; an older version never overwrites a newer")
    provenance: Provenance
    raw: dict[str, Any]
    canonical: dict[str, Any] = Field(..., description="the Person, Involvement or Relationship as JSON")

    def person(self):  # noqa: ANN201 - avoids an import cycle in the annotation
        from canonical.person import Person

        return Person.model_validate(self.canonical)

    def involvement(self):  # noqa: ANN201
        from canonical.involvement import Involvement

        return Involvement.model_validate(self.canonical)

    def relationship(self):  # noqa: ANN201
        from canonical.involvement import Relationship

        return Relationship.model_validate(self.canonical)
