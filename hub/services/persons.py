"""Reading people from the store, before any access policy: ranked search and the bundle of
everything held on one person (member records, involvements, family, household).

Only `hub.services.view` calls this module; it applies the access policy and the audit.
Pages, API endpoints and CLI commands go through `view`, never through here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from itertools import product
from typing import Any

import jellyfish
from nicknames import NickNamer
from rapidfuzz.distance import JaroWinkler
from sqlalchemy import (
    and_,
    case,
    func,
    literal,
    literal_column,
    or_,
    select,
    text,
    union,
    union_all,
)

from canonical.person import normalise_postcode
from hub.persons import name_key, resolve
from hub.store.engine import Store
from hub.store.tables.records import PersonIdentifierRow, PersonRow, SourceRecordRow

MAX_CANDIDATES = 1000
KEYS_PER_PREFIX = 500
NAME_KEYS = 1000  # stored keys a typed prefix may expand to in `_names_page`
MIN_NAME_SCORE = 0.80
# Leading letters that sound alike, so "Filip" finds "Philip" and "Katie" finds "Catie".
_SOUND_ALIKE = {"ph": ("f",), "f": ("ph",), "c": ("k",), "k": ("c",), "wr": ("r",), "kn": ("n",), "j": ("g",),
                "g": ("j",), "y": ("i",), "i": ("y",)}


class PersonNotFound(LookupError):
    """No person has that id (nor was one merged into another under it)."""


@dataclass(frozen=True)
class SearchQuery:
    name: str | None = None
    birth_date: str | None = None  # ISO date
    identifier: str | None = None
    postcode: str | None = None
    page: int = 1
    page_size: int = 20
    hidden_systems: frozenset[str] = frozenset()  # identifiers issued by these systems do not match

    @property
    def empty(self) -> bool:
        return not any((self.name, self.birth_date, self.identifier, self.postcode))


@dataclass(frozen=True)
class SearchHit:
    id: str
    name: str
    birth_date: str | None
    postcode: str | None
    score: float
    matched_on: tuple[str, ...]


@dataclass(frozen=True)
class SearchPage:
    results: list[Any]
    total: int
    page: int
    page_size: int


@lru_cache(maxsize=1)
def _namer() -> NickNamer:
    return NickNamer()


@lru_cache(maxsize=4096)
def name_variants(token: str) -> frozenset[str]:
    """The token, its nicknames and the names it is a nickname of (william ↔ bill, will, billy)."""
    key = name_key(token)
    if not key:
        return frozenset()
    namer = _namer()
    variants = {key} | {name_key(n) for n in namer.nicknames_of(key)} | {name_key(n) for n in namer.canonicals_of(key)}
    return frozenset(v for v in variants if v)


def _prefixes(variant: str) -> set[str]:
    """Short prefixes that still find a name with a typo after its first letters."""
    out = {variant[:2]} if len(variant) >= 2 else {variant}
    for lead, alikes in _SOUND_ALIKE.items():
        if variant.startswith(lead):
            out |= {(alike + variant[len(lead):])[:2] for alike in alikes}
    return out


@lru_cache(maxsize=200_000)
def name_score(token: str, candidate: str) -> float:
    """How well one query token matches one stored name key (1.0 exact; nicknames 0.95;
    sounds alike 0.9; otherwise Jaro–Winkler similarity)."""
    if not candidate:
        return 0.0
    key = name_key(token)
    if key == candidate:
        return 1.0
    if candidate in name_variants(key):
        return 0.95
    best = JaroWinkler.similarity(key, candidate)
    sounds_alike = key[:1] == candidate[:1] or candidate.startswith(_SOUND_ALIKE.get(key[:1], ("\0",)))
    if sounds_alike and _metaphone(key) == _metaphone(candidate):
        best = max(best, 0.9)
    for variant in name_variants(key):
        best = max(best, 0.93 * JaroWinkler.similarity(variant, candidate))
    return best


@lru_cache(maxsize=50_000)
def _metaphone(key: str) -> str:
    return jellyfish.metaphone(key)


def _starts(column: Any, key: str, sqlite: bool) -> Any:
    """`column` starts with the name key `key`. On SQLite a range (key ≤ column < key's
    successor), which the name-key indexes serve: SQLite never uses an index for `LIKE ? || '%'`,
    so a prefix was a scan of the whole table or index (issue 9, "Search on SQLite" in
    docs/performance.md). Name keys are letters only, compared byte for byte (BINARY), so the
    range holds exactly the keys with that prefix. PostgreSQL keeps LIKE, which its
    text_pattern_ops indexes serve in any collation."""
    if not sqlite:
        return column.startswith(key)
    return and_(column >= key, column < key[:-1] + chr(ord(key[-1]) + 1))


def _exact_condition(token: str, sqlite: bool = False) -> Any:
    """The token as typed (a prefix: "smi" finds Smith) or one of its nicknames, on either name."""
    key = name_key(token)
    variants = sorted(name_variants(token))
    return or_(_starts(PersonRow.family_key, key, sqlite), _starts(PersonRow.given_key, key, sqlite),
               PersonRow.family_key.in_(variants), PersonRow.given_key.in_(variants))


def _fuzzy_prefixes(token: str) -> list[str]:
    """Short prefixes of the token and its nicknames, with sound-alike first letters: where the
    stored names a typo or a phonetic variant of the token could be are found."""
    prefixes: set[str] = set()
    for variant in name_variants(token):
        prefixes |= _prefixes(variant)
    return sorted(prefixes)


def _distinct_keys(s: Any, prefixes: list[str]) -> set[str]:
    """Every distinct family and given name key that starts with one of `prefixes`, in one
    statement. At most KEYS_PER_PREFIX keys per prefix and column."""
    found = _keys_under(s, [(c, p) for p in prefixes for c in ("family_key", "given_key")], KEYS_PER_PREFIX)
    return set().union(*found)


def _keys_under(s: Any, wanted: list[tuple[str, str]], cap: int) -> list[set[str]]:
    """The distinct stored keys of each (column, prefix) in `wanted`, in one statement: a loose
    index scan (a recursive step from one key to the next in the name-key indexes) reads one
    index entry per distinct name, not one row per person, however many people share a name.
    At most `cap` keys each."""
    if not wanted:
        return []
    pg = s.get_bind().dialect.name == "postgresql"
    # PostgreSQL: the pattern operators, so the text_pattern_ops indexes serve them in any collation.
    gt, ge, lt, order = ("~>~", "~>=~", "~<~", "USING ~<~") if pg else (">", ">=", "<", "")
    ctes, selects, params = [], [], {"cap": cap}
    for i, (column, prefix) in enumerate(wanted):
        params[f"lo{i}"], params[f"hi{i}"] = prefix, prefix[:-1] + chr(ord(prefix[-1]) + 1)

        def step(after: str, i: int = i, column: str = column) -> str:
            return (f"(SELECT {column} FROM person WHERE {column} {after} AND {column} {lt} :hi{i} "
                    f"ORDER BY {column} {order} LIMIT 1)")

        ctes.append(f"k{i}(k, n) AS (SELECT {step(f'{ge} :lo{i}')}, 1 UNION ALL "
                    f"SELECT {step(f'{gt} k{i}.k')}, n + 1 FROM k{i} WHERE k{i}.k IS NOT NULL AND n < :cap)")
        selects.append(f"SELECT {i} AS g, k FROM k{i} WHERE k IS NOT NULL")
    sql = "WITH RECURSIVE " + ", ".join(ctes) + " " + " UNION ALL ".join(selects)
    found: list[set[str]] = [set() for _ in wanted]
    for g, k in s.execute(text(sql), params):
        found[g].add(k)
    return found


def _fuzzy_condition(token: str, keys: set[str], bound: float) -> Any:
    """People with a name key that scores at least `bound` against the token."""
    close = sorted(k for k in keys if name_score(token, k) >= bound)
    return or_(PersonRow.family_key.in_(close), PersonRow.given_key.in_(close))


def _typed_matches(s: Any, tokens: list[str]) -> set[int]:
    """Which tokens match someone as typed (prefix or nickname, on either name), in one statement:
    one LIMIT 1 probe per token and index, so each is an index look-up (one OR-ed probe lets the
    planner scan the table hoping for an early hit)."""
    probes, sqlite = [], _is_sqlite(s)
    for i, token in enumerate(tokens):
        key, variants = name_key(token), sorted(name_variants(token))
        probes += [select(literal(i).label("token")).where(cond).limit(1).subquery().select()
                   for cond in (_starts(PersonRow.family_key, key, sqlite), _starts(PersonRow.given_key, key, sqlite),
                                PersonRow.family_key.in_(variants), PersonRow.given_key.in_(variants))]
    return set(s.execute(union_all(*probes)).scalars())


def _is_sqlite(s: Any) -> bool:
    return s.get_bind().dialect.name == "sqlite"


def _exact_rank(tokens: list[str], family: Any = PersonRow.family_key, given: Any = PersonRow.given_key) -> Any:
    """An SQL score so the database returns the best exact matches first."""
    score = literal(0)
    for token in tokens:
        key = name_key(token)
        score = score + case((or_(family == key, given == key), 2), else_=0) + case(
            (or_(family.in_(sorted(name_variants(token))), given.in_(sorted(name_variants(token)))), 1), else_=0)
    return score


def _one_name_page(s: Any, token: str, limit: int, columns: tuple[Any, ...]) -> list[Any]:
    """The best `limit` people for a search by one name alone, with the count of every match.

    A single common name (a family name that is also a given name, or the prefix of many) can
    match thousands of people; read through the name-key indexes, every match costs a visit to a
    table page. Here the matches are ranked and counted from the covering indexes
    (ix_person_*_cover: name keys, id and merged_into) without touching the table, and only
    the page's rows are read."""
    key = name_key(token)
    variants = [v for v in sorted(name_variants(token)) if not v.startswith(key)]  # others match the prefix
    ids = (PersonRow.id, PersonRow.family_key, PersonRow.given_key)
    live = PersonRow.merged_into.is_(None)
    # Disjoint branches (each leaves out what an earlier one found), so no de-duplication pass.
    sqlite = _is_sqlite(s)
    conditions = [_starts(PersonRow.family_key, key, sqlite), _starts(PersonRow.given_key, key, sqlite)]
    if variants:
        conditions += [PersonRow.family_key.in_(variants), PersonRow.given_key.in_(variants)]
    branches = [select(*ids).where(live, cond, *(~earlier for earlier in conditions[:i]))
                for i, cond in enumerate(conditions)]
    m = union_all(*branches).subquery()
    best = s.execute(select(m.c.id, func.count().over().label("total"))
                     .order_by(_exact_rank([token], m.c.family_key, m.c.given_key).desc(), m.c.family_key,
                               m.c.given_key, m.c.id).limit(limit)).all()
    if not best:
        return []
    rows = {r.id: r for r in s.execute(select(*columns).where(PersonRow.id.in_([b.id for b in best])))}
    return [_Found(*rows[b.id], total=b.total) for b in best]


