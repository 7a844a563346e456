"""The mapping language: field sources, every transform, code tables, dates, record
blocks, validation reasons collected in full, and load errors naming file, line and field."""

from __future__ import annotations

import datetime as dt
import textwrap
from pathlib import Path

import pytest

from adapters import MappingError, RawChange, TranslationError, load_system
from adapters.mapping.values import compile_transform, split_name

NOW = dt.datetime(2026, 11, 1, 12, 0, tzinfo=dt.timezone.utc)
HEADER = "member_id,full_name,forename,surname,dob,gender,nhs,addr1,addr2,town,postcode,joined,left,parent_id,phone"

BASE = """
[system]
name = "youth_service"
kind = "spreadsheet"
title = "Youth service"
service_category = "youth_service"
schedule = "every 15m"
trust_rank = 4

[source]
path = "exports"

[codes.sex]
map = { M = "male", F = "female", "1" = "male", "2" = "female", Boy = "male", Girl = "female" }
default = "unknown"

[entities.members]
file = "members.csv"
key = "member_id"
"""


def write_system(tmp_path: Path, body: str, *, base: str = BASE, name: str = "ys.toml") -> Path:
    (tmp_path / "exports").mkdir(exist_ok=True)
    (tmp_path / "exports" / "members.csv").write_text(HEADER + "\n", encoding="utf-8")
    path = tmp_path / name
    path.write_text(textwrap.dedent(base) + textwrap.dedent(body), encoding="utf-8")
    return path


def translate(defn, **raw):
    row = {c: "" for c in HEADER.split(",")} | {"member_id": "M1"} | raw
    return defn.mapping.translate(RawChange("members", row["member_id"], row, "members.csv:2"), extracted_at=NOW)


def reasons(defn, **raw) -> list[str]:
    with pytest.raises(TranslationError) as caught:
        translate(defn, **raw)
    return caught.value.reasons


PERSON = """
[entities.members.person.fields]
"names[0].given" = { field = "forename", transforms = ["trim", "title"] }
"names[0].family" = { field = "surname", transforms = ["trim", "title"] }
birth_date = { field = "dob", date = ["%d/%m/%Y", "%m/%Y", "%Y"] }
sex = { field = "gender", codes = "sex" }
"identifiers[nhs_number]" = { field = "nhs", transforms = ["strip_spaces"] }
"identifiers[local]" = "member_id"
"addresses[0].lines" = { fields = ["addr1", "addr2"], transforms = ["compact"] }
"addresses[0].town" = "town"
"addresses[0].postcode" = "postcode"
"contacts[mobile]" = "phone"
"""


def test_a_row_becomes_a_person_with_every_kind_of_value(tmp_path):
    defn = load_system(write_system(tmp_path, PERSON))
    [record] = translate(defn, forename="  jonathan ", surname="SMITH", dob="03/07/2011", gender="1",
                         nhs="943 476 5919", addr1="12 Mill Lane", addr2=" ", town="Matlock", postcode="de43ab",
                         phone="+44 7700 900123")
    assert record.ref.key == "youth_service/person/M1"
    person = record.person()
    assert (person.names[0].given, person.names[0].family) == ("Jonathan", "Smith")
    assert person.birth_date.value == dt.date(2011, 7, 3) and person.birth_date.precision == "day"
    assert person.sex == "male"
    assert person.identifier("nhs_number") == "9434765919"
    assert person.identifier("local") == "M1"
    assert person.identifiers[1].issuer == "youth_service"
    assert person.addresses[0].lines == ("12 Mill Lane",) and person.addresses[0].postcode == "DE4 3AB"
    assert person.contacts[0].kind == "mobile" and person.contacts[0].value == "+44 7700 900123"
    assert record.provenance.adapter == "spreadsheet" and record.provenance.location == "members.csv:2"
    assert record.provenance.mapping_version == defn.mapping.version
    assert record.raw["phone"] == "+44 7700 900123"


