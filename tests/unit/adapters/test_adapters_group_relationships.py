"""`group_relationships`: rows of one family (same `Family Ref`) relate through their roles.
Load errors name file, line and field; the spreadsheet kind (CSV and XLSX) hands each changed
row its group; a row added to, or deleted from, a family across two reads."""

from __future__ import annotations

import datetime as dt
import textwrap
from pathlib import Path

import pytest
from openpyxl import Workbook

from adapters import MappingError, RawChange, build_adapter, load_system
from canonical.records import content_hash
from tests.contract.adapter_factories import MemoryState, run

NOW = dt.datetime(2026, 11, 1, 12, 0, tzinfo=dt.UTC)
HEADER = ["Reg ID", "Family Ref", "Role", "First Name", "Surname"]
ROWS = [["R1", "F1", "Mother", "Ann", "Lee"], ["R2", "F1", "Child", "Bo", "Lee"],
        ["R3", "F1", "child", "Cy", "Lee"], ["R4", "F1", "Carer", "Di", "Ray"],
        ["R5", "F1", "Father", "Ed", "Lee"], ["R6", "F2", "Child", "Fay", "Orr"]]

SYSTEM = """
[system]
name = "cc"
kind = "{kind}"
service_category = "childrens_centres"

[source]
{source}

[entities.regs]
{entity}

[entities.regs.person.fields]
"names[0].given" = "First Name"
"names[0].family" = {{ field = "Surname", required = true }}

[entities.regs.group_relationships]
{groups}
"""
GROUPS = 'by = "Family Ref"\nrole = "Role"\nroles = { Mother = "parent", Father = "parent", Carer = "carer", ' \
         'Child = "child" }'


def write(tmp_path: Path, *, kind: str = "spreadsheet", groups: str = GROUPS, file: str = "regs.csv",
          source: str = 'path = "exports"', entity: str | None = None) -> Path:
    (tmp_path / "exports").mkdir(exist_ok=True)
    entity = entity if entity is not None else f'file = "{file}"\nkey = "Reg ID"'
    path = tmp_path / "cc.toml"
    path.write_text(textwrap.dedent(SYSTEM.format(kind=kind, source=source, entity=entity, groups=groups)))
    return path


def write_csv(path: Path, rows: list[list[str]]) -> None:
    path.write_text("\n".join(",".join(r) for r in [HEADER, *rows]) + "\n")


def write_xlsx(path: Path, rows: list[list[str]]) -> None:
    book = Workbook()
    sheet = book.active
    for row in [HEADER, *rows]:
        sheet.append(row)
    book.save(path)


def relationships(defn, change: RawChange) -> dict[str, tuple[str, str, str]]:
    """source id -> (subject, related, kind) of the relationship records a change translates to."""
    return {r.ref.source_id: (r.canonical["subject"]["source_id"], r.canonical["related"]["source_id"],
                              r.canonical["kind"])
            for r in defn.mapping.translate(change, extracted_at=NOW) if r.ref.entity.value == "relationship"}


def change(row: list[str], group: tuple | None) -> RawChange:
    return RawChange(entity="regs", source_id=row[0], raw=dict(zip(HEADER, row)), location="regs.csv:2",
                     group=group)


def others(key: str) -> tuple[tuple[str, str], ...]:
    family = next(r[1] for r in ROWS if r[0] == key)
    return tuple((r[0], r[2]) for r in ROWS if r[1] == family and r[0] != key)


def test_a_child_relates_to_each_adult_by_its_role_and_to_its_siblings(tmp_path):
    defn = load_system(write(tmp_path))
    assert relationships(defn, change(ROWS[1], others("R2"))) == {
        "grp-R2-R1": ("R2", "R1", "parent"), "grp-R2-R3": ("R2", "R3", "sibling"),
        "grp-R2-R4": ("R2", "R4", "carer"), "grp-R2-R5": ("R2", "R5", "parent")}


def test_an_adult_relates_to_each_child_and_not_to_other_adults(tmp_path):
    defn = load_system(write(tmp_path))
    records = defn.mapping.translate(change(ROWS[3], others("R4")), extracted_at=NOW)
    assert relationships(defn, change(ROWS[3], others("R4"))) == {
        "grp-R4-R2": ("R2", "R4", "carer"), "grp-R4-R3": ("R3", "R4", "carer")}
    rel = next(r for r in records if r.ref.source_id == "grp-R4-R2")
    assert rel.ref.key == "cc/relationship/grp-R4-R2" and rel.content_hash == records[0].content_hash
    assert rel.canonical["subject"] == {"system": "cc", "entity": "person", "source_id": "R2"}