def _names_page(s: Any, tokens: list[str], limit: int, columns: tuple[Any, ...]) -> list[Any]:
    """The best `limit` people for a search by two or three names alone, with the count of every
    match (SQLite).

    A person matches when every token matches the family or the given name key (as a prefix or
    as a nickname). Read as one statement, SQLite ORs the first token's index look-ups and reads
    the table row of everyone that token matches (every David, to find David Nicholson: 90 ms
    at 100,000 people, 50-140 ms at 1,000,000). Here each token's prefix is first expanded to
    the stored keys it covers (a loose index scan, one index entry per distinct name), and the
    AND of ORs to one branch for each way of giving the tokens to the two names (David as
    given name and Nicholson as family name; the other way round; both on one name), each an
    `IN` on both columns of a covering index: one seek per (family, given) key pair, whoever
    shares those names. The matches are ranked and counted from the index and only the
    page's rows are read. A prefix that covers more than NAME_KEYS stored keys (an initial)
    keeps its range."""
    sqlite = _is_sqlite(s)
    keys = [name_key(t) for t in tokens]
    cols = {"family_key": PersonRow.family_key, "given_key": PersonRow.given_key}
    expanded = _keys_under(s, [(c, k) for k in keys for c in cols], NAME_KEYS)
    # Per token and column: the exact stored keys (with every nickname), or None for "too many".
    sets: list[dict[str, set[str] | None]] = []
    for i, token in enumerate(tokens):
        sets.append({c: (expanded[2 * i + j] | name_variants(token)) if len(expanded[2 * i + j]) < NAME_KEYS else None
                     for j, c in enumerate(cols)})
    branches = []
    for assignment in product(cols, repeat=len(tokens)):
        conditions: list[Any] = [PersonRow.merged_into.is_(None)]
        for c, column in cols.items():
            given_here = [i for i, a in enumerate(assignment) if a == c]
            exact = [sets[i][c] for i in given_here if sets[i][c] is not None]
            if exact:
                common = set.intersection(*exact)
                if not common:
                    break
                conditions.append(column.in_(sorted(common)))
            conditions += [or_(_starts(column, keys[i], sqlite), column.in_(sorted(name_variants(tokens[i]))))
                           for i in given_here if sets[i][c] is None]
        else:
            branches.append(select(PersonRow.id, PersonRow.family_key, PersonRow.given_key).where(*conditions))
    if not branches:
        return []
    m = union(*branches).subquery()
    best = s.execute(select(m.c.id, func.count().over().label("total"))
                     .order_by(_exact_rank(tokens, m.c.family_key, m.c.given_key).desc(), m.c.family_key,
                               m.c.given_key, m.c.id).limit(limit)).all()
    if not best:
        return []
    rows = {r.id: r for r in s.execute(select(*columns).where(PersonRow.id.in_([b.id for b in best])))}
    return [_Found(*rows[b.id], total=b.total) for b in best]


