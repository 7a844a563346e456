"""`insert_rows` stores exactly what an executemany INSERT stores, on SQLite and PostgreSQL (COPY)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import insert, select

from hub.bulk import insert_rendered, insert_rows, render_rows
from hub.store.tables.messaging import MessageJournalRow
from hub.store.tables.records import SourceRecordRow

NOW = dt.datetime(2026, 11, 25, 12, 30, 15, 123456, tzinfo=dt.UTC)


def _record(i: int, **over):
    row = {"ref_key": f"s/person/{i}", "system": "s", "entity": "person", "source_id": str(i), "person_id": None,
           "content_hash": f"h{i}", "version": 1, "observed_at": NOW, "updated_at": NOW,
           "raw": {"name": "O'Brien\tJr\n", "n": i % 100, "nested": [1, None, {"x": "é"}]},
           "canonical": {"names": [{"given": "Ann", "family": "O'Brien"}], "birth_date": None},
           "provenance": {"system": "s"}, "deleted": False, "subject_key": None}
    row.update(over)
    return row


def _stored(session, keys):
    t = SourceRecordRow.__table__
    return {r.ref_key: dict(r._mapping) | {"id": None} for r in session.execute(select(t).where(t.c.ref_key.in_(keys)))}


def test_bulk_insert_matches_executemany(store):
    t = SourceRecordRow.__table__
    ours = [_record(i) for i in range(5)] + [_record(5, raw=None, canonical={"empty": {}, "list": []})]
    theirs = [_record(100 + i) for i in range(5)] + [_record(105, raw=None, canonical={"empty": {}, "list": []})]
    with store.transaction() as s:
        insert_rows(s, t, ours)
        s.execute(insert(t), theirs)
    with store.transaction() as s:
        a = _stored(s, [r["ref_key"] for r in ours])
        b = _stored(s, [r["ref_key"] for r in theirs])
        raw_null = {k: v for k, v in s.execute(select(t.c.ref_key, t.c.raw.is_(None)).where(
            t.c.ref_key.in_(["s/person/5", "s/person/105"])))}
    assert len(a) == len(b) == 6
    for i in range(6):
        mine, other = a[f"s/person/{i}"], b[f"s/person/{100 + i}"]
        for column in ("raw", "canonical", "provenance", "observed_at", "updated_at", "deleted", "person_id", "version"):
            assert mine[column] == other[column], column
    assert raw_null["s/person/5"] == raw_null["s/person/105"]  # None stored the same way (JSON null or NULL)


def test_bulk_insert_applies_python_defaults_and_rolls_back(store):
    t = MessageJournalRow.__table__
    rows = [{"message_id": f"m{i}", "event": "published", "type": "source.record.upserted", "source_system": "s",
             "at": NOW} for i in range(3)]
    try:
        with store.transaction() as s:
            insert_rows(s, t, rows)
            raise RuntimeError("roll back")
    except RuntimeError:
        pass
    with store.transaction() as s:
        assert s.execute(select(t).where(t.c.message_id.in_(["m0", "m1", "m2"]))).all() == []
        insert_rows(s, t, rows)
    with store.transaction() as s:
        stored = s.execute(select(t).where(t.c.message_id.in_(["m0", "m1", "m2"])).order_by(t.c.id)).all()
    assert [r.message_id for r in stored] == ["m0", "m1", "m2"]
    assert all(r.id is not None for r in stored)


def test_rows_rendered_before_the_transaction_store_the_same(store):
    """A bulk link's writer renders a part's rows before it takes the write lock (`render_rows`)
    and only sends them inside it (`insert_rendered`): the same rows as `insert_rows`."""
    t = SourceRecordRow.__table__
    rendered = render_rows(store.engine.dialect, t, [_record(200 + i) for i in range(4)])
    assert rendered.values and not rendered.rows  # ready for the driver: no SQLAlchemy INSERT inside the lock
    with store.transaction() as s:
        insert_rows(s, t, [_record(300 + i) for i in range(4)])
        insert_rendered(s, rendered)
        insert_rendered(s, render_rows(store.engine.dialect, t, []))  # nothing to insert: nothing sent
    with store.transaction() as s:
        a = _stored(s, [f"s/person/{200 + i}" for i in range(4)])
        b = _stored(s, [f"s/person/{300 + i}" for i in range(4)])
    assert len(a) == len(b) == 4
    for i in range(4):
        for column in ("raw", "canonical", "provenance", "observed_at", "updated_at", "deleted", "person_id"):
            assert a[f"s/person/{200 + i}"][column] == b[f"s/person/{300 + i}"][column], column


def test_update_rows_matches_sqlalchemys_update(store):
    """`update_rows` (on SQLite straight to the driver) stores what SQLAlchemy's UPDATE stores:
    JSON and dates through their bind processors, NULLs, and the `onupdate` stamp (updated_at)
    on the columns the rows leave out."""
    from sqlalchemy import bindparam, update

    from hub.bulk import update_rows

    t = SourceRecordRow.__table__
    old = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
    with store.transaction() as s:
        insert_rows(s, t, [_record(400 + i, updated_at=old) for i in range(6)])
    ours = [{"ref_key": f"s/person/{400 + i}", "person_id": f"P{i}", "canonical": {"x": [i, None, "é"]},
             "observed_at": NOW, "raw": None} for i in range(3)]
    theirs = [{**r, "ref_key": f"s/person/{403 + i}"} for i, r in enumerate(ours)]
    with store.transaction() as s:
        update_rows(s, t, "ref_key", ours + [{"ref_key": "s/person/400", "version": 7}])  # two sets of columns
        s.execute(update(t).where(t.c.ref_key == bindparam("b_ref_key")).values(
            {c: bindparam(f"b_{c}") for c in ("person_id", "canonical", "observed_at", "raw")}),
            [{f"b_{c}": v for c, v in r.items()} for r in theirs])
        update_rows(s, t, "ref_key", [])  # nothing to update: nothing sent
    with store.transaction() as s:
        stored = _stored(s, [f"s/person/{400 + i}" for i in range(6)])
    for i in range(3):
        mine, other = stored[f"s/person/{400 + i}"], stored[f"s/person/{403 + i}"]
        for column in ("raw", "canonical", "observed_at", "person_id", "deleted", "system"):
            assert mine[column] == other[column], column
        assert mine["person_id"] == f"P{i}" and mine["canonical"] == {"x": [i, None, "é"]}
        assert mine["updated_at"] > old.replace(tzinfo=mine["updated_at"].tzinfo)  # stamped, as SQLAlchemy stamps
        assert other["updated_at"] > old.replace(tzinfo=other["updated_at"].tzinfo)
    assert stored["s/person/400"]["version"] == 7 and stored["s/person/401"]["version"] == 1


def test_rows_sharing_a_timestamp_object_and_rows_not_sharing_it_store_their_own(store):
    """`render_rows` formats a value object once for consecutive rows that share it (a batch's
    timestamp), and every other value afresh."""
    t = SourceRecordRow.__table__
    other = NOW + dt.timedelta(hours=1)
    stamps = [NOW, NOW, other, NOW, other + dt.timedelta(0)]
    with store.transaction() as s:
        insert_rows(s, t, [_record(500 + i, observed_at=at) for i, at in enumerate(stamps)])
    with store.transaction() as s:
        stored = _stored(s, [f"s/person/{500 + i}" for i in range(len(stamps))])
    got = [stored[f"s/person/{500 + i}"]["observed_at"] for i in range(len(stamps))]
    naive = [(v.astimezone(dt.UTC) if v.tzinfo else v).replace(tzinfo=None) for v in got]  # SQLite keeps no offset
    assert naive == [at.replace(tzinfo=None) for at in stamps]
