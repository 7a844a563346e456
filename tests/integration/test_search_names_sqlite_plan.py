"""Search by several names alone (issue 9, "Search on SQLite" in docs/performance.md): the
answer is exactly "every token matches the family or the given name key, as a prefix or a
nickname", ranked exact key first, then nicknames, then by family name, given name and id;
the second stage (typos) answers only when the names as typed find no one; and on SQLite no
statement of a search scans the person table or a whole index of it."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import event, select

from hub.persons import name_key
from hub.services import persons
from hub.services.persons import SearchQuery, name_score, name_variants, search_persons
from hub.store.tables.records import PersonRow

PEOPLE = [  # given, family, birth date
    ("David", "Nicholson", "1980-01-01"), ("Dave", "Nicholson", "1981-02-02"), ("David", "Nicholls", "1982-03-03"),
    ("Davidson", "Nicholson", "1983-04-04"), ("Nicholson", "David", "1984-05-05"), ("David", "Davidson", "1985-06-06"),
    ("William", "Hargreaves", "2010-01-01"), ("Bill", "Hargreaves", "2010-01-02"), ("Billy", "Hargreaves", "2010-01-03"),
    ("Amy", "Smith", "2015-03-02"), ("Amy", "Smithson", "2015-03-03"), ("Jane", "Smith", "1988-06-01"),
    ("Amelia", "Smith", "2001-01-01"), ("Amy", "Jones", "2002-02-02"), ("Smith", "Amy", "2003-03-03"),
    ("Anna", "Smith", "2004-04-04"), ("Mary", "Ann Smith", "1970-01-01"), ("Mary", "Smith", "1971-01-01"),
]
QUERIES = ["David Nicholson", "Nicholson David", "Dav Nich", "Dave Nicholson", "David Davidson", "david david",
           "Bill Hargreaves", "William Hargreaves", "Amy Smith", "Smith Amy", "A Smith", "Amy S", "Amy Smith Smithson",
           "Mary Annsmith", "Zebedee Smith"]


@pytest.fixture
def store_with_people(store):
    with store.transaction() as s:
        for i, (given, family, born) in enumerate(PEOPLE):
            s.add(PersonRow(id=f"P{i:03d}", golden={}, display_name=f"{given} {family}", family_key=name_key(family),
                            given_key=name_key(given), birth_date=born))
        # Merged away: never found, whatever it matches.
        s.add(PersonRow(id="P999", golden={}, display_name="David Nicholson", family_key="nicholson",
                        given_key="david", birth_date="1980-01-01", merged_into="P000"))
    return store


def _expected(store, tokens: list[str]) -> list[str]:
    """The answer by definition: every live person each token matches (prefix or nickname, on
    either name), in the database's order (2 per exact key and 1 per nickname, then family,
    given, id), then by name score (stable)."""
    with store.transaction() as s:
        people = s.execute(select(PersonRow.id, PersonRow.family_key, PersonRow.given_key)
                           .where(PersonRow.merged_into.is_(None))).all()

    def matches(p, t: str) -> bool:
        key, variants = name_key(t), name_variants(t)
        return (p.family_key.startswith(key) or p.given_key.startswith(key) or p.family_key in variants
                or p.given_key in variants)

    def rank(p) -> int:
        return sum(2 * (name_key(t) in (p.family_key, p.given_key))
                   + bool({p.family_key, p.given_key} & name_variants(t)) for t in tokens)

    def score(p) -> float:
        return round(sum(max(name_score(t, p.family_key), name_score(t, p.given_key)) for t in tokens) / len(tokens), 3)

    found = [p for p in people if all(matches(p, t) for t in tokens)]
    in_database_order = sorted(found, key=lambda p: (-rank(p), p.family_key, p.given_key, p.id))
    return [p.id for p in sorted(in_database_order, key=lambda p: -score(p))]  # stable: the page's final order


@pytest.mark.parametrize("name", QUERIES)
def test_names_alone_find_exactly_every_match_ranked(store_with_people, name):
    expected = _expected(store_with_people, name.split())
    page = search_persons(store_with_people, SearchQuery(name=name, page_size=50))
    if expected:  # found as typed: that answer, counted exactly, nothing added by the typo stage
        assert [r["id"] for r in page.results] == expected
        assert page.total == len(expected)
    else:
        assert page.total == 0  # Zebedee: no one, not even by the typo stage


def test_exact_names_rank_first_and_pages_follow_on(store_with_people):
    first = search_persons(store_with_people, SearchQuery(name="David Nicholson", page_size=2))
    second = search_persons(store_with_people, SearchQuery(name="David Nicholson", page=2, page_size=2))
    expected = _expected(store_with_people, ["David", "Nicholson"])
    assert set(expected[:2]) == {"P000", "P004"}  # the exact keys, either way round, before Dave (nickname)
    assert expected[2] == "P001" and first.total == second.total == len(expected) >= 4
    assert [r["id"] for r in first.results + second.results] == expected[:4]
    assert "P999" not in expected


def test_a_prefix_with_too_many_stored_keys_keeps_its_range(store_with_people, monkeypatch):
    """Past NAME_KEYS stored keys a token's prefix is not expanded to keys: the same answer."""
    monkeypatch.setattr(persons, "NAME_KEYS", 1)
    for name in ("A Smith", "Dav Nich", "Bill Hargreaves", "Amy Smith Smithson"):
        page = search_persons(store_with_people, SearchQuery(name=name, page_size=50))
        assert [r["id"] for r in page.results] == _expected(store_with_people, name.split()), name