@dataclass(frozen=True)
class _Found:
    """A row of the one-name page: the person's columns and the count of every match."""

    id: str
    display_name: str
    birth_date: str | None
    postcode: str | None
    family_key: str
    given_key: str
    total: int


def search_persons(store: Store, q: SearchQuery) -> SearchPage:
    """Ranked, paginated search over the master index. The statements run and the shape of the
    answer depend only on the query, never on which services a person is known to.

    Two stages: names as typed or as nicknames (index-backed, counted exactly, best first in the
    database); then, when that finds no one, typos and sound-alikes among short-prefix
    candidates, ranked by `name_score`. (The second stage used to be tried below 20 people found,
    but a person found by the first matches every token as typed, and the second stage widens
    only tokens that match no one as typed: it found nobody more.)"""
    if q.empty:
        return _browse(store, q)
    tokens = [t for t in (q.name or "").replace(",", " ").split() if name_key(t)]
    others = [PersonRow.merged_into.is_(None)]
    if q.birth_date:
        others.append(PersonRow.birth_date == q.birth_date.strip())
    if q.postcode:
        others.append(_postcode_condition(q.postcode))
    wanted = q.page * q.page_size
    columns = (PersonRow.id, PersonRow.display_name, PersonRow.birth_date, PersonRow.postcode,
               PersonRow.family_key, PersonRow.given_key)
    with store.read() as s:  # reads only: on SQLite no write lock, so no wait behind a worker's transaction
        if q.identifier:
            others.append(PersonRow.id.in_(_identifier_matches(s, q.identifier, q.hidden_systems)))
        sqlite = _is_sqlite(s)
        if len(tokens) == 1 and len(others) == 1:  # one name, nothing else: possibly thousands of matches
            found = _one_name_page(s, tokens[0], min(wanted, MAX_CANDIDATES), columns)
        elif sqlite and len(tokens) in (2, 3) and len(others) == 1:  # names alone: no selective index to AND
            found = _names_page(s, tokens, min(wanted, MAX_CANDIDATES), columns)
        else:
            # One pass gives the best rows and the count (the window counts every match); with
            # several criteria the indexes are intersected before any table page is read.
            exact = others + [_exact_condition(t, sqlite) for t in tokens]
            found = s.execute(select(*columns, func.count().over().label("total")).where(*exact)
                              .order_by(_exact_rank(tokens).desc(), PersonRow.family_key, PersonRow.given_key,
                                        PersonRow.id).limit(min(wanted, MAX_CANDIDATES))).all()
        # No row means no match at all: the window counts every match of the unlimited query.
        total = found[0].total if found else 0
        rows = found
        fuzzy_rows = []
        # A person found here matches every token as typed, so `_fuzzy_rows` would widen none
        # and find nobody: the fuzzy stage runs only when the names as typed found no one.
        if tokens and not found:
            fuzzy_rows = _fuzzy_rows(s, tokens, others, columns)
    hits = [_scored(row, tokens, q) for row in rows]
    seen = {h.id for h in hits}
    fuzzy_hits = [h for h in (_scored(row, tokens, q) for row in fuzzy_rows)
                  if h.id not in seen and h.score >= MIN_NAME_SCORE]
    # Stable: equal scores keep the database's order, so pages follow on from each other.
    fuzzy_hits.sort(key=lambda h: h.id)
    hits = sorted(hits + fuzzy_hits, key=lambda h: -h.score)
    start = (q.page - 1) * q.page_size
    return SearchPage([_hit(h) for h in hits[start:start + q.page_size]], total + len(fuzzy_hits), q.page,
                      q.page_size)


