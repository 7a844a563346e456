"""An export that only grew (the bytes last committed, then new rows) is read from where the last
run stopped: the new rows, nothing deleted, the rest counted unchanged. Anything else about the
file (a row edited, a last line extended, a part that could not be read) reads it all again."""

from __future__ import annotations

from pathlib import Path

from adapters.kinds import spreadsheet
from tests.contract.adapter_factories import MemoryState, run

HEADER = b"id;name\r\n"


def _adapter(tmp_path: Path, **entity):
    return spreadsheet.build("sys", {"path": str(tmp_path)}, {"people": {"file": "p.csv", "key": "id", **entity}},
                             base_dir=tmp_path, env={})


def _rows(*rows: tuple[str, str]) -> bytes:
    return b"".join(f"{i};{n}\r\n".encode("cp1252") for i, n in rows)


def _parsed_rows(monkeypatch) -> list[str]:
    """The locations of the rows the adapter parses from now on."""
    seen: list[str] = []
    real = spreadsheet._read_csv

    def counting(*args, **kwargs):
        for item in real(*args, **kwargs):
            if isinstance(item, tuple) and item[2]:
                seen.append(item[0])
            yield item

    monkeypatch.setattr(spreadsheet, "_read_csv", counting)
    return seen


def test_rows_appended_to_an_export_are_read_alone(tmp_path, monkeypatch):
    path = tmp_path / "p.csv"
    path.write_bytes(HEADER + _rows(("1", "Ann"), ("2", "Bob"), ("3", "Zoë")))
    state = MemoryState()
    assert len(run(_adapter(tmp_path), state).changes) == 3
    parsed = _parsed_rows(monkeypatch)
    with path.open("ab") as fh:
        fh.write(_rows(("4", "Dee"), ("5", "Eve")))
    grown = run(_adapter(tmp_path), state)
    assert parsed == ["p.csv:5", "p.csv:6"]  # physical lines, as a full read names them
    assert [(c.source_id, c.location, dict(c.raw)) for c in grown.changes] == [
        ("4", "p.csv:5", {"id": "4", "name": "Dee"}), ("5", "p.csv:6", {"id": "5", "name": "Eve"})]
    assert grown.unchanged == 3 and not grown.failures
    parsed.clear()
    again = run(_adapter(tmp_path), state)
    assert again.unchanged == 5 and not again.changes and parsed == []
    with path.open("ab") as fh:
        fh.write(_rows(("6", "Fay")))
    assert [c.source_id for c in run(_adapter(tmp_path), state).changes] == ["6"]  # the mark moved on
    assert parsed == ["p.csv:7"]


def test_an_edited_export_is_read_in_full_and_its_deletions_found(tmp_path, monkeypatch):
    path = tmp_path / "p.csv"
    path.write_bytes(HEADER + _rows(("1", "Ann"), ("2", "Bob"), ("3", "Cy")))
    state = MemoryState()
    run(_adapter(tmp_path), state)
    parsed = _parsed_rows(monkeypatch)
    path.write_bytes(HEADER + _rows(("1", "Ann"), ("3", "Cy"), ("4", "Dee")))  # longer, but 2 is gone
    result = run(_adapter(tmp_path), state)
    assert sorted((c.source_id, c.deleted) for c in result.changes) == [("2", True), ("4", False)]
    assert len(parsed) == 3


def test_a_last_row_without_its_newline_may_have_been_extended(tmp_path):
    path = tmp_path / "p.csv"
    path.write_bytes(HEADER + _rows(("1", "Ann")) + b"2;Bo")
    state = MemoryState()
    run(_adapter(tmp_path), state)
    with path.open("ab") as fh:
        fh.write(b"b\r\n" + _rows(("3", "Cy")))
    result = run(_adapter(tmp_path), state)
    assert sorted((c.source_id, dict(c.raw)["name"]) for c in result.changes) == [("2", "Bob"), ("3", "Cy")]


def test_a_scan_that_could_not_read_part_of_the_file_keeps_no_mark(tmp_path, monkeypatch):
    path = tmp_path / "p.csv"
    path.write_bytes(HEADER + _rows(("1", "Ann")) + b"2;\xff\xfe\r\n" + _rows(("3", "Cy")))
    state = MemoryState()
    first = run(_adapter(tmp_path, encoding="utf-8"), state)
    assert first.failures and [c.source_id for c in first.changes] == ["1"]
    parsed = _parsed_rows(monkeypatch)
    with path.open("ab") as fh:
        fh.write(_rows(("4", "Dee")))
    again = run(_adapter(tmp_path, encoding="utf-8"), state)
    assert again.failures  # read from the start again: the unreadable line is reported again
    assert parsed == ["p.csv:2"]


def test_a_single_export_is_hashed_once_a_run_with_the_fingerprint_it_always_had(tmp_path, monkeypatch):
    """The fingerprint comes from the mark's digest (one reading of the file), equal to the one a
    whole-file hash gives, so cursors committed before still find the export unchanged."""
    path = tmp_path / "p.csv"
    path.write_bytes(HEADER + _rows(("1", "Ann"), ("2", "Bob")))
    entity = {"file": "p.csv", "key": "id"}
    expected = spreadsheet._fingerprint(tmp_path, entity)
    assert spreadsheet._single_mark(tmp_path, {"path": str(tmp_path)}, entity, [""])[-1] == expected
    state = MemoryState()
    run(_adapter(tmp_path), state)
    monkeypatch.setattr(spreadsheet, "_fingerprint", lambda *_a: (_ for _ in ()).throw(AssertionError("hashed twice")))
    with path.open("ab") as fh:
        fh.write(_rows(("3", "Cy")))
    assert [c.source_id for c in run(_adapter(tmp_path), state).changes] == ["3"]
    assert run(_adapter(tmp_path), state).unchanged == 3
