"""The `xml_files` adapter kind: snapshot and delta drops, archive and failed folders, the hardened
parser (XXE, billion laughs), XSD validation, broken files, and bounded memory on a 50 MB export."""

from __future__ import annotations

import threading
import time
import tracemalloc

import psutil
import pytest

from adapters.kinds import xml_files
from adapters.kinds.common import SourceConfigError
from adapters.kinds.xml_files.records import RecordReader, xpath_value
from tests.contract.adapter_factories import Crash, MemoryState, XmlSource, run

XSD = """<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema">
  <xs:element name="export"><xs:complexType><xs:sequence>
    <xs:element name="children"><xs:complexType><xs:sequence>
      <xs:element name="child" maxOccurs="unbounded"><xs:complexType><xs:sequence>
        <xs:element name="forename" type="xs:string"/><xs:element name="surname" type="xs:string"/>
        <xs:element name="dob" type="xs:date"/><xs:element name="sex" type="xs:string"/>
      </xs:sequence><xs:attribute name="id" type="xs:string" use="required"/></xs:complexType></xs:element>
    </xs:sequence></xs:complexType></xs:element>
  </xs:sequence></xs:complexType></xs:element>
</xs:schema>"""


@pytest.fixture
def drop(tmp_path):
    return XmlSource(tmp_path)


def _adapter(src: XmlSource, **source_overrides):
    source, entities = src.config()
    source.update(source_overrides)
    return xml_files.build("s", source, entities, base_dir=src.tmp_path, env={})


def _failed(src: XmlSource) -> tuple[list[str], str]:
    folder = src.tmp_path / "failed"
    names = sorted(p.name for p in folder.iterdir())
    reason = "".join(p.read_text() for p in folder.glob("*.reason.txt"))
    return names, reason


def test_snapshot_first_load_archives_the_file(drop):
    result = run(drop.adapter(), MemoryState())
    assert sorted(result.upserted) == ["P1", "P2", "P3", "P4", "P5"]
    assert result.upserted["P3"] == {"forename": "Chloe", "surname": "Nowak", "dob": "2015-06-30", "sex": "F"}
    assert result.changes[0].location == "children_0001.xml:2"
    assert all(len(b.changes) + len(b.failures) <= 2 for b in result.batches)
    assert list(drop.inbox.iterdir()) == []
    [archived] = (drop.tmp_path / "archive").iterdir()
    assert archived.name.startswith("children_0001.") and archived.suffix == ".xml"


def test_snapshot_changes_unchanged_and_deletions(drop):
    state = MemoryState()
    run(drop.adapter(), state)
    drop.change("P2", surname="Hughes-Li")
    changed = run(drop.adapter(), state)
    assert list(changed.upserted) == ["P2"] and changed.unchanged == 4 and changed.deleted == []
    drop.remove("P4")
    removed = run(drop.adapter(), state)
    assert removed.changes[0].deleted and removed.deleted == ["P4"] and removed.unchanged == 4


def test_identical_file_dropped_again_is_not_announced(drop):
    state = MemoryState()
    run(drop.adapter(), state)
    assert state.cursor("file:children_0001.xml")
    (drop.inbox / "children_0001.xml").write_text(drop.document(), encoding="utf-8")
    again = run(drop.adapter(), state)
    assert again.changes == [] and again.unchanged == 0 and again.batches == []
    assert any(p.name.endswith(".duplicate.xml") for p in (drop.tmp_path / "archive").iterdir())


def test_crash_mid_file_resumes_with_nothing_lost_or_duplicated(drop):
    state = MemoryState()
    with pytest.raises(Crash):
        run(drop.adapter(), state, crash_after=1)
    assert (drop.inbox / "children_0001.xml").exists()  # not archived: its last batch never committed
    assert set(state.hashes["children"]) == {"P1", "P2"}
    resumed = run(drop.adapter(), state)
    assert sorted(resumed.upserted) == ["P3", "P4", "P5"] and resumed.unchanged == 2


def test_record_without_id_is_reported_and_blocks_deletions(drop):
    state = MemoryState()
    run(drop.adapter(), state)
    drop.people.pop(0)
    drop.add_malformed()
    result = run(drop.adapter(), state)
    assert [f.reasons[0] for f in result.failures] == ["children: record has no id (@id)"]
    assert "Identifier" in result.failures[0].raw_excerpt
    assert result.deleted == []


