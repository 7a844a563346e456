"""An export that is byte for byte the one last committed is not parsed again (freshness at
scale), yet counts as unchanged and deletes nothing; any change to it is read in full."""

from __future__ import annotations

from pathlib import Path

from adapters.kinds import spreadsheet
from tests.contract.adapter_factories import MemoryState, run


def _adapter(tmp_path: Path):
    return spreadsheet.build("sys", {"path": str(tmp_path)}, {"people": {"file": "p.csv", "key": "id"}},
                             base_dir=tmp_path, env={})


def _write(tmp_path: Path, rows: list[tuple[str, str]]) -> None:
    (tmp_path / "p.csv").write_text("id,name\n" + "".join(f"{i},{n}\n" for i, n in rows), encoding="utf-8")


def test_unchanged_export_is_not_parsed_and_deletes_nothing(tmp_path, monkeypatch):
    _write(tmp_path, [("1", "Ann"), ("2", "Bob"), ("3", "Cy")])
    state = MemoryState()
    first = run(_adapter(tmp_path), state)
    assert len(first.changes) == 3

    def no_parse(*_a, **_k):
        raise AssertionError("an unchanged export was parsed again")

    monkeypatch.setattr(spreadsheet, "_rows", no_parse)
    again = run(_adapter(tmp_path), state)
    assert again.unchanged == 3 and not again.changes and not again.failures
    monkeypatch.undo()

    _write(tmp_path, [("1", "Ann"), ("2", "Bobby")])  # one changed, one gone
    third = run(_adapter(tmp_path), state)
    assert sorted((c.source_id, c.deleted) for c in third.changes) == [("2", False), ("3", True)]
    assert third.unchanged == 1