def _fuzzy_rows(s: Any, tokens: list[str], others: list[Any], columns: tuple[Any, ...]) -> list[Any]:
    """Candidates for typos and sound-alikes. A token that matches someone as typed narrows them;
    each other token is widened to the stored name keys near it (found by `_distinct_keys`, scored
    in Python), so only people whose names could reach MIN_NAME_SCORE are read."""
    typed = _typed_matches(s, tokens)
    widened = [t for i, t in enumerate(tokens) if i not in typed]
    if not widened:
        return []  # every token matched as typed: the first stage found everyone
    keys = _distinct_keys(s, sorted({p for t in widened for p in _fuzzy_prefixes(t)}))
    # The score is the mean over tokens, so one token may score this low and the mean still pass.
    bound = max(0.0, len(tokens) * MIN_NAME_SCORE - (len(tokens) - 1))
    conditions = [_exact_condition(t, _is_sqlite(s)) if i in typed else _fuzzy_condition(t, keys, bound)
                  for i, t in enumerate(tokens)]
    return s.execute(select(*columns).where(*others, *conditions)
                     .order_by(PersonRow.family_key, PersonRow.given_key, PersonRow.id)
                     .limit(MAX_CANDIDATES)).all()


def _scored(row: Any, tokens: list[str], q: SearchQuery) -> SearchHit:
    score, matched = _rank(row, tokens, q)
    return SearchHit(row.id, row.display_name, row.birth_date, row.postcode, round(score, 3), matched)