def test_an_unknown_role_still_translates_the_person_and_relates_to_nobody(tmp_path):
    defn = load_system(write(tmp_path))
    odd = ["R9", "F1", "Lodger", "Gus", "Lee"]
    records = defn.mapping.translate(change(odd, others("R1") + (("R1", "Mother"),)), extracted_at=NOW)
    assert [r.ref.entity.value for r in records] == ["person"]
    # and a member of unknown role is skipped by the others
    assert relationships(defn, change(ROWS[1], (("R9", "Lodger"), ("R1", "Mother")))) == {
        "grp-R2-R1": ("R2", "R1", "parent")}


def test_no_group_no_relationships(tmp_path):
    defn = load_system(write(tmp_path))
    assert relationships(defn, change(ROWS[5], ())) == {}
    assert relationships(defn, change(ROWS[1], None)) == {}  # a kind or a re-run that gives no group


def test_roles_may_name_a_code_table(tmp_path):
    path = write(tmp_path, groups='by = "Family Ref"\nrole = "Role"\nroles = "roles"')
    path.write_text(path.read_text() + '\n[codes.roles]\nMUM = "parent"\nKID = "child"\n')
    defn = load_system(path)
    row = ["R2", "F1", "KID", "Bo", "Lee"]
    assert relationships(defn, change(row, (("R1", "MUM"),))) == {"grp-R2-R1": ("R2", "R1", "parent")}


@pytest.mark.parametrize("groups, field, message", [
    ('role = "Role"\nroles = { Child = "child" }', "entities.regs.group_relationships", "`by` must be"),
    ('by = "Family Ref"\nroles = { Child = "child" }', "entities.regs.group_relationships", "`role` must be"),
    ('by = "Family Ref"\nrole = "Role"', "entities.regs.group_relationships", "`roles` must map"),
    ('by = "Family Ref"\nrole = "Role"\nroles = { Child = "child", Mum = "mother" }',
     "entities.regs.group_relationships.roles", "role 'mother' is not one of"),
    ('by = "Family Ref"\nrole = "Role"\nroles = { Mum = "parent" }',
     "entities.regs.group_relationships.roles", 'no role maps to "child"'),
    ('by = "Family Ref"\nrole = "Role"\nroles = "nope"', "entities.regs.group_relationships.roles",
     "unknown code table 'nope'"),
    ('by = "Family Ref"\nrole = "Role"\nroles = { Child = "child" }\nkind = "x"',
     "entities.regs.group_relationships.kind", "unknown key"),
])
def test_load_errors_name_file_line_and_field(tmp_path, groups, field, message):
    path = write(tmp_path, groups=groups)
    with pytest.raises(MappingError) as err:
        load_system(path)
    assert err.value.field == field and message in err.value.message
    header = path.read_text().splitlines().index("[entities.regs.group_relationships]") + 1
    assert err.value.file == str(path) and err.value.line is not None and err.value.line >= header


def test_a_kind_that_cannot_read_groups_is_a_load_error(tmp_path):
    path = write(tmp_path, kind="sql", source='url = "sqlite:///x.db"', entity='table = "regs"\nkey = "Reg ID"')
    with pytest.raises(MappingError) as err:
        load_system(path)
    assert err.value.field == "entities.regs.group_relationships"
    assert "the sql kind cannot provide the other rows of a group" in err.value.message


def test_group_columns_must_exist_in_the_export(tmp_path):
    path = write(tmp_path, groups=GROUPS.replace('"Family Ref"', '"Family"'))
    write_csv(tmp_path / "exports" / "regs.csv", ROWS)
    with pytest.raises(MappingError) as err:
        load_system(path)
    assert err.value.field == "entities.regs.group_relationships.by" and "'Family' does not exist" in err.value.message


def test_the_person_must_use_the_row_id(tmp_path):
    path = write(tmp_path)
    path.write_text(path.read_text().replace('[entities.regs.person.fields]',
                                             '[entities.regs.person]\nsource_id = "p-{Reg ID}"\n'
                                             '[entities.regs.person.fields]'))
    with pytest.raises(MappingError, match="one `person` block using the row's own id"):
        load_system(path)


