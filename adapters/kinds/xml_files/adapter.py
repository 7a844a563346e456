"""The `xml_files` adapter: the drop folder, file by file, into batches; archive and failed."""

from __future__ import annotations

import datetime as dt
import fnmatch
import hashlib
import pathlib
import shutil
from array import array
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from lxml import etree

from adapters.kinds.common import BatchBuilder, SourceConfigError, committed_hashes, excerpt
from adapters.kinds.xml_files.config import XmlEntity
from adapters.kinds.xml_files.records import RecordReader, parse_datetime, read_records
from adapters.kinds.xml_files.safety import (
    XmlRejected,
    check_safe,
    check_well_formed,
    describe,
    head,
    sha256,
    validate,
    where,
)
from adapters.port import (
    AdapterState,
    ApplyResult,
    ExtractBatch,
    RawChange,
    SourceFailure,
    WriteBack,
)
from canonical.records import content_hash


class XmlFilesAdapter:
    kind = "xml_files"

    def __init__(self, system: str, *, inbox: pathlib.Path, archive: pathlib.Path, failed: pathlib.Path,
                 entities: dict[str, XmlEntity], schema: etree.XMLSchema | None = None,
                 mode: str = "snapshot", file_glob: str = "*.xml", namespaces: dict[str, str] | None = None,
                 batch_size: int = 500) -> None:
        self.system, self.inbox, self.archive, self.failed = system, inbox, archive, failed
        self.schema, self.mode, self.file_glob, self.batch_size = schema, mode, file_glob, batch_size
        self.readers = {name: RecordReader(name, ent, namespaces or {}) for name, ent in entities.items()}

    def apply(self, change: WriteBack) -> ApplyResult:
        return ApplyResult(change.source_id or "", False, "xml_files sources are read-only: no write-back")

    def extract(self, state: AdapterState) -> Iterator[ExtractBatch]:
        if not self.inbox.is_dir():
            raise SourceConfigError(f"inbox folder {self.inbox} does not exist")
        scans = {name: _Scan(name, bool(state.row_hashes(name)) and self._mode(r) == "snapshot")
                 for name, r in self.readers.items()}
        for path in sorted(p for p in self.inbox.glob(self.file_glob) if p.is_file()):
            readers = [r for r in self.readers.values() if fnmatch.fnmatch(path.name, r.ent.file_glob or "*")]
            checksum = sha256(path)
            if state.cursor(_file_key(path.name)) == checksum:
                # announced already (a re-drop, or a crash before archiving): nothing to announce,
                # but its ids still count as present in this run's snapshot
                self._see_ids(path, [r for r in readers if scans[r.name].tracking], scans)
                self._move(path, self.archive, suffix=".duplicate")
                continue
            reasons: list[str] = []
            yield from self._file(path, checksum, readers, state, scans, reasons)
            if reasons:
                self._fail(path, reasons)
                for reader in readers:
                    scans[reader.name].complete = False
            else:
                self._move(path, self.archive)
        builder = BatchBuilder(self.batch_size)
        for name, scan in scans.items():
            for change in scan.deletions(state.row_hashes(name), str(self.inbox)):
                builder.change(change)
                if builder.full:
                    yield builder.take()
        if not builder.empty:
            yield builder.take()

    # ---- one file -----------------------------------------------------------------------------
    def _file(self, path: pathlib.Path, checksum: str, readers: list[RecordReader], state: AdapterState,
              scans: dict[str, _Scan], reasons: list[str]) -> Iterator[ExtractBatch]:
        """Batches for one file; when it cannot be read, its reasons are appended to `reasons`.

        The whole file is checked first (safe prolog, a tree-less well-formedness pass, then the
        XSD if there is one), so a broken file announces nothing at all. Records are read a batch
        ahead, so their committed hashes are read once per batch, not once per record."""
        builder = BatchBuilder(self.batch_size)
        known = {r.name: state.row_hashes(r.name) for r in readers}
        pending: list[RawChange | SourceFailure] = []
        try:
            check_safe(path)
            check_well_formed(path)  # first, so a truncated file is called that, not invalid
            if self.schema is not None:
                validate(path, self.schema)
            for reader, elem in read_records(path, readers):
                pending.append(self._read(path, reader, elem, scans[reader.name]))
                if len(pending) >= self.batch_size:
                    yield from _decide(pending, known, builder)
            yield from _decide(pending, known, builder)
        except (etree.XMLSyntaxError, XmlRejected, OSError) as exc:
            yield from _decide(pending, known, builder)
            reasons.append(describe(path, exc))
            builder.failure(SourceFailure(where(path, exc), (reasons[0],), head(path)))
            yield builder.take()
            return
        builder.checkpoint({_file_key(path.name): checksum})
        yield builder.take()

    def _see_ids(self, path: pathlib.Path, readers: list[RecordReader], scans: dict[str, _Scan]) -> None:
        if not readers:
            return
        try:
            for reader, elem in read_records(path, readers):
                source_id = reader.id(elem, reader.children(elem))
                if source_id not in (None, ""):
                    scans[reader.name].see(str(source_id).strip())
        except (etree.XMLSyntaxError, OSError):
            for reader in readers:
                scans[reader.name].complete = False

    def _read(self, path: pathlib.Path, reader: RecordReader, elem: Any, scan: _Scan) -> RawChange | SourceFailure:
        """The record as a change (a removal when `delete_xpath` says so), or why it cannot be one;
        whether it changed is decided by `_decide`, a batch of records at a time."""
        location = f"{path.name}:{elem.sourceline}"
        children = reader.children(elem)
        source_id = reader.id(elem, children)
        source_id = str(source_id).strip() if source_id not in (None, "") else ""
        if not source_id:
            scan.complete = False
            raw = reader.raw(elem, children)
            return SourceFailure(location, (f"{reader.name}: record has no id ({reader.ent.id_xpath})",),
                                 excerpt(raw))
        scan.see(source_id)
        if reader.delete is not None and reader.delete(elem) is True:
            # always announced: a file is read once, and a reader without committed state (a
            # reconciliation replaying every received file) needs the removal as much as ingest
            return RawChange(reader.name, source_id, None, location)
        raw = reader.raw(elem, children)
        observed = parse_datetime(reader.observed(elem, children)) if reader.observed else None
        return RawChange(reader.name, source_id, raw, location, observed)

    def _mode(self, reader: RecordReader) -> str:
        return reader.ent.mode or self.mode

    # ---- folders ------------------------------------------------------------------------------
    def _move(self, path: pathlib.Path, folder: pathlib.Path, suffix: str = "") -> pathlib.Path:
        folder.mkdir(parents=True, exist_ok=True)
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
        target = folder / f"{path.stem}.{stamp}{suffix}{path.suffix}"
        shutil.move(str(path), target)
        return target

    def _fail(self, path: pathlib.Path, reasons: list[str]) -> None:
        target = self._move(path, self.failed)
        target.with_name(target.name + ".reason.txt").write_text("\n".join(reasons) + "\n", encoding="utf-8")