def _postcode_condition(raw: str) -> Any:
    try:
        return PersonRow.postcode == normalise_postcode(raw)
    except ValueError:
        return func.replace(PersonRow.postcode, " ", "") == raw.upper().replace(" ", "")


def _hit(h: SearchHit) -> dict[str, Any]:
    return {"id": h.id, "name": h.name, "birth_date": h.birth_date, "postcode": h.postcode, "score": h.score,
            "matched_on": list(h.matched_on)}


def _identifier_matches(s: Any, identifier: str, hidden_systems: frozenset[str]) -> list[str]:
    """Ids of the people an identifier names: NHS number, UPN or local id held by a system the
    viewer may know of, any system's own record id, or a hub person id."""
    value = identifier.strip()
    compact = value.replace(" ", "")
    by_id = select(PersonIdentifierRow.person_id).where(PersonIdentifierRow.value.in_(sorted({compact, compact.upper()})))
    by_local = select(SourceRecordRow.person_id).where(SourceRecordRow.source_id == value,
                                                       _entity_is("person"))
    for system in sorted(hidden_systems):
        by_id = by_id.where(~PersonIdentifierRow.record_key.startswith(f"{system}/"))
        by_local = by_local.where(SourceRecordRow.system != system)
    found = set(s.execute(by_id).scalars()) | set(s.execute(by_local).scalars()) | {value.upper()}
    return sorted(p for p in found if p)


def _rank(row: Any, tokens: list[str], q: SearchQuery) -> tuple[float, tuple[str, ...]]:
    matched = []
    if tokens:
        per_token = [max(name_score(t, row.family_key), name_score(t, row.given_key)) for t in tokens]
        score = sum(per_token) / len(per_token)
        matched.append("name")
    else:
        score = 1.0
    for attr in ("birth_date", "postcode", "identifier"):
        if getattr(q, attr):
            matched.append(attr)
    return score, tuple(matched)


def _browse(store: Store, q: SearchQuery) -> SearchPage:
    with store.read() as s:  # reads only, as `search_persons`
        total = s.execute(select(func.count()).select_from(PersonRow)
                          .where(PersonRow.merged_into.is_(None))).scalar_one()
        rows = s.execute(select(PersonRow).where(PersonRow.merged_into.is_(None))
                         .order_by(PersonRow.family_key, PersonRow.given_key, PersonRow.id)
                         .offset((q.page - 1) * q.page_size).limit(q.page_size)).scalars().all()
        return SearchPage([_hit(SearchHit(r.id, r.display_name, r.birth_date, r.postcode, 1.0, ())) for r in rows],
                          total, q.page, q.page_size)


