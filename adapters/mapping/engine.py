"""The translation engine: compiled field mappings and record blocks that turn one
raw legacy row into canonical source records, collecting every reason it fails."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ValidationError

from adapters.errors import TranslationError
from adapters.mapping.groups import GroupRelationships
from adapters.mapping.paths import MODELS, CanonicalPath, loc_to_path
from adapters.mapping.values import CodeTable, DateFormat, Transform, _text, is_empty, parse_date
from adapters.port import RawChange
from canonical.codes import EntityKind
from canonical.records import Provenance, SourceRecord, SourceRef, content_hash, trusted

_PLACEHOLDER = re.compile(r"\{([^{}]+)\}")


def field_value(raw: Mapping[str, Any], name: str) -> Any:
    """`raw[name]`; a dotted name not present as such walks nested objects (JSON APIs): "name.given"."""
    if name in raw:
        return raw[name]
    if "." not in name:
        return None
    value: Any = raw
    for part in name.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


@dataclass(frozen=True)
class Template:
    """`"{child_id}-{seq}"` filled from the row, or a bare field name; None when any part is empty."""

    text: str

    @property
    def fields(self) -> list[str]:
        found = _PLACEHOLDER.findall(self.text)
        return found if found or "{" in self.text else [self.text]

    def render(self, raw: Mapping[str, Any]) -> str | None:
        if "{" not in self.text:
            value = field_value(raw, self.text)
            return None if is_empty(value) else _text(value).strip()
        missing = False

        def fill(m: re.Match[str]) -> str:
            nonlocal missing
            value = field_value(raw, m.group(1))
            if is_empty(value):
                missing = True
                return ""
            return _text(value).strip()
        out = _PLACEHOLDER.sub(fill, self.text)
        return None if missing else out


@dataclass
class FieldMapping:
    """Where one canonical value comes from and how it is cleaned."""

    path: CanonicalPath
    label: str  # the canonical path, as written, for reasons
    source: str | list[str] | None = None  # field, or fields (a list value)
    const: Any = None
    template: Template | None = None
    transforms: tuple[Transform, ...] = ()
    codes: CodeTable | None = None
    dates: tuple[DateFormat, ...] = ()
    default: Any = None
    required: bool = False

    @property
    def source_fields(self) -> list[str]:
        if self.template:
            return self.template.fields
        if isinstance(self.source, list):
            return list(self.source)
        return [self.source] if self.source else []

    def value(self, raw: Mapping[str, Any]) -> Any:
        """The canonical value for `raw` (None: no value); ValueError with a reason when it is wrong."""
        if self.template is not None:
            value: Any = self.template.render(raw)
        elif isinstance(self.source, list):
            value = [field_value(raw, f) for f in self.source]
        elif self.source is not None:
            value = field_value(raw, self.source)
        else:
            value = self.const
        for step in self.transforms:
            value = step(value)
        if self.codes is not None:
            value = self.codes.lookup(value)
        if is_empty(value):
            value = self.default
        if is_empty(value):
            if self.required:
                raise ValueError(f"has no value{self._from()}")
            return None
        return self._coerce(value)

    def _from(self) -> str:
        fields = self.source_fields
        return f" (from {', '.join(fields)})" if fields else ""

    def _coerce(self, value: Any) -> Any:
        leaf = self.path.leaf
        if leaf.type in ("date", "partial_date"):
            parsed = parse_date(value, self.dates)
            if parsed is None:
                return None
            if leaf.type == "date":
                return parsed[0].isoformat()
            return {"value": parsed[0].isoformat(), "precision": parsed[1].value}
        if leaf.type == "str_list":
            items = value if isinstance(value, (list, tuple)) else [value]
            return [_text(v).strip() for v in items if not is_empty(v)] or None
        if isinstance(value, (list, tuple)):
            raise ValueError(f"several values {list(value)!r} for one field; add a join transform")
        if leaf.type == "enum":
            text = _text(value).strip()
            if text not in leaf.choices:
                hint = "" if self.codes else "; map the source codes with a code table"
                raise ValueError(f"{text!r} is not one of {leaf.choice_list}{hint}")
            return text
        if leaf.type == "str":
            return _text(value)
        return value


class _Items(dict):
    """Items of a repeated value while a record is built, by position or by code."""


@dataclass
class RecordBlock:
    """One canonical record a row produces: a person, an involvement or a relationship."""

    kind: str  # "person" | "involvement" | "relationship"
    label: str  # e.g. "person", "involvements[1]", for reasons
    fields: list[FieldMapping]
    source_id: Template | None = None  # None: the row's own source id
    subject: Template | None = None
    related: Template | None = None
    when: tuple[str, ...] = ()

    @property
    def source_fields(self) -> list[str]:
        out = [f for fm in self.fields for f in fm.source_fields]
        for t in (self.source_id, self.subject, self.related):
            if t:
                out += t.fields
        return out + list(self.when)

    def build(self, system: str, change: RawChange, reasons: list[str]) -> tuple[SourceRef, dict] | None:
        raw = change.raw or {}
        if self.when and any(is_empty(field_value(raw, f)) for f in self.when):
            return None
        where = f"{self.label}"
        start = len(reasons)
        source_id = self.source_id.render(raw) if self.source_id else change.source_id
        if not source_id:
            reasons.append(f"{where}: no source id (source_id {self.source_id.text!r} has an empty part)")
            return None
        tree: dict[str, Any] = {}
        failed: set[str] = set()
        for fm in self.fields:
            try:
                value = fm.value(raw)
            except ValueError as exc:
                reasons.append(f"{where}: {fm.label}: {exc}")
                failed.add(fm.path.steps[0].field)
                continue
            if value is not None:
                _assign(tree, fm.path, value)
        doc = _finish(tree) or {}
        if self.kind == "person":
            for ident in doc.get("identifiers", []):
                if ident.get("scheme") == "local" and not ident.get("issuer"):
                    ident["issuer"] = system
        for name, template in (("subject", self.subject), ("related", self.related)):
            if template is not None:
                ref = template.render(raw)
                if ref is None:
                    reasons.append(f"{where}: {name}: no value (from {', '.join(template.fields)})")
                    failed.add(name)
                else:
                    doc[name] = {"system": system, "entity": "person", "source_id": ref}
        model: type[BaseModel] = MODELS[self.kind]
        try:
            canonical = model.model_validate(doc)
        except ValidationError as exc:
            for err in exc.errors(include_url=False):
                path = loc_to_path(err["loc"])
                if err["type"] == "missing" and path.split(".")[0].split("[")[0] in failed:
                    continue  # already reported with its real cause
                got = err.get("input")
                shown = f" (got {got!r})" if isinstance(got, (str, int, float)) else ""
                reasons.append(f"{where}: {path}: {err['msg']}{shown}")
            if len(reasons) == start:
                reasons.append(f"{where}: not valid")
            return None
        if len(reasons) != start:
            return None
        # Both parts are known good (a loaded system name, a non-empty id): no need to validate again.
        ref = trusted(SourceRef, system=system, entity=EntityKind(self.kind), source_id=source_id)
        return ref, canonical.model_dump(mode="json")


def _assign(tree: dict[str, Any], path: CanonicalPath, value: Any) -> None:
    node = tree
    for step in path.steps[:-1]:
        if step.repeated:
            items = node.get(step.field)
            if items is None:
                items = node[step.field] = _Items()
            item = items.get(step.selector)
            if item is None:
                item = items[step.selector] = {step.key_field: step.selector} if step.key_field else {}
            node = item
        else:
            node = node.setdefault(step.field, {})
    node[path.steps[-1].field] = value


def _finish(node: Any, key_field: str | None = None) -> Any:
    """Built tree → plain JSON: repeated items in order, empty structures dropped."""
    if isinstance(node, _Items):
        ordered = sorted((k for k in node if isinstance(k, int))) + [k for k in node if not isinstance(k, int)]
        out = []
        for k in ordered:
            item = node[k]
            keyed = isinstance(k, str)
            content = {f: v for f, v in item.items() if not (keyed and v == k and f in _KEY_FIELDS)}
            finished = _finish(content)
            if finished:
                if keyed:
                    finished.update({f: v for f, v in item.items() if f in _KEY_FIELDS and v == k})
                out.append(finished)
        return out or None
    if isinstance(node, dict):
        out = {}
        for k, v in node.items():
            finished = _finish(v) if isinstance(v, dict) else v
            if finished is not None and finished != {}:
                out[k] = finished
        return out or None
    return node


_KEY_FIELDS = {"scheme", "kind", "type"}


@dataclass
class EntityMapping:
    name: str
    blocks: list[RecordBlock]
    groups: GroupRelationships | None = None

    @property
    def source_fields(self) -> list[str]:
        return [f for b in self.blocks for f in b.source_fields]


@dataclass
class SystemMapping:
    """The translation half of a mapping file: `translate(change, extracted_at=...)`."""

    system: str
    kind: str
    version: str
    entities: dict[str, EntityMapping] = field(default_factory=dict)

    def translate(self, change: RawChange, *, extracted_at: dt.datetime, version: int = 0) -> list[SourceRecord]:
        """Canonical records for one raw row, at `version`; TranslationError with every reason when it
        cannot be done."""
        entity = self.entities.get(change.entity)
        if entity is None:
            raise TranslationError([f"no mapping for entity {change.entity!r} in system {self.system!r}"])
        if change.raw is None:
            raise TranslationError([f"{change.entity} {change.source_id}: a deleted row has nothing to translate"])
        raw = dict(change.raw)
        reasons: list[str] = []
        built: list[tuple[SourceRef, dict]] = []
        for block in entity.blocks:
            result = block.build(self.system, change, reasons)
            if result is not None:
                built.append(result)
        if entity.groups is not None and change.group is not None:
            built += entity.groups.build(self.system, change.source_id, raw.get(entity.groups.role), change.group)
        keys = [ref.key for ref, _ in built]
        dupes = sorted({k for k in keys if keys.count(k) > 1})
        if dupes:
            reasons.append(f"the row produces {', '.join(dupes)} more than once; give the blocks distinct source_id")
        if reasons:
            raise TranslationError(reasons)
        digest = content_hash(raw)
        provenance = trusted(Provenance, adapter=self.kind, location=str(change.location),
                             mapping_version=self.version, extracted_at=extracted_at)
        observed = change.observed_at or extracted_at
        payload = jsonable(raw)
        return [trusted(SourceRecord, ref=ref, content_hash=digest, observed_at=observed, version=version,
                        provenance=provenance, raw=payload, canonical=canonical)
                for ref, canonical in built]


def jsonable(raw: Mapping[str, Any]) -> dict[str, Any]:
    return {str(k): (v.isoformat() if isinstance(v, (dt.date, dt.datetime)) else v if isinstance(
        v, (str, int, float, bool, type(None), list, dict)) else str(v)) for k, v in raw.items()}