def test_empty_values_leave_structures_out(tmp_path):
    defn = load_system(write_system(tmp_path, PERSON))
    person = translate(defn, forename="Amy", surname="Li")[0].person()
    assert person.identifiers[0].scheme == "local" and len(person.identifiers) == 1
    assert person.addresses == () and person.contacts == () and person.birth_date is None
    assert person.sex == "unknown"


@pytest.mark.parametrize("dob,value,precision", [
    ("03/07/2011", dt.date(2011, 7, 3), "day"),
    ("07/2011", dt.date(2011, 7, 1), "month"),
    ("2011", dt.date(2011, 1, 1), "year"),
])
def test_date_formats_are_tried_in_order_and_give_precision(tmp_path, dob, value, precision):
    defn = load_system(write_system(tmp_path, PERSON))
    birth = translate(defn, forename="A", surname="B", dob=dob)[0].person().birth_date
    assert (birth.value, birth.precision) == (value, precision)


def test_every_reason_is_collected_not_just_the_first(tmp_path):
    defn = load_system(write_system(tmp_path, PERSON))
    found = reasons(defn, forename="", surname="", dob="31/02/2012", nhs="9434765918", postcode="nowhere")
    text = "\n".join(found)
    assert len(found) == 4, found
    assert "birth_date: '31/02/2012' matches none of the date formats %d/%m/%Y, %m/%Y, %Y" in text
    assert "names" in text and "NHS number '9434765918' fails its check digit" in text
    assert "postcode 'nowhere' is not a UK postcode" in text


def test_code_tables_with_default_and_without(tmp_path):
    body = PERSON.replace('codes = "sex"', 'codes = "strict"') + """
    [codes.strict]
    Male = "male"
    Female = "female"
    """
    defn = load_system(write_system(tmp_path, body))
    assert translate(defn, forename="A", surname="B", gender="female")[0].person().sex == "female"
    assert reasons(defn, forename="A", surname="B", gender="X") == [
        "person: sex: code 'X' is not in code table 'strict'"]
    lenient = load_system(write_system(tmp_path, PERSON, name="lenient.toml"))
    assert translate(lenient, forename="A", surname="B", gender="X")[0].person().sex == "unknown"
    assert translate(lenient, forename="A", surname="B", gender="girl")[0].person().sex == "female"


def test_split_full_name_both_ways(tmp_path):
    body = """
    [entities.members.person.fields]
    "names[0].given" = { field = "full_name", transforms = [{ split_name = "given" }, "title"] }
    "names[0].middle" = { field = "full_name", transforms = [{ split_name = "middle" }, "title"] }
    "names[0].family" = { field = "full_name", transforms = [{ split_name = "family" }, "title"] }
    """
    defn = load_system(write_system(tmp_path, body))
    name = translate(defn, full_name="SMITH, Jonathan Paul")[0].person().names[0]
    assert (name.given, name.middle, name.family) == ("Jonathan", "Paul", "Smith")
    name = translate(defn, full_name="Amy  Li")[0].person().names[0]
    assert (name.given, name.middle, name.family) == ("Amy", None, "Li")
    assert split_name("O'BRIEN, Siân", "family") == "O'BRIEN"


@pytest.mark.parametrize("spec,value,expected", [
    ("trim", "  a b  ", "a b"),
    ("upper", "ab", "AB"),
    ("lower", "AB", "ab"),
    ("title", "o'brien-SMITH", "O'Brien-Smith"),
    ("collapse_spaces", " a   b ", "a b"),
    ("strip_spaces", "943 476 5919", "9434765919"),
    ("digits", "943-476-5919", "9434765919"),
    ("null_if_empty", "  ", None),
    ("compact", ["a", "", None, " b "], ["a", "b"]),
    ("text", 9434765919.0, "9434765919"),
    ({"join": ", "}, ["12 Mill Lane", "", "Matlock"], "12 Mill Lane, Matlock"),
    ({"split": ","}, "12 Mill Lane, Wirksworth, Matlock", ["12 Mill Lane", "Wirksworth", "Matlock"]),
    ({"regex": r"YS(\d+)"}, "YS00123", "00123"),
    ({"regex": r"\d+"}, "no digits", None),
    ({"replace": [r"^0", "+44"]}, "07700", "+447700"),
    ({"null_if": ["N/A", "unknown"]}, "Unknown", None),
    ({"default": "x"}, "", "x"),
    ({"if_present": "closed"}, "2024-01-02", "closed"),
    ({"if_present": "closed"}, "", None),
    ({"split_name": "family"}, "SMITH, Jon", "SMITH"),
])
def test_each_transform(spec, value, expected):
    assert compile_transform(spec)(value) == expected