class _Scan:
    """The ids of one entity seen in one run's snapshot files, kept as 8-byte digests so a
    multi-gigabyte snapshot's deletion check stays small; tracked only when a deletion is
    possible (snapshot mode, and the hub already holds rows of the entity)."""

    def __init__(self, entity: str, tracking: bool) -> None:
        self.entity, self.tracking = entity, tracking
        self.complete = True
        self.records = 0
        self._seen = array("Q")

    def see(self, source_id: str) -> None:
        self.records += 1
        if self.tracking:
            self._seen.append(_digest(source_id))

    def deletions(self, known: Iterable[str], location: str) -> list[RawChange]:
        if not (self.tracking and self.complete and self.records):
            return []  # a run without (all of) this entity's records says nothing about the others
        missing = {_digest(sid): sid for sid in known}
        for d in self._seen:
            missing.pop(d, None)
        return [RawChange(self.entity, sid, None, location) for sid in sorted(missing.values())]


def _decide(pending: list[RawChange | SourceFailure], known: Mapping[str, Mapping[str, str]],
            builder: BatchBuilder) -> Iterator[ExtractBatch]:
    """Move `pending` into `builder` in order, a record whose hash equals the committed one counted
    as unchanged; the committed hashes are read once per entity for all of `pending`. A full batch
    is yielded (and committed) at once, and the records after it are decided again, so a row read
    twice in one file is compared with its first copy as committed (a read the state has cached)."""
    while pending:
        ids: dict[str, list[str]] = {}
        for item in pending:
            if isinstance(item, RawChange) and item.raw is not None:
                ids.setdefault(item.entity, []).append(item.source_id)
        committed = {entity: committed_hashes(known[entity], sids) for entity, sids in ids.items()}
        for i, item in enumerate(pending):
            if isinstance(item, SourceFailure):
                builder.failure(item)
            elif item.raw is not None and (digest := committed[item.entity].get(item.source_id)) is not None \
                    and digest == content_hash(item.raw):
                builder.unchanged()
            else:
                builder.change(item)
            if builder.full:
                del pending[:i + 1]
                yield builder.take()
                break
        else:
            pending.clear()


def _file_key(name: str) -> str:
    """The cursor key of a file: its name, or a digest of a name too long for a cursor key."""
    key = f"file:{name}"
    return key if len(key) <= 200 else "file:sha256:" + hashlib.sha256(name.encode()).hexdigest()


def _digest(source_id: str) -> int:
    return int.from_bytes(hashlib.blake2b(source_id.encode(), digest_size=8).digest(), "big")
