"""Person ids are ordered by creation time (`hub.persons.new_person_id`), so the persons a load
creates are appended to every index on person ids, and they are unique at millions of persons."""

from __future__ import annotations

import time

from hub.persons import new_person_id


def test_later_ids_sort_after_earlier_ones():
    first = new_person_id()
    time.sleep(0.002)
    assert new_person_id() > first
    assert first.startswith("P") and len(first) == 29


def test_ids_made_in_one_millisecond_are_still_unique():
    ids = [new_person_id() for _ in range(100_000)]
    assert len(set(ids)) == len(ids)