def test_involvements_and_relationships_refer_to_the_person(tmp_path):
    body = PERSON + """
    [[entities.members.involvements]]
    source_id = "reg-{member_id}"
    subject = "member_id"
    [entities.members.involvements.fields]
    service_category = { const = "youth_service" }
    kind = { const = "registration" }
    started_on = { field = "joined", date = "%d/%m/%Y" }
    ended_on = { field = "left", date = "%d/%m/%Y" }
    status = { template = "{left}", transforms = [{ regex = ".+" }, { replace = [".+", "closed"] }], default = "open" }

    [[entities.members.involvements]]
    source_id = "left-{member_id}"
    subject = "{member_id}"
    when = "left"
    [entities.members.involvements.fields]
    service_category = { const = "youth_service" }
    kind = { const = "episode" }
    started_on = { field = "left", date = "%d/%m/%Y" }

    [[entities.members.relationships]]
    source_id = "{member_id}-parent"
    subject = "member_id"
    related = "parent_id"
    when = "parent_id"
    [entities.members.relationships.fields]
    kind = { const = "parent" }
    """
    defn = load_system(write_system(tmp_path, body))
    records = translate(defn, forename="A", surname="B", joined="01/02/2024", parent_id="M7")
    assert [r.ref.key for r in records] == ["youth_service/person/M1", "youth_service/involvement/reg-M1",
                                            "youth_service/relationship/M1-parent"]
    inv = records[1].involvement()
    assert inv.subject.key == "youth_service/person/M1" and inv.status == "open"
    assert inv.started_on == dt.date(2024, 2, 1)
    rel = records[2].relationship()
    assert (rel.subject.source_id, rel.related.source_id, rel.kind) == ("M1", "M7", "parent")
    closed = translate(defn, forename="A", surname="B", joined="01/02/2024", left="01/03/2024")
    assert [r.ref.source_id for r in closed] == ["M1", "reg-M1", "left-M1"]
    assert closed[1].involvement().status == "closed"
    assert reasons(defn, forename="A", surname="B", joined="01/02/2024", left="01/01/2024") == [
        "involvement[0]: (record): Value error, involvement ends (2024-01-01) before it starts (2024-02-01)"]


def test_unknown_entity_and_deleted_rows_are_translation_errors(tmp_path):
    defn = load_system(write_system(tmp_path, PERSON))
    with pytest.raises(TranslationError, match="no mapping for entity 'other'"):
        defn.mapping.translate(RawChange("other", "X", {}, "x"), extracted_at=NOW)


def test_yaml_mapping_is_accepted(tmp_path):
    (tmp_path / "exports").mkdir()
    (tmp_path / "exports" / "members.csv").write_text(HEADER + "\n")
    path = tmp_path / "ys.yaml"
    path.write_text(textwrap.dedent("""
        system:
          name: youth_service
          kind: spreadsheet
          service_category: youth_service
          schedule: "0 2 * * *"
          trust_rank: 3
        source:
          path: exports
        entities:
          members:
            file: members.csv
            key: member_id
            person:
              fields:
                names[0].given: forename
                names[0].family: {field: surname, transforms: [upper]}
                birth_date: {field: dob, date: ["%Y-%m-%d"]}
        """))
    defn = load_system(path)
    assert defn.trigger == ("cron", "0 2 * * *") and defn.title == "youth_service"
    person = translate(defn, forename="Amy", surname="li", dob="2012-01-02")[0].person()
    assert person.names[0].family == "LI"
    broken = path.read_text().replace("birth_date: {field: dob", "birth_dat: {field: dob")
    path.write_text(broken)
    with pytest.raises(MappingError) as caught:
        load_system(path)
    assert caught.value.line == _line_of(path, "birth_dat:") and "birth_dat" in caught.value.field
    assert "has no field 'birth_dat'" in str(caught.value)


