"""Compiling the mapping half of a mapping file (`[codes.*]` and the record blocks
of every `[entities.*]`) into a `SystemMapping`, with errors naming file, line and field."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from adapters.mapping.document import Document, Key
from adapters.mapping.engine import (
    EntityMapping,
    FieldMapping,
    RecordBlock,
    SystemMapping,
    Template,
)
from adapters.mapping.groups import compile_groups
from adapters.mapping.paths import PathError, compile_path
from adapters.mapping.values import (
    CodeTable,
    SpecError,
    compile_code_table,
    compile_date_format,
    compile_transform,
)

# Keys of an `[entities.<name>]` table that belong to the mapping; the others are the kind's.
MAPPING_KEYS = {"person", "persons", "involvements", "relationships", "group_relationships"}
BLOCK_KINDS = {"person": "person", "persons": "person", "involvements": "involvement",
               "relationships": "relationship"}
BLOCK_KEYS = {"source_id", "subject", "related", "when", "fields"}
FIELD_KEYS = {"field", "fields", "const", "template", "transforms", "codes", "date", "default", "required"}
ISO = compile_date_format("iso")


def compile_codes(doc: Document, codes: Any) -> dict[str, CodeTable]:
    if codes is None:
        return {}
    if not isinstance(codes, Mapping):
        raise doc.error(("codes",), "must be a table of code tables")
    out = {}
    for name, spec in codes.items():
        try:
            out[name] = compile_code_table(name, spec)
        except SpecError as exc:
            raise doc.error(("codes", name), str(exc)) from None
    return out


def compile_field(doc: Document, key: Key, record: str, path_text: str, spec: Any,
                  codes: dict[str, CodeTable]) -> FieldMapping:
    try:
        path = compile_path(record, path_text)
    except PathError as exc:
        raise doc.error(key, f"unknown canonical path: {exc}") from None
    if isinstance(spec, str):
        spec = {"field": spec}
    if not isinstance(spec, Mapping):
        raise doc.error(key, "a field mapping is a source field name or a table "
                             f"({', '.join(sorted(FIELD_KEYS))})")
    unknown = set(spec) - FIELD_KEYS
    if unknown:
        raise doc.error(key + (sorted(unknown)[0],), f"unknown key (known: {', '.join(sorted(FIELD_KEYS))})")
    sources = [k for k in ("field", "fields", "const", "template") if k in spec]
    if len(sources) != 1:
        raise doc.error(key, "give exactly one of field, fields, const, template")
    fm = FieldMapping(path=path, label=path_text, required=bool(spec.get("required", False)),
                      default=spec.get("default"))
    if "field" in spec:
        if not isinstance(spec["field"], str) or not spec["field"]:
            raise doc.error(key + ("field",), "must be a source field name")
        fm.source = spec["field"]
    elif "fields" in spec:
        if not (isinstance(spec["fields"], list) and spec["fields"] and all(isinstance(f, str) for f in spec["fields"])):
            raise doc.error(key + ("fields",), "must be a list of source field names")
        fm.source = list(spec["fields"])
    elif "template" in spec:
        if not isinstance(spec["template"], str) or "{" not in spec["template"]:
            raise doc.error(key + ("template",), 'must be a string with {field} placeholders')
        fm.template = Template(spec["template"])
    else:
        fm.const = spec["const"]
    transforms = spec.get("transforms", [])
    if not isinstance(transforms, list):
        transforms = [transforms]
    steps = []
    for i, t in enumerate(transforms):
        try:
            steps.append(compile_transform(t))
        except SpecError as exc:
            raise doc.error(key + ("transforms",), f"transform {i + 1}: {exc}") from None
    fm.transforms = tuple(steps)
    if "codes" in spec:
        table = spec["codes"]
        if isinstance(table, str):
            if table not in codes:
                raise doc.error(key + ("codes",), f"unknown code table {table!r} "
                                                   f"(defined: {', '.join(sorted(codes)) or 'none'})")
            fm.codes = codes[table]
        else:
            try:
                fm.codes = compile_code_table(f"{path_text} (inline)", table)
            except SpecError as exc:
                raise doc.error(key + ("codes",), str(exc)) from None
        if path.leaf.type == "enum":
            bad = [v for v in fm.codes.values() if v is not None and v not in path.leaf.choices]
            if bad:
                raise doc.error(key + ("codes",), f"code table {fm.codes.name!r} maps to {bad[0]!r}, which is not "
                                                   f"a {path_text} (one of {path.leaf.choice_list})")
    if "date" in spec:
        if path.leaf.type not in ("date", "partial_date"):
            raise doc.error(key + ("date",), f"{path_text} is not a date")
        formats = spec["date"] if isinstance(spec["date"], list) else [spec["date"]]
        try:
            fm.dates = tuple(compile_date_format(f) for f in formats)
        except SpecError as exc:
            raise doc.error(key + ("date",), f"bad date format: {exc}") from None
    elif path.leaf.type in ("date", "partial_date"):
        fm.dates = (ISO,)
    if fm.const is not None and path.leaf.type == "enum" and fm.codes is None and fm.const not in path.leaf.choices:
        raise doc.error(key + ("const",), f"{fm.const!r} is not a {path_text} (one of {path.leaf.choice_list})")
    return fm


def _template(doc: Document, key: Key, value: Any) -> Template:
    if not isinstance(value, str) or not value:
        raise doc.error(key, 'must be a source field name or a "{field}" template')
    return Template(value)


def compile_block(doc: Document, key: Key, record: str, label: str, spec: Any,
                  codes: dict[str, CodeTable]) -> RecordBlock:
    if not isinstance(spec, Mapping):
        raise doc.error(key, "a record block must be a table")
    unknown = set(spec) - BLOCK_KEYS
    if unknown:
        raise doc.error(key + (sorted(unknown)[0],), f"unknown key (known: {', '.join(sorted(BLOCK_KEYS))}); "
                                                      "canonical fields go in the block's `fields` table")
    fields = spec.get("fields")
    if not isinstance(fields, Mapping) or not fields:
        raise doc.error(key + ("fields",), f"a {record} block needs a `fields` table of canonical path = source")
    block = RecordBlock(kind=record, label=label, fields=[
        compile_field(doc, key + ("fields", p), record, p, s, codes) for p, s in fields.items()])
    if "source_id" in spec:
        block.source_id = _template(doc, key + ("source_id",), spec["source_id"])
    for name in ("subject", "related"):
        needed = name == "subject" and record != "person" or name == "related" and record == "relationship"
        if name in spec and not needed:
            raise doc.error(key + (name,), f"a {record} has no {name}")
        if needed and name not in spec:
            raise doc.error(key, f"a {record} block needs `{name}`: the source id of the person record, "
                                 'e.g. "{child_id}"')
        if name in spec:
            setattr(block, name, _template(doc, key + (name,), spec[name]))
    when = spec.get("when", [])
    when = [when] if isinstance(when, str) else when
    if not isinstance(when, list) or not all(isinstance(w, str) for w in when):
        raise doc.error(key + ("when",), "must be a source field name or a list of them")
    block.when = tuple(when)
    return block


def compile_entity(doc: Document, name: str, table: Mapping[str, Any],
                   codes: dict[str, CodeTable]) -> EntityMapping:
    key: Key = ("entities", name)
    blocks: list[RecordBlock] = []
    if "person" in table and "persons" in table:
        raise doc.error(key + ("persons",), "use either `person` (one) or `persons` (a list), not both")
    for section in ("person", "persons", "involvements", "relationships"):
        if section not in table:
            continue
        value = table[section]
        record = BLOCK_KINDS[section]
        if section == "person":
            blocks.append(compile_block(doc, key + (section,), record, "person", value, codes))
            continue
        if isinstance(value, Mapping):
            value = [value]
            items = [(key + (section,), value[0])]
        elif isinstance(value, list):
            items = [(key + (section, i), v) for i, v in enumerate(value)]
        else:
            raise doc.error(key + (section,), "must be a table or a list of tables")
        many = len(items) > 1
        for i, (item_key, spec) in enumerate(items):
            label = f"{record}[{i}]" if many else record
            blocks.append(compile_block(doc, item_key, record, label, spec, codes))
    if not blocks:
        raise doc.error(key, "an entity needs at least one of person, persons, involvements, relationships")
    groups = None
    if "group_relationships" in table:
        gkey = key + ("group_relationships",)
        groups = compile_groups(doc, gkey, table["group_relationships"], codes)
        persons = [b for b in blocks if b.kind == "person"]
        if len(persons) != 1 or persons[0].source_id is not None:
            raise doc.error(gkey, "group_relationships relate the rows' persons by row key: the entity needs "
                                  "one `person` block using the row's own id (no source_id template)")
    by_kind: dict[str, list[RecordBlock]] = {}
    for b in blocks:
        by_kind.setdefault(b.kind, []).append(b)
    for kind, group in by_kind.items():
        if sum(b.source_id is None for b in group) > 1:
            raise doc.error(key, f"this entity makes {len(group)} {kind} records per row; give all but one a "
                                 "source_id template so their ids differ")
    return EntityMapping(name, blocks, groups)


def check_default_ids(doc: Document, entities: dict[str, EntityMapping]) -> None:
    """Two entities both using the row's own id for the same record kind could make the same SourceRef."""
    owners: dict[str, str] = {}
    for name, entity in entities.items():
        for block in entity.blocks:
            if block.source_id is None:
                if block.kind in owners and owners[block.kind] != name:
                    raise doc.error(("entities", name), f"entities {owners[block.kind]!r} and {name!r} both use "
                                                        f"their row id as the {block.kind} id; give one a "
                                                        "source_id template (e.g. \"ref-{id}\")")
                owners[block.kind] = name


def compile_mapping(doc: Document, system: str, kind: str, version: str,
                    codes: dict[str, CodeTable], entities: Mapping[str, Any]) -> SystemMapping:
    compiled = {name: compile_entity(doc, name, table, codes) for name, table in entities.items()}
    check_default_ids(doc, compiled)
    return SystemMapping(system=system, kind=kind, version=version, entities=compiled)
