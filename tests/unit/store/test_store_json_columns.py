"""JSON columns are encoded and decoded by pydantic-core on both stores: what goes in comes
back equal (non-ASCII text, nesting, numbers), and dates become ISO strings instead of errors."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from hub.store.engine import json_dumps, json_loads
from hub.store.tables.records import QuarantineRow

VALUE = {"name": "Zoë O'Néil \u2028 \"quoted\"", "n": 3, "x": 1.5, "big": 2**53 + 1, "none": None,
         "nested": {"list": [1, "two", {"three": [True, False]}]}}


def test_round_trip_on_the_store(store):
    with store.transaction() as s:
        s.add(QuarantineRow(system="s", entity="e", source_id="1", location="here", raw=VALUE,
                            reasons=["ünïcode reason"]))
    with store.transaction() as s:
        row = s.execute(select(QuarantineRow)).scalar_one()
        assert row.raw == VALUE and row.reasons == ["ünïcode reason"]


def test_the_codec_keeps_utf8_and_writes_dates_as_iso_strings():
    text = json_dumps({"é": dt.date(2020, 1, 2)})
    assert text == '{"é":"2020-01-02"}' and json_loads(text) == {"é": "2020-01-02"}
    assert json_loads(json_dumps(VALUE)) == VALUE