def _pupils(path, ids, school="S1"):
    pupils = "".join(
        f"<Pupil><PupilId>{i}</PupilId><Surname>Smith</Surname><Contacts>"
        f"<Contact><ContactId>{i}-C1</ContactId><Forename>Sam</Forename></Contact>"
        f"<Contact><ContactId>{i}-C2</ContactId><Forename>Jo</Forename></Contact></Contacts></Pupil>"
        for i in ids)
    path.write_text(f'<PupilExport School="{school}">{pupils}</PupilExport>', encoding="utf-8")


PUPIL_ENTITIES = {
    "pupils": {"record_xpath": "/PupilExport/Pupil", "id_xpath": "PupilId",
               "fields": {"surname": "Surname", "school": "../@School"}},
    "contacts": {"record_xpath": "/PupilExport/Pupil/Contacts/Contact", "id_xpath": "ContactId",
                 "fields": {"forename": "Forename", "pupil": "../../PupilId"}},
}


def test_nested_records_and_a_snapshot_spread_over_several_files(tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    adapter = xml_files.build("s", {"inbox": "inbox"}, PUPIL_ENTITIES, base_dir=tmp_path, env={})
    _pupils(inbox / "pupils_S1.xml", ["A1", "A2"])
    _pupils(inbox / "pupils_S2.xml", ["B1"], school="S2")
    state = MemoryState()
    first = run(adapter, state)
    assert first.upserted["B1"] == {"surname": "Smith", "school": "S2"}
    assert first.upserted["A2-C2"] == {"forename": "Jo", "pupil": "A2"}
    assert len(first.upserted) == 9 and first.deleted == []
    _pupils(inbox / "pupils_S1.xml", ["A1"])  # the next drop: A2 has left; S2 unchanged
    _pupils(inbox / "pupils_S2.xml", ["B1"], school="S2")
    second = run(adapter, state)
    assert sorted(second.deleted) == ["A2", "A2-C1", "A2-C2"] and second.upserted == {}
    _pupils(inbox / "pupils_S1.xml", ["A1"])  # re-drops of announced files still count as present
    _pupils(inbox / "pupils_S2.xml", ["B1"], school="S2")
    third = run(adapter, state)
    assert third.changes == [] and third.batches == []
    _pupils(inbox / "pupils_S1.xml", ["A1", "A3"])
    (inbox / "pupils_S2.xml").write_text("<PupilExport><Pupil><PupilId>B1", encoding="utf-8")
    broken = run(adapter, state)  # S2 is unreadable: no deletion may be inferred from this run
    assert broken.deleted == [] and len(broken.failures) == 1
    assert sorted(broken.upserted) == ["A3", "A3-C1", "A3-C2"]
    _pupils(inbox / "pupils_S1.xml", ["A1", "A3"])  # a run's files are the whole snapshot: B1 went
    assert sorted(run(adapter, state).deleted) == ["B1", "B1-C1", "B1-C2"]


def test_delta_mode_with_delete_marker(tmp_path):
    src = XmlSource(tmp_path, mode="delta")
    source, entities = src.config()
    entities["children"]["delete_xpath"] = "@action = 'delete'"
    adapter = xml_files.build("s", source, entities, base_dir=tmp_path, env={})
    state = MemoryState()
    run(adapter, state)
    (src.inbox / "delta_0002.xml").write_text(
        '<export><children><child id="P2" action="delete"/>'
        '<child id="P6"><forename>Faye</forename><surname>Ross</surname><dob>2016-02-02</dob><sex>F</sex></child>'
        "</children></export>", encoding="utf-8")
    delta = run(adapter, state)
    assert delta.deleted == ["P2"] and list(delta.upserted) == ["P6"]  # absent P1, P3-P5 are not deletions


def test_namespaces_default_fields_and_record_path(tmp_path):
    inbox = tmp_path / "in"
    inbox.mkdir()
    (inbox / "a.xml").write_text(
        '<e:export xmlns:e="urn:ex"><e:children><e:child ref="7"><e:name>Ann</e:name><e:alias>A</e:alias>'
        '<e:alias>Annie</e:alias></e:child></e:children><e:archive><e:child ref="8"/></e:archive></e:export>',
        encoding="utf-8")
    entities = {"kids": {"record_xpath": "/e:export/e:children/e:child", "id_xpath": "@ref"},
                "names": {"record_xpath": "e:children/e:child", "id_xpath": "@ref",
                          "fields": {"aliases": {"xpath": "e:alias/text()", "many": True},
                                     "count": "count(e:alias)"}}}
    adapter = xml_files.build("s", {"inbox": "in", "namespaces": {"e": "urn:ex"}}, entities,
                              base_dir=tmp_path, env={})
    result = run(adapter, MemoryState())
    raws = {(c.entity, c.source_id): dict(c.raw) for c in result.changes}
    assert raws == {("kids", "7"): {"@ref": "7", "name": "Ann", "alias": ["A", "Annie"]},
                    ("names", "7"): {"aliases": ["A", "Annie"], "count": 2.0}}
    assert (tmp_path / "archive").is_dir()


# ---- hostile and broken files --------------------------------------------------------------------
def _drop_raw(src: XmlSource, name: str, content: bytes) -> None:
    (src.inbox / name).write_bytes(content)


def test_xxe_is_rejected_and_the_secret_never_read(drop):
    secret = drop.tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-VALUE")
    run(drop.adapter(), MemoryState())
    _drop_raw(drop, "evil.xml", f"""<?xml version="1.0"?>
<!DOCTYPE export [<!ENTITY xxe SYSTEM "file://{secret}">]>
<export><children><child id="P1"><forename>&xxe;</forename></child></children></export>""".encode())
    result = run(drop.adapter(), MemoryState())
    assert result.changes == []
    [failure] = result.failures
    assert "declares entities in its DOCTYPE (xxe)" in failure.reasons[0]
    names, reason = _failed(drop)
    assert names[0].startswith("evil.") and names[1].endswith(".reason.txt")
    assert "XXE" in reason and "TOP-SECRET-VALUE" not in repr(result)


def test_parameter_entity_and_billion_laughs_are_rejected_quickly(drop):
    lol = '<!ENTITY lol "lol">' + "".join(
        f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">' for i in range(1, 10))
    _drop_raw(drop, "zbomb.xml", f'<?xml version="1.0"?><!DOCTYPE export [{lol}]>'
                                 f"<export><children><child id='X'><forename>&lol9;</forename></child>"
                                 f"</children></export>".encode())
    _drop_raw(drop, "zparam.xml", b'<?xml version="1.0"?><!DOCTYPE export [<!ENTITY % p SYSTEM '
                                  b'"http://127.0.0.1:9/evil.dtd"> %p;]><export/>')
    started = time.monotonic()
    result = run(drop.adapter(), MemoryState())
    assert time.monotonic() - started < 5
    assert sorted(result.upserted) == ["P1", "P2", "P3", "P4", "P5"]  # the good file still loads
    reasons = sorted(f.reasons[0] for f in result.failures)
    assert reasons[0].startswith("zbomb.xml declares entities in its DOCTYPE (lol, lol1")
    assert reasons[1].startswith("zparam.xml declares entities in its DOCTYPE (p)")


@pytest.mark.parametrize("content, expected", [
    (b"", "is empty"),
    (b'<?xml version="1.0" encoding="UTF-8"?><export><children><child id="P9"><forename>Zo',
     "is not well-formed XML"),
    ('<?xml version="1.0" encoding="UTF-8"?><export><children><child id="P9"><forename>Zoë</forename>'
     "</child></children></export>".encode("latin-1"), "not in its declared encoding"),
])
def test_broken_files_fail_with_a_clear_reason(drop, content, expected):
    state = MemoryState()
    run(drop.adapter(), state)
    _drop_raw(drop, "broken.xml", content)
    result = run(drop.adapter(), state)
    [failure] = result.failures
    assert expected in failure.reasons[0] and failure.location.startswith("broken.xml")
    assert result.changes == []  # the whole file is checked before any record is announced
    names, reason = _failed(drop)
    assert len(names) == 2 and expected in reason
    assert "file:broken.xml" not in state.cursors


def test_xsd_validation_failure_moves_the_file_aside(drop):
    (drop.tmp_path / "children.xsd").write_text(XSD)
    assert len(run(_adapter(drop, schema="children.xsd"), MemoryState()).upserted) == 5
    drop.change("P1", dob="not a date")
    result = run(_adapter(drop, schema="children.xsd"), MemoryState())
    assert result.changes == []  # nothing from an invalid file is announced
    assert "does not match its XSD" in result.failures[0].reasons[0]
    assert "'not a date' is not a valid value" in _failed(drop)[1]


def test_configuration_errors(tmp_path):
    with pytest.raises(SourceConfigError, match="exactly one of `record_xpath` or `record_tag`"):
        xml_files.build("s", {"inbox": "in"}, {"k": {"id_xpath": "@id"}}, base_dir=tmp_path, env={})
    with pytest.raises(SourceConfigError, match="fields.x: bad XPath"):
        xml_files.build("s", {"inbox": "in"}, {"k": {"record_tag": "c", "id_xpath": "@id",
                                                     "fields": {"x": "a[["}}}, base_dir=tmp_path, env={})
    with pytest.raises(SourceConfigError, match="cannot load the XSD"):
        xml_files.build("s", {"inbox": "in", "schema": "missing.xsd"}, {}, base_dir=tmp_path, env={})
    adapter = xml_files.build("s", {"inbox": "in"}, {}, base_dir=tmp_path, env={})
    with pytest.raises(SourceConfigError, match="does not exist"):
        run(adapter, MemoryState())


# ---- memory --------------------------------------------------------------------------------------
class CountingState(MemoryState):
    """Commits nothing but cursors, so the test measures the adapter rather than the hub."""

    def commit(self, batch) -> None:
        self.cursors.update(batch.checkpoint)


def _write_big_export(path, records: int) -> None:
    with path.open("w", encoding="utf-8") as fh:
        fh.write('<?xml version="1.0" encoding="UTF-8"?>\n<export><children>\n')
        chunk = []
        for i in range(records):
            chunk.append(f'<child id="C{i:07d}"><forename>Forename{i % 997}</forename><surname>Surname{i % 991}'
                         f"</surname><dob>2010-01-{1 + i % 28:02d}</dob><sex>{'MF'[i % 2]}</sex>"
                         f"<notes>{'x' * 90}</notes></child>\n")
            if len(chunk) == 5000:
                fh.write("".join(chunk))
                chunk.clear()
        fh.write("".join(chunk) + "</children></export>\n")


@pytest.mark.slow
def test_50_mb_export_parses_in_bounded_memory(drop):
    path = drop.inbox / "children_9999.xml"
    _write_big_export(path, 260_000)
    assert path.stat().st_size > 50_000_000
    process = psutil.Process()
    baseline, peak_rss = process.memory_info().rss, [0]
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak_rss[0] = max(peak_rss[0], process.memory_info().rss)
            time.sleep(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    tracemalloc.start()
    try:
        source, entities = drop.config()
        source["batch_size"] = 1000
        adapter = xml_files.build("s", source, entities, base_dir=drop.tmp_path, env={})
        seen = 0
        for batch in adapter.extract(CountingState()):
            seen += len(batch.changes)
        _, python_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        stop.set()
        sampler.join()
    assert seen == 260_005
    assert python_peak < 15_000_000, python_peak
    assert peak_rss[0] - baseline < 60_000_000, peak_rss[0] - baseline


# ---- the sample estate's education drop -----------------------------------------------------------
def test_sample_estate_education_drop_with_its_xsd(tmp_path):
    from hub.estate import generate

    manifest = generate(tmp_path / "estate", people=1500, seed=3)
    education = tmp_path / "estate" / "education"
    entities = {
        "pupils": {"record_xpath": "/PupilExport/Pupil", "id_xpath": "PupilId",
                   "fields": {"surname": "Surname", "dob": "DOB", "lines": {"xpath": "Address/AddressLine",
                                                                              "many": True}}},
        "contacts": {"record_xpath": "/PupilExport/Pupil/Contacts/Contact", "id_xpath": "ContactId",
                     "fields": {"pupil": "../../PupilId", "relationship": "Relationship"}},
        "exclusions": {"record_tag": "Exclusion", "id_xpath": "ExclusionId"},
        "attendance": {"record_xpath": "Attendance/Year", "id_xpath": "AttendanceId"},
    }
    adapter = xml_files.build("education", {"inbox": "inbox", "schema": "pupils.xsd", "mode": "delta"},
                              entities, base_dir=education, env={})
    state = MemoryState()
    result = run(adapter, state)
    counts = {name: len(state.hashes.get(name, {})) for name in entities}
    assert counts == {name: manifest.systems["education"][name] for name in entities}
    [failure] = result.failures  # the truncated resend, reported and moved aside
    assert failure.location.startswith("pupils_") and "resend" in failure.location
    assert "is not well-formed XML" in failure.reasons[0]
    assert min(p.name for p in (education / "failed").glob("*.xml")).startswith("pupils_8304003_resend.")
    assert list((education / "inbox").iterdir()) == []


@pytest.mark.parametrize("expr", ["a", "a/text()", "b", "b/text()", "c", "missing", "missing/text()", "@id",
                                  "@nope", "e"])
def test_plain_paths_read_without_xpath_give_the_xpath_result(expr):
    from lxml import etree

    record = etree.XML(b'<r id="1"><a>x</a><b/><c>t<d>u</d>v</c><a>second</a><e>  sp </e></r>')
    reader = RecordReader("r", xml_files.XmlEntity(record_tag="r", id_xpath="@id", fields={"f": expr}), {})
    expected = xpath_value(etree.XPath(expr, smart_strings=False)(record), False)
    assert reader.raw(record, reader.children(record)) == {"f": expected}