def test_env_variables_are_expanded_in_source_and_entities(tmp_path):
    path = write_system(tmp_path, PERSON, base=BASE.replace('path = "exports"', 'path = "${ESTATE}/exports"'))
    defn = load_system(path, env={"ESTATE": str(tmp_path)})
    assert defn.source["path"] == f"{tmp_path}/exports"
    with pytest.raises(MappingError) as caught:
        load_system(path, env={})
    assert caught.value.line == 11 and caught.value.field == "source.path"
    assert "ESTATE is not set" in str(caught.value)


def _line_of(path: Path, needle: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), start=1) if needle in line)


@pytest.mark.parametrize("bad,needle,field,message", [
    ('"names[0].nickname" = "forename"', "nickname", 'entities.members.person.fields."names[0].nickname"',
     "PersonName has no field 'nickname'"),
    ('birth_date = { field = "dob", date = ["%d/%m/%Q"] }', "%Q", "entities.members.person.fields.birth_date.date",
     "unknown directive %Q"),
    ('birth_date = { field = "dob", date = "%d/%m" }', '"%d/%m"', "entities.members.person.fields.birth_date.date",
     "has no year"),
    ('sex = { field = "gender", codes = "gender_codes" }', "gender_codes", "entities.members.person.fields.sex.codes",
     "unknown code table 'gender_codes'"),
    ('sex = { field = "sexe" }', '"sexe"', "entities.members.person.fields.sex.field",
     "source column 'sexe' does not exist"),
    ('sex = { field = "gender", transforms = ["shout"] }', "shout", "entities.members.person.fields.sex.transforms",
     "unknown transform 'shout'"),
    ('sex = { field = "gender", transforms = [{ regex = "(" }] }', "regex", "entities.members.person.fields.sex"
     ".transforms", "bad regular expression"),
    ('sex = { field = "gender", codes = { X = "man" } }', '"man"', "entities.members.person.fields.sex.codes",
     "'man', which is not a sex"),
    ('sex = { const = "man" }', '"man"', "entities.members.person.fields.sex.const", "'man' is not a sex"),
    ('sex = { field = "gender", colour = "red" }', "colour", "entities.members.person.fields.sex.colour",
     "unknown key"),
    ('"identifiers[passport]" = "nhs"', "passport", 'entities.members.person.fields."identifiers[passport]"',
     "'passport' is not a scheme of identifiers"),
])
def test_load_errors_name_file_line_and_field(tmp_path, bad, needle, field, message):
    body = "\n".join(line for line in PERSON.splitlines() if not line.startswith(("birth_date", "sex")))
    path = write_system(tmp_path, body + "\n" + bad + "\n")
    with pytest.raises(MappingError) as caught:
        load_system(path)
    err = caught.value
    assert err.file == str(path)
    assert err.line == _line_of(path, needle)
    assert err.field == field
    assert message in str(err)
    assert str(err).startswith(f"{path}:{err.line}: {field}: ")


