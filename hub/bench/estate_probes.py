"""Measuring instruments for `hub bench estate`: memory sampling, percentiles, whether a
legacy change is visible in the consolidated view, and the raw baselines of the same run."""

from __future__ import annotations

import csv
import json
import math
import random
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
from sqlalchemy import select, text

from hub.estate.mutations import Mutation
from hub.services.persons import PersonNotFound, get_person
from hub.store.engine import Store
from hub.store.tables.records import SourceRecordRow


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of `values`; NaN when empty."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, math.ceil(q / 100 * len(ordered)) - 1))]


CHILDREN_EVERY_S = 1.0  # how often the sampler looks for the watched processes' children


@dataclass
class MemorySampler:
    """Samples the resident set size of named processes on a thread; keeps each one's peak."""

    interval_s: float = 0.2
    peaks: dict[str, int] = field(default_factory=dict)
    _procs: dict[str, psutil.Process] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _children_at: float = float("-inf")

    def watch(self, label: str, pid: int) -> None:
        self._procs[label] = psutil.Process(pid)

    def start(self) -> MemorySampler:
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval_s)

    def sample(self) -> None:
        """Each process's RSS, and apart the largest of the processes it started that no other
        watched process started nearer (a worker's bulk link may run in a child process,
        hub/identity/bulk_process.py, with forked writers whose pages it shares), under
        "<label>: largest child process". Children are looked for at most every CHILDREN_EVERY_S,
        in one pass over the process table: a pass per watched process every 0.2 s was 63 s of
        CPU in the bench's process (sharing the ingest's interpreter lock) at 1,000,000 people."""
        for label, proc in list(self._procs.items()):
            try:
                self.peaks[label] = max(self.peaks.get(label, 0), proc.memory_info().rss)
            except psutil.Error:
                continue
        now = time.monotonic()
        if now - self._children_at < CHILDREN_EVERY_S:
            return
        self._children_at = now
        label_of = {proc.pid: label for label, proc in self._procs.items()}
        parent_of = _parents()
        largest: dict[str, int] = {}
        for pid in parent_of:
            label = None if pid in label_of else _nearest_watched(pid, parent_of, label_of)
            if label is None:
                continue
            try:
                largest[label] = max(largest.get(label, 0), psutil.Process(pid).memory_info().rss)
            except psutil.Error:  # ended meanwhile
                continue
        for label, peak in largest.items():
            key = f"{label}: largest child process"
            self.peaks[key] = max(self.peaks.get(key, 0), peak)

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=2)
        self.sample()


def _parents() -> dict[int, int]:
    """Every process's parent (pid → ppid), from one pass over the process table."""
    return {p.pid: p.info["ppid"] for p in psutil.process_iter(["ppid"]) if p.info["ppid"] is not None}


def _nearest_watched(pid: int, parent_of: dict[int, int], label_of: dict[int, str]) -> str | None:
    """The label of the nearest watched process above `pid` (`parent_of`: `_parents()`)."""
    seen = set()
    while pid in parent_of and pid not in seen:
        seen.add(pid)
        pid = parent_of[pid]
        if pid in label_of:
            return label_of[pid]
    return None


def _row(store: Store, ref_key: str) -> SourceRecordRow | None:
    """The hub record of `ref_key`. Mappings may prefix a legacy id (`ref-50085` for referral
    50085), so an exact key is tried first, then the one key ending in `-<legacy id>`."""
    system, entity, source_id = ref_key.split("/", 2)
    with store.read() as s:  # reads only: a probe polled every 10 ms must not take SQLite's write lock from the worker
        row = s.execute(select(SourceRecordRow).where(SourceRecordRow.ref_key == ref_key)).scalar_one_or_none()
        if row is None:
            row = s.execute(select(SourceRecordRow).where(
                SourceRecordRow.system == system, SourceRecordRow.entity == entity,
                SourceRecordRow.source_id.like(f"%-{source_id}")).limit(1)).scalar_one_or_none()
        if row is not None:
            s.expunge(row)
        return row


def _person_of(store: Store, ref_key: str) -> str | None:
    row = _row(store, ref_key)
    if row is None or row.deleted:
        return None
    if row.entity == "person":
        return row.person_id
    subject = _row(store, row.subject_key) if row.subject_key else None
    return subject.person_id if subject else None


def change_target(m: Mutation) -> tuple[str, Callable[[dict[str, Any], str], bool]]:
    """The hub record a legacy change lands in, and a test of the person view that it shows."""
    def involvement(view: dict[str, Any], ref: str) -> bool:
        return any(i["ref"] == ref for i in view["involvements"])

    def member_holds(marker: str) -> Callable[[dict[str, Any], str], bool]:
        def test(view: dict[str, Any], ref: str) -> bool:
            return any(r["ref"] == ref and marker in json.dumps(r["canonical"]).lower()
                       for r in view["source_records"])
        return test

    d = m.detail
    if m.change == "address_moved":
        return f"social_care/person/{d['client_id']}", member_holds(d["postcode"].lower())
    if m.change == "name_corrected":
        new_family = d["new"].split(",")[0].split("-")[-1].lower()
        return f"{m.system}/person/{m.source_id}", member_holds(new_family)
    if m.change in ("pupil_moved", "young_person_updated"):
        return f"{m.system}/person/{m.source_id}", member_holds(d["postcode"].lower())
    return f"{m.system}/involvement/{m.source_id}", involvement