@dataclass
class PersonBundle:
    """Everything the hub holds on one person, unfiltered."""

    id: str
    requested_id: str
    version: int
    name: str
    birth_date: str | None
    golden: dict[str, Any]
    members: list[dict[str, Any]]
    involvements: list[dict[str, Any]]
    relationships: list[dict[str, Any]]
    family_involvements: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    household: list[dict[str, Any]] = field(default_factory=list)


def get_person_bundle(store: Store, person_id: str) -> PersonBundle:
    """The person (following merges), member records, involvements, relationships with the
    related people resolved, the involvements of those family members, and the household.
    Reads only: on SQLite no write lock (BEGIN IMMEDIATE), so no wait behind a worker's transaction
    and none for the worker behind this one (a view polled while a change is stored held the change
    back by seconds at 1,000,000 people)."""
    with store.read() as s:
        return load_person_bundle(s, person_id)


def load_person_bundle(s: Any, person_id: str) -> PersonBundle:
    """`get_person_bundle` in the caller's transaction."""
    row = s.get(PersonRow, person_id)
    if row is not None and row.merged_into:
        row = s.get(PersonRow, resolve(s, person_id))
    if row is None:
        raise PersonNotFound(person_id)
    records = _person_records(s, row.id)
    members = [r for r in records if r["person_id"] == row.id and r["entity"] == "person"]
    keys = [m["ref"] for m in members]
    attached = [r for r in records if r["subject_key"] in keys]
    pointing = [r for r in records if r["entity"] == "relationship"
                and _ref_key(r["canonical"].get("related")) in keys]
    involvements = [a for a in attached if a["entity"] == "involvement"]
    relationships = _relationships(s, [a for a in attached if a["entity"] == "relationship"], pointing, keys)
    family_ids = sorted({r["other_id"] for r in relationships if r["other_id"] and r["other_id"] != row.id})
    family_involvements = _involvements_of(s, family_ids)
    household = _household(s, row)
    return PersonBundle(row.id, person_id, row.version, row.display_name, row.birth_date, row.golden or {},
                        members, involvements, relationships, family_involvements, household)


def _person_records(s: Any, person_id: str) -> list[dict[str, Any]]:
    """In two statements: the keys of the person's own records, then those records, the records
    attached to them (involvements, relationships as subject) and relationship records naming
    them as `related`. The keys are bound as values, not a sub-query: SQLite's planner uses the
    expression index on `related.source_id` for `IN (values)` but scans the table for `IN (select)`
    (75 ms per view at 10,000 people, growing with the store)."""
    own = s.execute(select(SourceRecordRow.ref_key, SourceRecordRow.source_id)
                    .where(SourceRecordRow.person_id == person_id)).all()
    own_keys, own_ids = sorted({k for k, _ in own}), sorted({i for _, i in own})
    related = related_source_id(s.get_bind().dialect.name)
    live = SourceRecordRow.deleted.is_(False)
    union = union_all(
        select(SourceRecordRow).where(SourceRecordRow.person_id == person_id, live),
        select(SourceRecordRow).where(SourceRecordRow.subject_key.in_(own_keys), live),
        select(SourceRecordRow).where(related.in_(own_ids), live),
    )
    rows = s.execute(select(SourceRecordRow).from_statement(union)).scalars().all()
    seen, out = set(), []
    for r in sorted(rows, key=lambda r: (r.system, r.source_id, r.entity)):
        if r.id not in seen:
            seen.add(r.id)
            out.append(_record(r))
    return out


def get_person(store: Store, person_id: str) -> dict[str, Any]:
    """Unfiltered: the golden record, the linked source records, involvements and relationships.
    For the view layer and for tests of the records path; never shown to a user as it is."""
    b = get_person_bundle(store, person_id)
    return {"id": b.id, "requested_id": b.requested_id, "version": b.version, "name": b.name, "golden": b.golden,
            "source_records": b.members,
            "involvements": sorted(b.involvements, key=lambda r: r["canonical"].get("started_on") or "",
                                   reverse=True),
            "relationships": [{k: v for k, v in r.items() if not k.startswith("other_")} for r in b.relationships]}


def _entity_is(kind: str) -> Any:
    """Filter on the record kind without inviting the planner to AND a bitmap of the whole
    (system, entity) index with a selective one: the kind is checked on the few rows found."""
    return func.lower(SourceRecordRow.entity) == kind


