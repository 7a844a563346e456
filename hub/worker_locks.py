"""Serialising competing workers on what they are about to link (PostgreSQL advisory locks; a
file lock for the bulk link on SQLite).

Two workers that receive records of the same new person at the same moment would
both find no person and both create one. Before linking, the worker therefore takes
a transaction-scoped advisory lock on every key a record could be matched on: its
own source reference (updates to one record), the strong identifiers (NHS number,
UPN) and the normalised name with date of birth. The second worker waits until the
first commits, then finds the person the first created.

All keys of a batch are taken at once, in sorted order, so two workers never wait
on each other in a cycle. Keys are hashed: no identifier reaches `pg_locks`.
A linker can name its own keys by defining `lock_keys(record) -> Iterable[str]`.
"""

from __future__ import annotations

import fcntl
import hashlib
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager

from sqlalchemy import text
from sqlalchemy.orm import Session

from canonical.codes import EntityKind, IdentifierScheme
from canonical.messages import Envelope
from canonical.person import Person
from canonical.records import SourceRecord, SourceRef
from hub.store.engine import Store, sqlite_file
from hub.worker_batch import parse_message

STRONG_SCHEMES = (IdentifierScheme.NHS_NUMBER, IdentifierScheme.UPN)


def person_lock_keys(record: SourceRecord) -> list[str]:
    """The keys a person record can be matched on: strong identifiers, name with date of birth."""
    person = Person.model_validate(record.canonical)
    keys = [f"id:{i.scheme.value}:{i.value.replace(' ', '')}" for i in person.identifiers
            if i.scheme in STRONG_SCHEMES]
    name = person.current_name
    if person.birth_date and name.family and name.given:
        keys.append(f"name:{_letters(name.family)}|{_letters(name.given)}|{person.birth_date.value.isoformat()}")
    return keys


def _letters(value: str) -> str:
    return "".join(ch for ch in value.lower() if ch.isalpha())


def batch_lock_keys(batch: Sequence[Envelope], linker: object) -> list[int]:
    """Sorted, de-duplicated 64-bit lock ids for every record of the batch."""
    return op_lock_keys([op for env in batch for op in parse_message(env)[0]], linker)


def op_lock_keys(ops: Sequence[object], linker: object) -> list[int]:
    """`batch_lock_keys` for messages already validated (objects with `ref` and `record`)."""
    return record_lock_keys([op.record if op.record is not None else op.ref for op in ops], linker)  # type: ignore[attr-defined]


def record_lock_keys(records: Sequence[SourceRecord | SourceRef], linker: object) -> list[int]:
    """Lock ids of upserted records (their ref and match keys) and deleted refs (their ref)."""
    supplied = getattr(linker, "lock_keys", None)
    keys: set[str] = set()
    for item in records:
        if isinstance(item, SourceRef):
            keys.add(f"ref:{item.key}")
            continue
        keys.add(f"ref:{item.ref.key}")
        if item.ref.entity == EntityKind.PERSON:
            keys.update(supplied(item) if supplied else person_lock_keys(item))
    return sorted({lock_id(k) for k in keys})


def lock_id(key: str) -> int:
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big", signed=True)


def take_advisory_locks(session: Session, lock_ids: Iterable[int]) -> None:
    """Hold each lock until this transaction ends (commit or rollback releases them).

    One round trip: the function scan over the array takes them in the array's (sorted) order."""
    ids = list(lock_ids)
    if ids:
        session.execute(text("SELECT count(pg_advisory_xact_lock(k)) FROM unnest(CAST(:ids AS bigint[])) AS k"),
                        {"ids": ids})


BULK_LINK_LOCK = int.from_bytes(hashlib.sha256(b"hub:bulk-link").digest()[:8], "big", signed=True)


@contextmanager
def bulk_link_turn(store: Store) -> Iterator[bool]:
    """Whether this worker may link the pending records now: one worker at a time, not waited for
    (the worker whose turn it is links every worker's pending records). On PostgreSQL a session
    advisory lock on a connection of its own. On SQLite an exclusive `flock` on a file beside the
    database: its write lock is not enough, since a bulk link reads and clusters without it, and
    two embedded workers would cluster the same held records at once. An in-memory store has one
    worker."""
    if store.dialect != "postgresql":
        path = sqlite_file(store.url)
        if path is None:
            yield True
            return
        with open(f"{path}.bulk-link.lock", "a+b") as lock:
            try:
                fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            try:
                yield True
            finally:
                fcntl.flock(lock.fileno(), fcntl.LOCK_UN)
        return
    with store.engine.connect() as connection:
        got = bool(connection.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": BULK_LINK_LOCK}).scalar())
        connection.commit()
        try:
            yield got
        finally:
            if got:
                connection.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": BULK_LINK_LOCK})
                connection.commit()
