"""`group_relationships`: relationships between rows of one entity that share a column value
(a family reference), which no single row names.

The adapter hands each changed row the other members of its group as (row key, role cell);
this row then emits one Relationship per other member it relates to, with the source id
`grp-{this key}-{other key}`. Every row emits its own pairs (so both rows of a pair emit it,
under two ids): a row added to an existing family brings its relationships to the unchanged
rows without those being read again, and a deleted row's relationships go with its record keys.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from adapters.mapping.document import Document, Key
from adapters.mapping.values import CodeTable, SpecError, compile_code_table
from canonical.codes import EntityKind, RelationshipKind
from canonical.involvement import Relationship
from canonical.records import SourceRef, trusted

GROUP_KEYS = {"by", "role", "roles"}
CHILD = "child"
# Roles an adult member may have: the relationship kind the child's record gets to it.
ADULT_ROLES = (RelationshipKind.PARENT.value, RelationshipKind.CARER.value, RelationshipKind.HOUSEHOLD_MEMBER.value)
ROLE_VALUES = (CHILD, *ADULT_ROLES)


@dataclass(frozen=True)
class GroupRelationships:
    """Compiled `[entities.<name>.group_relationships]`."""

    by: str  # source column: rows with the same value are one group
    role: str  # source column: this row's role in its group
    roles: CodeTable  # role cell -> "child" | "parent" | "carer" | "household_member"

    def role_of(self, cell: Any) -> str | None:
        """The canonical role of a role cell; None (no relationship) when the table does not know it."""
        try:
            return self.roles.lookup(cell)
        except ValueError:
            return None

    def build(self, system: str, this_key: str, this_role: Any,
              others: tuple[tuple[str, str], ...]) -> list[tuple[SourceRef, dict]]:
        """(ref, canonical) of every relationship between this row and the group's other rows:
        child -> adult (kind = the adult's role) and child -> child (sibling); adults among
        themselves, and rows of an unknown role, relate to nobody."""
        mine = self.role_of(this_role)
        if mine is None:
            return []
        out = []
        for other_key, other_cell in others:
            if other_key == this_key:
                continue
            theirs = self.role_of(other_cell)
            if theirs is None or (mine != CHILD and theirs != CHILD):
                continue
            if mine == CHILD:
                subject, related = this_key, other_key
                kind = RelationshipKind.SIBLING.value if theirs == CHILD else theirs
            else:
                subject, related, kind = other_key, this_key, mine
            doc = {"subject": _person(system, subject), "related": _person(system, related), "kind": kind}
            canonical = Relationship.model_validate(doc).model_dump(mode="json")
            ref = trusted(SourceRef, system=system, entity=EntityKind.RELATIONSHIP, source_id=f"grp-{this_key}-{other_key}")
            out.append((ref, canonical))
        return out


def _person(system: str, source_id: str) -> dict[str, str]:
    return {"system": system, "entity": "person", "source_id": source_id}


def compile_groups(doc: Document, key: Key, spec: Any, codes: Mapping[str, CodeTable]) -> GroupRelationships:
    """Validate a `group_relationships` table; MappingError names the file, line and field."""
    if not isinstance(spec, Mapping):
        raise doc.error(key, "must be a table: by = column, role = column, roles = { cell = role }")
    unknown = set(spec) - GROUP_KEYS
    if unknown:
        raise doc.error(key + (min(unknown),), f"unknown key (known: {', '.join(sorted(GROUP_KEYS))})")
    for name, what in (("by", "the column whose equal values make one group (e.g. a family reference)"),
                       ("role", "the column holding the row's role in its group")):
        if not isinstance(spec.get(name), str) or not spec[name].strip():
            raise doc.error(key + (name,) if name in spec else key, f"`{name}` must be {what}")
    roles = spec.get("roles")
    if roles is None:
        raise doc.error(key, "`roles` must map role cells to " + " | ".join(ROLE_VALUES)
                        + ' (e.g. { Mother = "parent", Child = "child" }) or name a [codes] table')
    try:
        if isinstance(roles, str):
            if roles not in codes:
                raise doc.error(key + ("roles",), f"unknown code table {roles!r} "
                                                  f"(defined: {', '.join(sorted(codes)) or 'none'})")
            table = codes[roles]
        else:
            table = compile_code_table("group_relationships.roles", roles)
    except SpecError as exc:
        raise doc.error(key + ("roles",), str(exc)) from None
    bad = [v for v in table.values() if v is not None and v not in ROLE_VALUES]
    if bad:
        raise doc.error(key + ("roles",), f"role {bad[0]!r} is not one of {', '.join(ROLE_VALUES)}")
    if CHILD not in table.values():
        raise doc.error(key + ("roles",), "no role maps to \"child\": every relationship of a group is a "
                                          "child's (to an adult or a sibling), so none would be made")
    return GroupRelationships(by=spec["by"], role=spec["role"], roles=table)