def test_a_typo_is_found_only_when_the_names_as_typed_find_no_one(store_with_people):
    assert search_persons(store_with_people, SearchQuery(name="Davud Nicholson")).results[0]["id"] == "P000"
    assert search_persons(store_with_people, SearchQuery(name="Amy Smyth")).results[0]["id"] == "P009"
    # "Dave Nicholson" matches as typed: the answer is the typed match, not "Davud"-like neighbours.
    page = search_persons(store_with_people, SearchQuery(name="Dave Nicholson", page_size=50))
    assert [r["id"] for r in page.results] == _expected(store_with_people, ["Dave", "Nicholson"])
    with_dob = search_persons(store_with_people, SearchQuery(name="Davud Nicholson", birth_date="1980-01-01"))
    assert [r["id"] for r in with_dob.results] == ["P000"]


def _plans(store, query: SearchQuery) -> list[str]:
    statements: list[tuple[str, object]] = []

    def seen(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith(("SELECT", "WITH")):
            statements.append((statement, parameters))

    event.listen(store.engine, "before_cursor_execute", seen)
    try:
        search_persons(store, query)
    finally:
        event.remove(store.engine, "before_cursor_execute", seen)
    details = []
    with store.engine.connect() as conn:
        for statement, parameters in statements:
            details += [row[3] for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters)]
    return details


@pytest.mark.parametrize("query", [SearchQuery(name="David Nicholson"), SearchQuery(name="Dav Nich"),
                                   SearchQuery(name="Amy Smith Jones"), SearchQuery(name="smith"),
                                   SearchQuery(name="David Nicholson", birth_date="1980-01-01"),
                                   SearchQuery(name="Davud Nicholson"), SearchQuery(name="Davud Nicholsen")],
                         ids=lambda q: f"{q.name}/{q.birth_date}")
def test_no_search_statement_scans_the_person_table_on_sqlite(sqlite_store, query):
    """SQLite never uses an index for `LIKE ? || '%'`: a prefix written so scanned the whole
    table (or a whole index). Every statement of these searches seeks instead."""
    with sqlite_store.transaction() as s:
        for i, (given, family, born) in enumerate(PEOPLE):
            s.add(PersonRow(id=f"P{i:03d}", golden={}, display_name=f"{given} {family}", family_key=name_key(family),
                            given_key=name_key(given), birth_date=born))
    details = _plans(sqlite_store, query)
    assert details and not [d for d in details if re.match(r"SCAN person\b", d)], details