def _records(s: Any, *conditions: Any) -> list[dict[str, Any]]:
    rows = s.execute(select(SourceRecordRow).where(*conditions, SourceRecordRow.deleted.is_(False))
                     .order_by(SourceRecordRow.system, SourceRecordRow.source_id)).scalars().all()
    return [_record(r) for r in rows]


def related_source_id(dialect: str) -> Any:
    """The `related.source_id` of a relationship record, written exactly as the expression index
    `ix_source_record_related` (migration 0004) so the look-up uses it."""
    if dialect == "postgresql":
        return literal_column("(source_record.canonical -> 'related' ->> 'source_id')")
    return literal_column("json_extract(source_record.canonical, '$.related.source_id')")


def _relationships(s: Any, own: list[dict[str, Any]], pointing: list[dict[str, Any]],
                   keys: list[str]) -> list[dict[str, Any]]:
    """Relationships in both directions; `kind` says what the other person is to this one."""
    inverse = {"parent": "child", "child": "parent", "carer": "cared_for"}
    out, seen = [], set()
    for rec in own + pointing:
        if rec["ref"] in seen:
            continue
        seen.add(rec["ref"])
        c = rec["canonical"]
        subject = _ref_key(c.get("subject"))
        related = _ref_key(c.get("related"))
        if subject in keys:
            other_key, kind = related, c.get("kind")
        elif related in keys:
            other_key, kind = subject, inverse.get(c.get("kind"), c.get("kind"))
        else:
            continue
        fact = (rec.get("system"), other_key, kind)  # one system stating one fact under two ids (both rows of a pair)
        if fact in seen:
            continue
        seen.add(fact)
        other = s.execute(select(SourceRecordRow.person_id).where(SourceRecordRow.ref_key == other_key)).scalar()
        other_id = resolve(s, other) if other else None
        person = s.get(PersonRow, other_id) if other_id else None
        out.append({**rec, "kind": kind, "other_key": other_key, "other_id": other_id,
                    "other_name": person.display_name if person else None,
                    "other_birth_date": person.birth_date if person else None})
    return out


def _ref_key(ref: dict[str, Any] | None) -> str | None:
    if not ref:
        return None
    return f"{ref['system']}/{ref['entity']}/{ref['source_id']}"


def _involvements_of(s: Any, person_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    if not person_ids:
        return {}
    members = s.execute(select(SourceRecordRow.ref_key, SourceRecordRow.person_id).where(
        SourceRecordRow.person_id.in_(person_ids), _entity_is("person"),
        SourceRecordRow.deleted.is_(False))).all()
    owner = {m.ref_key: m.person_id for m in members}
    out: dict[str, list[dict[str, Any]]] = {pid: [] for pid in person_ids}
    if owner:
        for rec in _records(s, SourceRecordRow.subject_key.in_(list(owner)), _entity_is("involvement")):
            out[owner[rec["subject_key"]]].append(rec)
    return out


def _household(s: Any, row: PersonRow) -> list[dict[str, Any]]:
    """Other people whose current address is the same (same postcode and first line, or UPRN)."""
    address = (row.golden or {}).get("values", {}).get("address") or {}
    if not row.postcode or not (address.get("lines") or address.get("uprn")):
        return []
    others = s.execute(select(PersonRow).where(PersonRow.postcode == row.postcode, PersonRow.id != row.id,
                                               PersonRow.merged_into.is_(None)).limit(50)).scalars().all()
    out = []
    for other in others:
        theirs = (other.golden or {}).get("values", {}).get("address") or {}
        same_uprn = address.get("uprn") and address.get("uprn") == theirs.get("uprn")
        same_line = (address.get("lines") or [None])[0] and \
            _norm((address.get("lines") or [""])[0]) == _norm((theirs.get("lines") or [""])[0])
        if same_uprn or same_line:
            out.append({"id": other.id, "name": other.display_name, "birth_date": other.birth_date})
    return out


def _norm(line: str) -> str:
    return " ".join(line.lower().replace(",", " ").split())


def _record(row: SourceRecordRow) -> dict[str, Any]:
    return {"ref": row.ref_key, "system": row.system, "entity": row.entity, "source_id": row.source_id,
            "version": row.version, "observed_at": row.observed_at.isoformat() if row.observed_at else None,
            "content_hash": row.content_hash, "canonical": row.canonical, "provenance": row.provenance,
            "subject_key": row.subject_key, "person_id": row.person_id}

