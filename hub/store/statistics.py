"""PostgreSQL's planner statistics, kept current by the hub during a load.

The planner chooses each plan from the statistics ANALYZE last gathered. A table that has grown
from nothing to millions of rows since then is planned as if it were still small: at 1,000,000
people on `amqp`, with autovacuum off (as on the CI machine, and on servers where an operator
turned it off or it lags behind a bulk load), the golden-record refresh read each batch's members
by scanning every person record (`entity = 'person'`, "about 9,900 rows") instead of by
`person_id`: the bulk link wrote 170 records/s. One ANALYZE took 5.8 s and the same link went on
at about 2,000 records/s.

So the records worker and the bulk link ask, at most every `CHECK_S`, which tables have changed
by more than `SHARE` of their rows (plus `MIN_ROWS`) since they were last analysed, by anyone
(autovacuum included), and ANALYZE those. Only one process at a time does it (an advisory lock
it does not wait for). ANALYZE samples a fixed number of rows, so a check costs about the same
at any size; a load of millions of rows is analysed a dozen times or so while it doubles and
doubles again. SQLite keeps no statistics the hub uses: nothing to do there.
"""

from __future__ import annotations

import logging
import time

from sqlalchemy import Connection, text

from hub.store.engine import Store

log = logging.getLogger(__name__)

CHECK_S = 30.0  # between two checks of one process
SHARE = 0.5  # changed rows, as a share of the rows there were at the last analysis
MIN_ROWS = 1000
LOCK_KEY = 0x68756253_74617473  # "hubStats": one process analyses at a time

_STALE = text("""
    SELECT schemaname, relname FROM pg_stat_user_tables
    WHERE schemaname = current_schema()
      AND n_mod_since_analyze > :min_rows + :share * GREATEST(n_live_tup - n_mod_since_analyze, 0)
    ORDER BY n_mod_since_analyze DESC""")


def stale_tables(conn: Connection, *, share: float = SHARE, min_rows: int = MIN_ROWS) -> list[str]:
    """The hub's tables changed by more than `share` of their rows (plus `min_rows`) since their
    last analysis, most changed first, quoted (PostgreSQL)."""
    return [f'"{schema}"."{name}"' for schema, name in conn.execute(_STALE, {"share": share, "min_rows": min_rows})]


def analyze_stale(store: Store, *, share: float = SHARE, min_rows: int = MIN_ROWS) -> list[str]:
    """ANALYZE the stale tables, unless another process is doing it now. Returns those analysed."""
    if store.dialect != "postgresql":
        return []
    done = []
    with store.engine.connect() as conn:
        if not conn.execute(text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": LOCK_KEY}).scalar():
            return []
        for table in stale_tables(conn, share=share, min_rows=min_rows):
            started = time.perf_counter()
            conn.execute(text(f"ANALYZE {table}"))
            done.append(table)
            log.info("planner statistics: analysed %s in %.2f s", table, time.perf_counter() - started)
        conn.commit()
    return done


class StatisticsKeeper:
    """`analyze_stale` at most every `every_s` seconds, for a worker's loop; an error is logged
    and the next check tries again (statistics are an optimisation: a worker must not stop for them)."""

    def __init__(self, store: Store, every_s: float = CHECK_S) -> None:
        self.store, self.every_s = store, every_s
        self._next = 0.0
        self.analysed = 0

    def maybe_analyze(self) -> list[str]:
        if self.store.dialect != "postgresql":
            return []
        now = time.monotonic()
        if now < self._next:
            return []
        self._next = now + self.every_s
        try:
            done = analyze_stale(self.store)
        except Exception as exc:  # noqa: BLE001 - an optimisation; the worker goes on without it
            log.warning("planner statistics: the check failed (%s); trying again in %.0f s", exc, self.every_s)
            return []
        self.analysed += len(done)
        return done