@pytest.mark.parametrize("base_change,field,message", [
    (('service_category = "youth_service"', 'service_category = "youth_club"'), "system.service_category",
     "Input should be"),
    (('schedule = "every 15m"', 'schedule = "sometimes"'), "system.schedule", "neither an interval"),
    (('kind = "spreadsheet"', 'kind = "telex"'), "system.kind", "unknown adapter kind 'telex'"),
    (('trust_rank = 4', 'trust_rank = 0'), "system.trust_rank", "greater than or equal to 1"),
])
def test_system_table_errors(tmp_path, base_change, field, message):
    path = write_system(tmp_path, PERSON, base=BASE.replace(*base_change))
    with pytest.raises(MappingError) as caught:
        load_system(path)
    assert caught.value.field == field and message in str(caught.value)
    assert caught.value.line == _line_of(path, base_change[1])


def test_block_structure_errors(tmp_path):
    no_subject = """
    [[entities.members.involvements]]
    [entities.members.involvements.fields]
    service_category = { const = "youth_service" }
    kind = { const = "registration" }
    started_on = "joined"
    """
    with pytest.raises(MappingError, match="needs `subject`"):
        load_system(write_system(tmp_path, PERSON + no_subject))
    clash = PERSON + no_subject.replace("[[entities.members.involvements]]",
                                        '[[entities.members.involvements]]\nsubject = "member_id"') * 2
    with pytest.raises(MappingError, match="give all but one a source_id"):
        load_system(write_system(tmp_path, clash))
    with pytest.raises(MappingError, match="not valid TOML") as caught:
        load_system(write_system(tmp_path, PERSON + "sex = = 1\n"))
    assert caught.value.line is not None
    with pytest.raises(MappingError, match="needs at least one of person"):
        load_system(write_system(tmp_path, ""))


def test_dotted_fields_reach_into_nested_json(tmp_path):
    body = """
    [entities.members.person.fields]
    "names[0].given" = "name.given"
    "names[0].family" = { field = "name.family", required = true }
    "addresses[0].lines" = "address.lines"
    """
    path = write_system(tmp_path, body)
    (tmp_path / "exports" / "members.csv").write_text("member_id,name,address\n")
    defn = load_system(path)
    raw = {"member_id": "M1", "name": {"given": "Amy", "family": "Li"}, "address": {"lines": ["1 A St", "Derby"]}}
    person = defn.mapping.translate(RawChange("members", "M1", raw, "api"), extracted_at=NOW)[0].person()
    assert (person.names[0].given, person.names[0].family) == ("Amy", "Li")
    assert person.addresses[0].lines == ("1 A St", "Derby")
    raw["name"] = None
    with pytest.raises(TranslationError, match="names\\[0\\].family: has no value \\(from name.family\\)"):
        defn.mapping.translate(RawChange("members", "M1", raw, "api"), extracted_at=NOW)


def test_one_row_can_make_two_persons_and_the_relationship_between_them(tmp_path):
    body = """
    [[entities.members.persons]]
    [entities.members.persons.fields]
    "names[0].given" = "forename"
    "names[0].family" = { field = "surname", required = true }

    [[entities.members.persons]]
    source_id = "parent-{member_id}"
    when = "full_name"
    [entities.members.persons.fields]
    "names[0].given" = { field = "full_name", transforms = [{ split_name = "given" }] }
    "names[0].family" = { field = "full_name", transforms = [{ split_name = "family" }, "title"] }
    "contacts[phone]" = "phone"

    [entities.members.relationships]
    source_id = "{member_id}-parent"
    subject = "member_id"
    related = "parent-{member_id}"
    when = "full_name"
    [entities.members.relationships.fields]
    kind = { const = "parent" }
    """
    defn = load_system(write_system(tmp_path, body))
    records = translate(defn, forename="Amy", surname="Li", full_name="LI, Mei", phone="01629 000000")
    assert [r.ref.key for r in records] == ["youth_service/person/M1", "youth_service/person/parent-M1",
                                            "youth_service/relationship/M1-parent"]
    assert records[1].person().names[0].family == "Li"
    assert records[2].relationship().related.source_id == "parent-M1"
    assert [r.ref.key for r in translate(defn, forename="Amy", surname="Li")] == ["youth_service/person/M1"]