def visible(store: Store, m: Mutation) -> bool:
    """Whether the consolidated view of the changed record's person shows the change."""
    ref, shows = change_target(m)
    row = _row(store, ref)
    person_id = _person_of(store, row.ref_key) if row is not None else None
    if person_id is None:
        return False
    try:
        return shows(get_person(store, person_id), row.ref_key)
    except PersonNotFound:
        return False


def sample_people(estate: Path, n: int, seed: int) -> list[tuple[str, str]]:
    """`n` random (system, source_id) of clean person rows of the ground truth (reservoir sample)."""
    rng = random.Random(seed)
    chosen: list[tuple[str, str]] = []
    with (estate / "truth.csv").open(newline="", encoding="utf-8") as f:
        seen = 0
        for row in csv.DictReader(f):
            if row["kind"] != "person" or row["defect"]:
                continue
            seen += 1
            item = (row["system"], row["source_id"])
            if len(chosen) < n:
                chosen.append(item)
            elif (j := rng.randrange(seen)) < n:
                chosen[j] = item
    return chosen


def canonical_rows(store: Store) -> Iterable[tuple[str, str]]:
    """Every (ref_key, canonical JSON) the hub holds: the rows the baselines write again."""
    with store.engine.connect() as conn:
        result = conn.execution_options(stream_results=True, yield_per=5000).execute(
            select(SourceRecordRow.ref_key, SourceRecordRow.canonical))
        for ref_key, canonical in result:
            yield ref_key, json.dumps(canonical)


def sqlite_insert_baseline(rows: list[tuple[str, str]], work: Path) -> float:
    """Seconds to insert `rows` into a fresh SQLite file with one executemany and commit."""
    path = work / "baseline.sqlite"
    path.unlink(missing_ok=True)
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE records (ref_key TEXT PRIMARY KEY, canonical TEXT NOT NULL)")
    started = time.perf_counter()
    conn.executemany("INSERT INTO records VALUES (?, ?)", rows)
    conn.commit()
    took = time.perf_counter() - started
    conn.close()
    path.unlink(missing_ok=True)
    return took


def pg_copy_baseline(rows: list[tuple[str, str]], url: str) -> float:
    """Seconds to COPY `rows` into a fresh table of the PostgreSQL database at `url`."""
    import psycopg

    table = f"bench_copy_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as conn:
        conn.execute(f"CREATE TABLE {table} (ref_key TEXT PRIMARY KEY, canonical JSONB NOT NULL)")
        conn.commit()
        started = time.perf_counter()
        with conn.cursor() as cur, cur.copy(f"COPY {table} (ref_key, canonical) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        conn.commit()
        took = time.perf_counter() - started
        conn.execute(f"DROP TABLE {table}")
        conn.commit()
    return took


def pika_baseline(amqp_url: str, count: int, body: bytes, chunk: int = 20_000) -> float:
    """Seconds to publish `count` persistent messages of `body` to a fresh durable queue and
    consume them all (acknowledged in batches of 200): the broker's own rate on this machine.
    No per-message publisher confirm: consuming every message back is the proof of delivery.
    Published and consumed `chunk` at a time, so at county scale (millions of messages) the
    queue never holds more than one chunk: the broker is measured, not its disk paging."""
    import pika

    queue = f"bench-raw-{uuid.uuid4().hex[:8]}"
    conn = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        channel = conn.channel()
        channel.queue_declare(queue, durable=True)
        channel.basic_qos(prefetch_count=500)
        props = pika.BasicProperties(delivery_mode=2, content_type="application/json")
        started = time.perf_counter()
        done = 0
        while done < count:
            n = min(chunk, count - done)
            for _ in range(n):
                channel.basic_publish("", queue, body, props)
            for received, (method, _props, _body) in enumerate(channel.consume(queue, inactivity_timeout=30), 1):
                if method is None:
                    raise RuntimeError(f"raw baseline: only {done + received - 1} of {count} messages came back")
                if received % 200 == 0 or received == n:
                    channel.basic_ack(method.delivery_tag, multiple=True)
                if received == n:
                    break
            channel.cancel()
            done += n
        took = time.perf_counter() - started
        channel.queue_delete(queue)
        return took
    finally:
        conn.close()


def store_size_bytes(store: Store) -> int:
    if store.dialect == "sqlite":
        path = Path(store.url.removeprefix("sqlite:///"))
        return sum(p.stat().st_size for p in (path, Path(f"{path}-wal")) if p.exists())
    with store.engine.connect() as conn:
        return int(conn.execute(text("SELECT pg_database_size(current_database())")).scalar_one())
