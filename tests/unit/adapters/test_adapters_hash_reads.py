"""Change detection reads the committed hashes once per batch of records, not once per record:
the XML drop reader and `rowhash_batches` ask a batch-capable mapping (`subset`) for a batch of
ids at a time, and decide again after each committed batch, so a row read twice in one file is
compared with its first copy as committed."""

from __future__ import annotations

from collections.abc import Collection, Iterator
from dataclasses import dataclass, field

from adapters.kinds.common import BatchRowHashes, ScannedRow, committed_hashes, rowhash_batches
from adapters.port import ExtractBatch
from canonical.records import content_hash
from tests.contract.adapter_factories import FIELDS, PEOPLE, XmlSource, run


@dataclass
class Reads:
    batches: list[int] = field(default_factory=list)  # the size of each `subset` call
    single: int = 0  # ids asked one at a time
    whole: int = 0  # reads of every committed hash (iterating or sizing)


class LiveHashes:
    """A live view of the committed hashes of one entity that counts how it is read."""

    def __init__(self, rows: dict[str, str], reads: Reads) -> None:
        self.rows, self.reads = rows, reads

    def subset(self, source_ids: Collection[str]) -> dict[str, str]:
        self.reads.batches.append(len(source_ids))
        return {sid: self.rows[sid] for sid in source_ids if sid in self.rows}

    def __getitem__(self, source_id: str) -> str:
        self.reads.single += 1
        return self.rows[source_id]

    def get(self, source_id: str, default: str | None = None) -> str | None:
        self.reads.single += 1
        return self.rows.get(source_id, default)

    def __iter__(self) -> Iterator[str]:
        self.reads.whole += 1
        return iter(list(self.rows))

    def __len__(self) -> int:
        self.reads.whole += 1
        return len(self.rows)


@dataclass
class CountingState:
    """Like the hub's state: committed as each batch commits, read through `LiveHashes`."""

    cursors: dict[str, str] = field(default_factory=dict)
    hashes: dict[str, dict[str, str]] = field(default_factory=dict)
    reads: Reads = field(default_factory=Reads)

    def cursor(self, key: str) -> str | None:
        return self.cursors.get(key)

    def row_hashes(self, entity: str) -> LiveHashes:
        return LiveHashes(self.hashes.setdefault(entity, {}), self.reads)

    def commit(self, batch: ExtractBatch) -> None:
        for change in batch.changes:
            rows = self.hashes.setdefault(change.entity, {})
            if change.deleted:
                rows.pop(change.source_id, None)
            else:
                rows[change.source_id] = content_hash(dict(change.raw or {}))
        self.cursors.update(batch.checkpoint)


def _child(person: dict[str, str]) -> str:
    return f'<child id="{person["id"]}">' + "".join(f"<{f}>{person[f]}</{f}>" for f in FIELDS) + "</child>"


def test_a_mapping_that_batches_is_read_once_and_a_dict_by_id():
    reads = Reads()
    assert isinstance(LiveHashes({}, reads), BatchRowHashes) and not isinstance({}, BatchRowHashes)
    assert committed_hashes(LiveHashes({"a": "1", "b": "2"}, reads), ["a", "c"]) == {"a": "1"}
    assert reads.batches == [2] and reads.single == 0
    assert committed_hashes({"a": "1"}, ["a", "c"]) == {"a": "1"}


def test_xml_reads_committed_hashes_once_per_batch_of_records(tmp_path):
    drop = XmlSource(tmp_path, mode="delta", batch_size=2)
    state = CountingState()
    first = run(drop.adapter(), state)
    assert sorted(first.upserted) == ["P1", "P2", "P3", "P4", "P5"]
    state.reads = Reads()
    drop.drop()  # the same five people again, in a new file: all unchanged
    again = run(drop.adapter(), state)
    assert again.changes == [] and again.unchanged == 5
    assert state.reads.single == 0 and state.reads.batches == [2, 2, 1]


def test_xml_row_read_twice_in_one_file_is_compared_with_its_first_copy_as_committed(tmp_path):
    drop = XmlSource(tmp_path, mode="delta", batch_size=2)
    state = CountingState()
    run(drop.adapter(), state)
    p1, p2, p3 = (dict(p) for p in PEOPLE[:3])
    p2["surname"], p3["surname"] = "Hughes-Li", "Nowak-Reid"
    # P1 unchanged, P2 and P3 changed (a full batch, committed), then P2 again as just committed
    drop.people, drop.extra = [p1, p2, p3], [_child(p2)]
    drop.drop()
    result = run(drop.adapter(), state)
    assert [c.source_id for c in result.changes] == ["P2", "P3"]
    assert result.unchanged == 2


def test_rowhash_batches_read_committed_hashes_once_per_batch():
    state = CountingState(hashes={"people": {f"P{i}": content_hash({"n": i}) for i in range(7)}})
    rows = [ScannedRow(f"P{i}", {"n": i if i != 3 else -1}, f"row {i}") for i in range(7)]
    batches = list(rowhash_batches("people", rows, state, batch_size=3, detect_deletions=False))
    assert [c.source_id for b in batches for c in b.changes] == ["P3"]
    assert sum(b.unchanged for b in batches) == 6
    assert state.reads.single == 0 and state.reads.batches == [3, 3, 1]


def test_deletions_read_every_committed_hash_once():
    """The store-backed hashes read everything on each iteration and each sizing: sorting the
    known ids must not size them first (one read of ~300,000 rows each at 1,000,000 people)."""
    state = CountingState(hashes={"people": {f"P{i}": content_hash({"n": i}) for i in range(5)}})
    rows = [ScannedRow(f"P{i}", {"n": i}, f"row {i}") for i in range(5) if i != 2]
    batches = list(rowhash_batches("people", rows, state, batch_size=3))
    assert [(c.source_id, c.deleted) for b in batches for c in b.changes] == [("P2", True)]
    assert state.reads.whole == 1