def ingest(defn, state: MemoryState, live: dict[str, list[str]]) -> tuple[list[RawChange], set[str]]:
    """One read as the hub does it: each changed row's record keys replace the row's previous ones,
    a deleted row's keys go. `live` (row -> its record keys) is updated; returns the changes and
    the keys announced as deleted."""
    result = run(build_adapter(defn), state)
    gone: set[str] = set()
    for c in result.changes:
        previous = live.pop(c.source_id, [])
        if c.deleted:
            gone |= set(previous)
            continue
        keys = [r.ref.key for r in defn.mapping.translate(c, extracted_at=NOW)]
        gone |= set(previous) - set(keys)
        live[c.source_id] = keys
    return result.changes, gone


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_added_and_deleted_rows_of_a_family_across_reads(tmp_path, fmt):
    file = f"regs.{fmt}"
    defn = load_system(write(tmp_path, file=file))
    writer = write_csv if fmt == "csv" else write_xlsx
    export = tmp_path / "exports" / file
    first = [ROWS[0], ROWS[1], ROWS[5]]
    writer(export, first)
    state, live = MemoryState(), {}
    changes, _ = ingest(defn, state, live)
    assert {c.source_id: c.group for c in changes} == {"R1": (("R2", "Child"),), "R2": (("R1", "Mother"),),
                                                       "R6": ()}
    assert sorted(k for keys in live.values() for k in keys if "/relationship/" in k) == [
        "cc/relationship/grp-R1-R2", "cc/relationship/grp-R2-R1"]

    writer(export, [*first, ROWS[2]])  # a sibling joins the family: only the new row is announced
    changes, gone = ingest(defn, state, live)
    assert [c.source_id for c in changes] == ["R3"] and not gone
    assert relationships(defn, changes[0]) == {"grp-R3-R1": ("R3", "R1", "parent"),
                                               "grp-R3-R2": ("R3", "R2", "sibling")}

    writer(export, [ROWS[1], ROWS[2], ROWS[5]])  # the mother leaves: her keys, and her relationships, go
    changes, gone = ingest(defn, state, live)
    assert [(c.source_id, c.deleted) for c in changes] == [("R1", True)]
    assert gone == {"cc/person/R1", "cc/relationship/grp-R1-R2"}

    changes, gone = ingest(defn, state, live)  # the same bytes again: nothing read, nothing announced
    assert changes == [] and not gone


def test_a_duplicated_key_is_related_once(tmp_path):
    defn = load_system(write(tmp_path))
    write_csv(tmp_path / "exports" / "regs.csv", [ROWS[0], ROWS[1], ROWS[0]])
    result = run(build_adapter(defn), MemoryState())
    by_id = {c.source_id: c for c in result.changes}
    assert by_id["R2"].group == (("R1", "Mother"),) and by_id["R1"].group == (("R2", "Child"),)
    assert any("appears more than once" in r for f in result.failures for r in f.reasons)


def test_the_row_hash_is_the_row_alone(tmp_path):
    """The group travels beside the raw row, so a family growing never changes its rows' hashes."""
    defn = load_system(write(tmp_path))
    write_csv(tmp_path / "exports" / "regs.csv", ROWS[:2])
    state = MemoryState()
    run(build_adapter(defn), state)
    assert state.hashes["regs"]["R1"] == content_hash(dict(zip(HEADER, ROWS[0])))


def test_the_group_index_keeps_little_per_row(tmp_path):
    """The first pass holds key, role and group per row only: well under 300 MB for a million."""
    import tracemalloc

    from adapters.kinds.spreadsheet import _group_index

    n = 30_000
    with (tmp_path / "big.csv").open("w") as fh:
        fh.write(",".join(HEADER) + ",Notes\n")
        for i in range(n):
            fh.write(f"CC{i:07d},FAM{i // 3:06d},{'Parent' if i % 3 == 0 else 'Child'},Given{i},Fam,{'x' * 200}\n")
    entity = {"file": "big.csv", "key": "Reg ID", "group_relationships": {"by": "Family Ref", "role": "Role"}}
    tracemalloc.start()
    try:
        index = _group_index(tmp_path, {"path": str(tmp_path)}, "regs", entity)
        held = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert len(index) == n // 3
    assert index.others({"Family Ref": "FAM000001"}, "CC0000004") == (("CC0000003", "Parent"), ("CC0000005", "Child"))
    assert held / n < 200, f"{held / n:.0f} bytes a row"
