"""Key-list look-ups (hub/identity/lookup.py): the rows a SQLAlchemy select gives, on both stores,
whatever the chunking, seeing the transaction's own pending writes."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import insert, select

from hub.identity.lookup import rows_in
from hub.store.tables.identity import IdentityBlockKeyRow, IdentityConstraintRow, IdentityRecordRow

BK, IR = IdentityBlockKeyRow.__table__, IdentityRecordRow.__table__


def _fill(session) -> None:
    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    session.execute(insert(IR), [{"ref_key": f"s/person/{i}", "person_id": f"P{i % 7}",
                                  "features": {"ref": f"s/person/{i}", "given": "ann"}, "updated_at": now}
                                 for i in range(40)])
    session.execute(insert(BK), [{"rule": rule, "key": f"k{i % 5}", "ref_key": f"s/person/{i}"}
                                 for i in range(40) for rule in ("dob", "nhs")])


def test_rows_are_those_of_the_select_in_every_chunking(store):
    with store.transaction() as session:
        _fill(session)
        wanted = sorted({(r, p) for r, p in session.execute(select(IR.c.ref_key, IR.c.person_id)
                                                             .where(IR.c.person_id.in_(["P1", "P3"])))})
        for chunk in (1, 3, 500):
            got = rows_in(session, IR, ["ref_key", "person_id"], "person_id", ["P1", "P3", "P9"], chunk=chunk)
            assert sorted(got) == wanted and all(isinstance(row, tuple) for row in got)
        by_rule = rows_in(session, BK, ["ref_key", "key"], "key", ["k0", "k2"], {"rule": "nhs"})
        assert sorted(by_rule) == sorted((f"s/person/{i}", f"k{i % 5}") for i in range(40) if i % 5 in (0, 2))
        assert rows_in(session, BK, ["ref_key"], "key", []) == []


def test_counted_rows_are_those_of_a_group_by(store):
    """`counted=True`: each distinct row once with how many there are (a bulk link's block sizes)."""
    with store.transaction() as session:
        _fill(session)
        for chunk in (1, 500):
            got = rows_in(session, BK, ["key"], "key", ["k0", "k2", "k9"], {"rule": "dob"}, chunk=chunk, counted=True)
            assert sorted(got) == [("k0", 8), ("k2", 8)]
        session.execute(insert(BK), [{"rule": "dob", "key": "k0", "ref_key": "s/person/99", "detail": "03"}])
        got = rows_in(session, BK, ["key", "detail"], "key", ["k0"], {"rule": "dob"}, counted=True)
        assert sorted(got) == [("k0", "", 8), ("k0", "03", 1)]


def test_json_is_read_as_its_stored_text(store):
    with store.transaction() as session:
        _fill(session)
        (text,), = rows_in(session, IR, ["features"], "ref_key", ["s/person/3"], as_text=("features",))
        assert isinstance(text, str) and '"given"' in text and "ann" in text


def test_pending_orm_writes_are_seen(store):
    with store.transaction() as session:
        session.add(IdentityConstraintRow(ref_a="a", ref_b="b", same=False, decided_by="steward", reason="no",
                                          created_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC)))
        assert rows_in(session, IdentityConstraintRow.__table__, ["ref_a", "ref_b"], "ref_a", ["a"]) == [("a", "b")]