def test_records_carry_the_raw_row_its_hash_and_the_legacy_change_time(tmp_path):
    from canonical.records import content_hash

    defn = load_system(write_system(tmp_path, PERSON))
    changed = dt.datetime(2025, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)
    row = {c: "" for c in HEADER.split(",")} | {"member_id": "M1", "forename": "A", "surname": "B"}
    [record] = defn.mapping.translate(RawChange("members", "M1", row, "members.csv:2", observed_at=changed),
                                      extracted_at=NOW)
    assert record.raw == row and record.content_hash == content_hash(row)
    assert record.observed_at == changed and record.provenance.extracted_at == NOW
    assert record.model_dump(mode="json")["ref"] == {"system": "youth_service", "entity": "person",
                                                     "source_id": "M1"}


def test_records_built_without_validation_equal_their_validated_selves_at_the_version_asked(tmp_path):
    """The engine builds its records with `trusted` (no second validation): each must be what
    validating its own JSON gives, and carry the version the ingest translates it at."""
    from canonical.records import SourceRecord, SourceRef, trusted

    defn = load_system(write_system(tmp_path, PERSON))
    row = {c: "" for c in HEADER.split(",")} | {"member_id": "M1", "forename": "A", "surname": "B"}
    [record] = defn.mapping.translate(RawChange("members", "M1", row, "members.csv:2"), extracted_at=NOW, version=7)
    assert record.version == 7
    again = SourceRecord.model_validate_json(record.model_dump_json())
    assert again == record and again.model_fields_set == record.model_fields_set
    assert hash(again.ref) == hash(record.ref)
    with pytest.raises(TypeError, match="takes every field"):
        trusted(SourceRef, system="youth_service", source_id="M1")


def test_a_relationship_of_a_person_with_themself_is_refused():
    from canonical.involvement import Relationship

    me = {"system": "ys", "entity": "person", "source_id": "M1"}
    with pytest.raises(ValueError, match="two different people"):
        Relationship.model_validate({"subject": me, "related": me, "kind": "parent"})
    assert Relationship.model_validate({"subject": me, "related": me | {"source_id": "M2"}, "kind": "parent"})


def test_sql_columns_are_checked_when_the_mapping_loads(tmp_path):
    import sqlite3

    with sqlite3.connect(tmp_path / "legacy.db") as db:
        db.execute("CREATE TABLE child (id INTEGER PRIMARY KEY, forename TEXT, family_name TEXT)")
    path = tmp_path / "legacy.toml"
    path.write_text(textwrap.dedent("""
        [system]
        name = "legacy"
        kind = "sql"
        service_category = "social_care"

        [source]
        url = "sqlite:///legacy.db"

        [entities.child]
        table = "child"
        key = "id"
        [entities.child.person.fields]
        "names[0].given" = "forename"
        "names[0].family" = "surname"
        """))
    with pytest.raises(MappingError) as caught:
        load_system(path)
    assert caught.value.line == _line_of(path, '"surname"')
    assert "source column 'surname' does not exist in child (columns: family_name, forename, id)" in str(caught.value)
    path.write_text(path.read_text().replace('"surname"', '"family_name"'))
    assert load_system(path).mapping.entities["child"].blocks[0].kind == "person"


@pytest.mark.parametrize("formats,value,expected", [
    (["excel"], "44000", dt.date(2020, 6, 18)),
    (["excel"], 44000.0, dt.date(2020, 6, 18)),
    (["iso"], "2012-03-04T10:00:00Z", dt.date(2012, 3, 4)),
    (["%d-%b-%Y"], "03-Jul-2011", dt.date(2011, 7, 3)),
    (["%d/%m/%y"], "03/07/11", dt.date(2011, 7, 3)),
])
def test_special_and_short_date_formats(formats, value, expected):
    from adapters.mapping.values import compile_date_format, parse_date

    assert parse_date(value, tuple(compile_date_format(f) for f in formats))[0] == expected
