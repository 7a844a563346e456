"""`hub bench estate`: the whole path at county scale, with same-run baselines.

Generates a sample estate of N people, loads it through adapters → bus → worker(s) →
identity index → store, then measures freshness (a legacy change until the consolidated
view shows it) under a trickle of changes, search and person-view latency, peak memory of
each process and the store's size. Baselines of the same run: the same canonical rows
inserted raw (SQLite executemany, or PostgreSQL COPY) and, on `amqp`, raw pika
publish-and-consume of as many messages; the hub's figures are shown as ratios to them.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
from sqlalchemy import func, select

from hub import storing_helper
from hub.bench import estate_probes as probes
from hub.bench.environment import environment
from hub.bench.table import render
from hub.bootstrap import Hub, bootstrap
from hub.bus.bindings import ROUTING_QUEUE
from hub.config import ConfigError, HubConfig, load_config
from hub.estate import generate
from hub.estate.mutations import mutate
from hub.estate.youth_justice_api import serve_youth_justice_in_thread
from hub.identity import bulk_link
from hub.services.persons import SearchQuery, get_person, search_persons
from hub.store.tables.identity import IdentityAuditRow
from hub.store.tables.messaging import InboxRow, OutboxRow
from hub.store.tables.records import SourceRecordRow
from hub.worker import CONSUMER, run_worker

PG_ADMIN_URL = os.environ.get("HUB_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
AMQP_URL = os.environ.get("HUB_BENCH_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")
YJ_TOKEN = "bench-token"
VISIBLE_TIMEOUT_S = 60.0
ROUTING_DRAIN_TIMEOUT_S = 3600.0


@dataclass
class Figures:
    rows: list[tuple[str, Any, str, Any, Any]] = field(default_factory=list)

    def add(self, figure: str, value: Any, unit: str = "", baseline: Any = "", ratio: Any = "") -> None:
        self.rows.append((figure, value, unit, baseline, ratio))


def ratio(hub: float, baseline: float) -> str:
    """hub / baseline, readable when it is tiny (1/2,500 rather than 0.000)."""
    if not baseline or math.isnan(hub) or math.isnan(baseline):
        return "n/a"
    r = hub / baseline
    return f"{r:.3f}" if r >= 0.01 or r == 0 else f"1/{1 / r:,.0f}"


def _pg_database() -> tuple[str, str]:
    """A fresh PostgreSQL database for this run: (its URL, its name)."""
    import psycopg

    name = f"hub_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN_URL.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}", name


def _drop_pg_database(name: str) -> None:
    import psycopg

    with psycopg.connect(PG_ADMIN_URL.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _write_config(path: Path, config: HubConfig) -> None:
    """A hub.toml for the worker processes, equal to the in-process config."""
    lines = []
    for section, values in config.model_dump(exclude={"source_path"}).items():
        lines.append(f"[{section}]")
        lines += [f"{k} = {json.dumps(v)}" for k, v in values.items() if v is not None]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _processed(hub: Hub) -> int:
    """Messages the records workers have applied. Read without SQLite's write lock, as every probe
    here: polled all through the load, a write transaction took the lock from the workers."""
    with hub.store.read() as s:
        return int(s.execute(select(func.count()).select_from(InboxRow).where(InboxRow.consumer == CONSUMER))
                   .scalar_one())


def _bulk_links(hub: Hub) -> tuple[int, float, int]:
    """Person records the workers linked in bulk, the seconds it took and how many runs (the audit log)."""
    with hub.store.read() as s:
        details = s.execute(select(IdentityAuditRow.detail).where(IdentityAuditRow.action == "bulk-link")).scalars().all()
    return (sum(int(d.get("records", 0)) for d in details), sum(float(d.get("seconds", 0.0)) for d in details),
            len(details))


def _storing_helpers(hub: Hub) -> list[dict]:
    """What the workers' storing helpers stored after the ingest (hub/storing_helper.py)."""
    with hub.store.read() as s:
        return list(s.execute(select(IdentityAuditRow.detail).where(
            IdentityAuditRow.action == storing_helper.ACTION)).scalars())


def _held(hub: Hub) -> bool:
    """Whether records the workers held while behind are still waiting to be linked in bulk."""
    with hub.store.read() as s:
        return bulk_link.has_pending(s)


def _routing_backlog(hub: Hub) -> int:
    """Messages not yet through the routing worker: its queue (ready + in flight) and the unrelayed outbox."""
    stats = hub.bus.stats(ROUTING_QUEUE)
    with hub.store.read() as s:
        unrelayed = int(s.execute(select(func.count()).select_from(OutboxRow)
                                  .where(OutboxRow.published_at.is_(None))).scalar_one())
    return stats.ready + stats.in_flight + unrelayed


class _Run:
    def __init__(self, hub: Hub, deployment: str, estate: Path, work: Path, workers: int,
                 sampler: probes.MemorySampler) -> None:
        self.hub, self.deployment, self.estate, self.work = hub, deployment, estate, work
        self.workers, self.sampler = workers, sampler
        # embedded with --workers 0: the records worker in this process after the ingest (as `hub demo`)
        self.in_process = deployment == "embedded" and workers == 0
        self.processes: list[subprocess.Popen] = []
        self._routing_stop = threading.Event()
        self._routing_thread: threading.Thread | None = None

    def start_workers(self, config_path: Path) -> None:
        """The records workers and the routing worker, as a deployment runs them: processes
        (`hub worker`, `hub routing run`) consuming while the ingest publishes, on either bus (the
        embedded bus is in the SQLite store, which the processes share); or, embedded with
        `--workers 0`, the routing worker on a thread of the hub's process and the records worker
        in `drain` after the ingest (as `hub demo` runs them)."""
        if self.in_process:
            from hub.routing_worker import run_routing_worker

            self._routing_thread = threading.Thread(
                target=run_routing_worker, name="routing-worker", daemon=True,
                args=(self.hub.bus, self.hub.extras["routing_worker"]),
                kwargs={"should_stop": self._routing_stop.is_set})
            self._routing_thread.start()
            return
        commands = [(f"worker {i + 1}", f"worker{i}", ["worker"]) for i in range(self.workers)]
        commands.append(("routing worker", "routing", ["routing", "run"]))
        for label, log, args in commands:
            proc = subprocess.Popen([sys.executable, "-c", "from hub.cli import main; main()", "--config",
                                     str(config_path), *args], stdout=subprocess.DEVNULL,
                                    stderr=open(self.work / f"{log}.log", "w"))  # noqa: SIM115
            self.processes.append(proc)
            self.sampler.watch(label, proc.pid)

    def stop_workers(self) -> None:
        self._routing_stop.set()
        if self._routing_thread is not None:
            self._routing_thread.join(timeout=30)
        for proc in self.processes:
            proc.terminate()
        for proc in self.processes:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()

    def drain(self, expected: int, timeout_s: float) -> None:
        """Until the worker(s) processed `expected` messages in all."""
        if self.in_process:
            run_worker(self.hub.bus, self.hub.worker, batch_size=self.hub.config.worker.batch_size,
                       idle_timeout_s=0.0)
            return
        deadline = time.monotonic() + timeout_s
        while True:
            t = time.monotonic()
            done = _processed(self.hub)
            if done >= expected and not _held(self.hub):  # every message applied, every record linked
                return
            if time.monotonic() > deadline:
                raise click.ClickException(f"workers processed {done} of {expected} messages "
                                           f"in {timeout_s:.0f}s; see {self.work}/worker*.log")
            if any(p.poll() is not None for p in self.processes):
                raise click.ClickException(f"a worker process exited; see {self.work}/*.log")
            time.sleep(max(0.05, 2 * (time.monotonic() - t)))  # counting millions of inbox rows is not free

    def routing_drained(self, timeout_s: float) -> float:
        """Seconds until the routing worker has caught up (NaN if it did not within `timeout_s`)."""
        started = time.perf_counter()
        while _routing_backlog(self.hub):
            if time.perf_counter() - started > timeout_s:
                return float("nan")
            time.sleep(0.5)
        return time.perf_counter() - started

    def initial_load(self, figures: Figures) -> tuple[int, int, float, float]:
        started = time.perf_counter()
        announced = messages = seen = 0
        per_system: list[tuple[str, int, float]] = []
        for name in self.hub.systems.names():
            t = time.perf_counter()
            run = self.hub.ingest.run(name, trigger="bench")
            per_system.append((name, run.records_announced, time.perf_counter() - t))
            announced += run.records_announced
            messages += run.messages_published
            seen += run.seen
        ingested = time.perf_counter() - started
        self.drain(messages, timeout_s=4 * 3600)
        wall = time.perf_counter() - started
        routing_lag = self.routing_drained(ROUTING_DRAIN_TIMEOUT_S)
        figures.add("legacy rows read", seen, "rows")
        figures.add("records announced / messages (record batches)", f"{announced:,} / {messages:,}", "",
                    f"{self.hub.config.ingest.records_per_message} records a message at most")
        figures.add("initial load: ingest (adapters → outbox → bus)", ingested, "s")
        figures.add("initial load: wall time to store", wall, "s")
        figures.add("ingest rate (adapters → outbox → bus)", announced / ingested if ingested else float("nan"),
                    "records/s")
        for name, records, took in per_system:
            figures.add(f"  ingest rate: {name}", records / took if took else float("nan"), "records/s",
                        f"{records:,} records")
        if self.in_process:
            worker_s = wall - ingested
            figures.add("records worker rate (after the ingest)", announced / worker_s if worker_s else float("nan"),
                        "records/s")
        else:
            figures.add(f"records workers rate ({self.workers}, during the ingest)", announced / wall, "records/s")
        linked, took, runs = _bulk_links(self.hub)
        figures.add("  of which linking in bulk (beside and after the load)", took, "s",
                    f"{linked:,} person records, {runs} run(s)" if runs else "none: every record linked as it came")
        helped = _storing_helpers(self.hub)
        if helped:
            figures.add("  storing helper after the ingest (beside a link on the worker's thread)",
                        sum(h["seconds"] for h in helped), "s", f"{sum(h['messages'] for h in helped):,} messages")
        figures.add("routing worker: caught up after the store was loaded", routing_lag, "s",
                    "" if not math.isnan(routing_lag) else f"backlog {_routing_backlog(self.hub):,}")
        return announced, messages, ingested, wall

    def freshness(self, changes: int, seed: int, figures: Figures) -> None:
        latencies: list[float] = []
        missed: list[str] = []
        slowest: list[tuple[float, str]] = []  # (latency, change): what the tail is made of
        adapter_runs: dict[str, list[float]] = {}
        for i in range(changes):
            done = mutate(self.estate, 1, seed=seed + i)
            if not done:
                continue
            change = done[0]
            started = time.perf_counter()
            t = time.perf_counter()
            run = self.hub.ingest.run(change.system, trigger="bench")
            adapter_runs.setdefault(change.system, []).append(time.perf_counter() - t)
            if self.in_process:  # the records worker runs in this process; otherwise it is running
                self.drain(run.messages_published, timeout_s=VISIBLE_TIMEOUT_S)
            while not probes.visible(self.hub.store, change):
                if time.perf_counter() - started > VISIBLE_TIMEOUT_S:
                    missed.append(f"{change.change} {change.system}/{change.entity}/{change.source_id}")
                    break
                time.sleep(0.01)
            else:
                latencies.append(time.perf_counter() - started)
                slowest.append((latencies[-1], f"{change.change} in {change.system}"))
        figures.add("freshness p50 (change → visible in view)", probes.percentile(latencies, 50), "s")
        figures.add("freshness p95", probes.percentile(latencies, 95), "s",
                    "slowest: " + "; ".join(f"{what} {took:.2f} s" for took, what in sorted(slowest)[-3:][::-1]))
        figures.add("changes seen / not seen within 60 s", f"{len(latencies)} / {len(missed)}",
                    "; ".join(missed))
        for name, runs in sorted(adapter_runs.items()):  # the part of freshness that can grow with N
            figures.add(f"  adapter run after one change: {name} p50", probes.percentile(runs, 50), "s",
                        f"{len(runs)} runs")

    def queries(self, n: int, seed: int, figures: Figures) -> None:
        search_ms, view_ms, found = [], [], 0
        for system, source_id in probes.sample_people(self.estate, n, seed):
            with self.hub.store.read() as s:
                row = s.execute(select(SourceRecordRow.person_id, SourceRecordRow.canonical).where(
                    SourceRecordRow.ref_key == f"{system}/person/{source_id}")).first()
            if row is None or not row.person_id:
                continue
            names = (row.canonical.get("names") or [{}])[0]
            birth = (row.canonical.get("birth_date") or {}).get("value")
            query = SearchQuery(name=" ".join(p for p in (names.get("given"), names.get("family")) if p),
                                birth_date=birth)
            t = time.perf_counter()
            page = search_persons(self.hub.store, query)
            search_ms.append((time.perf_counter() - t) * 1000)
            found += any(getattr(h, "id", None) == row.person_id or (isinstance(h, dict) and h.get("id") == row.person_id)
                         for h in page.results)
            t = time.perf_counter()
            get_person(self.hub.store, row.person_id)
            view_ms.append((time.perf_counter() - t) * 1000)
        figures.add("search p50 (name + date of birth)", probes.percentile(search_ms, 50), "ms")
        figures.add("search p95", probes.percentile(search_ms, 95), "ms")
        figures.add("searches finding the person on page 1", f"{found} / {len(search_ms)}")
        figures.add("person view p50", probes.percentile(view_ms, 50), "ms")
        figures.add("person view p95", probes.percentile(view_ms, 95), "ms")


def _baselines(run: _Run, announced: int, messages: int, ingested: float, wall: float, figures: Figures) -> None:
    """Raw baselines of the same rows and messages; rows are streamed from the store, never all held."""
    store = run.hub.store
    count = sum(1 for _ in probes.canonical_rows(store))
    hub_rate = announced / wall if wall else float("nan")
    if store.dialect == "postgresql":
        took, label = probes.pg_copy_baseline(probes.canonical_rows(store), store.url), \
            "raw PostgreSQL COPY of the canonical rows"
    else:
        took, label = probes.sqlite_insert_baseline(probes.canonical_rows(store), run.work), \
            "raw SQLite executemany of the canonical rows"
    raw_rate = count / took if took else float("nan")
    figures.add("initial load throughput", hub_rate, "records/s", raw_rate, ratio(hub_rate, raw_rate))
    figures.add(f"baseline: {label}", took, "s", f"{count:,} rows")
    if run.deployment == "amqp":
        _pika_baselines(store, announced, messages, ingested, hub_rate, figures)


def _pika_baselines(store: Any, announced: int, messages: int, ingested: float, hub_rate: float,
                    figures: Figures) -> None:
    """Raw pika twice: the same number of messages of the same size as the hub sent (record
    batches: the broker moving the hub's own traffic), and one message per record (the rate a
    hub sending one message per record could never pass). The hub's rates in records/s are shown
    as ratios to both; issue 9's 30 % target is judged on the first, end to end (ingest to store)."""
    first = next(iter(probes.canonical_rows(store)), ("", "{}"))
    per_message = max(1, round(announced / messages)) if messages else 1
    record = json.dumps({"record": first[1]})
    batch_body = json.dumps({"payload": {"items": "@"}}).replace('"@"', "[" + ",".join([record] * per_message) + "]")
    took = probes.pika_baseline(AMQP_URL, messages, batch_body.encode())
    batched = messages * per_message / took
    figures.add("baseline: raw pika, the hub's messages (publish+consume)", batched, "records/s",
                f"{messages:,} msgs of {per_message} records in {took:.1f} s")
    took = probes.pika_baseline(AMQP_URL, announced, json.dumps({"payload": first[1]}).encode())
    single = announced / took
    figures.add("baseline: raw pika, one message per record", single, "records/s", f"{took:.1f} s")
    ingest_rate = announced / ingested if ingested else float("nan")
    figures.add("amqp ingest rate / raw pika, same messages", ingest_rate, "records/s", batched,
                ratio(ingest_rate, batched))
    figures.add("amqp ingest-to-store rate / raw pika, same messages (target ≥ 0.30)", hub_rate, "records/s", batched,
                ratio(hub_rate, batched))
    figures.add("amqp ingest rate / raw pika, one message per record", ingest_rate, "records/s", single,
                ratio(ingest_rate, single))
    figures.add("amqp ingest-to-store rate / raw pika, one message per record", hub_rate, "records/s", single,
                ratio(hub_rate, single))


def bench(people: int, deployment: str, workers: int, changes: int, queries: int, seed: int,
          systems_dir: Path, work: Path, worker_options: dict[str, Any] | None = None) -> Figures:
    figures = Figures()
    estate = work / "estate"
    started = time.perf_counter()
    manifest = generate(estate, people=people, seed=seed)
    figures.add("people / legacy rows generated", f"{manifest.people:,} / {manifest.total_rows():,}")
    figures.add("estate generation", time.perf_counter() - started, "s")
    pg_name = None
    if deployment == "amqp":
        store_url, pg_name = _pg_database()
        tag = uuid.uuid4().hex[:8]
        bus = {"url": AMQP_URL, "exchange": f"bench-{tag}", "queue_prefix": f"bench-{tag}"}
    else:
        store_url, bus = f"sqlite:///{work}/hub.db", {"url": "sqlite"}
    config = HubConfig.model_validate({"store": {"url": store_url}, "bus": bus, "worker": worker_options or {},
                                       "systems": {"dir": str(systems_dir), "estate_dir": str(estate)}})
    config_path = work / "bench-hub.toml"
    _write_config(config_path, config)
    server = serve_youth_justice_in_thread(estate, token=YJ_TOKEN)
    sampler = probes.MemorySampler()
    sampler.watch("hub (ingest" + (" + worker)" if deployment == "embedded" and workers == 0 else ")"),
                  os.getpid())
    hub = None
    try:
        with environment(HUB_ESTATE_DIR=str(estate), YJ_API_URL=server.url, YJ_API_TOKEN=YJ_TOKEN):
            hub = bootstrap(config)
            run = _Run(hub, deployment, estate, work, workers, sampler.start())
            run.start_workers(config_path)
            try:
                announced, messages, ingested, wall = run.initial_load(figures)
                run.freshness(changes, seed + 1000, figures)
                run.queries(queries, seed, figures)
                figures.add("routing queue depth at the end (+ unrelayed outbox)", _routing_backlog(hub), "msgs")
            finally:
                run.stop_workers()
            _baselines(run, announced, messages, ingested, wall, figures)
            figures.add("store size", probes.store_size_bytes(hub.store) / 1e6, "MB")
    finally:
        sampler.stop()
        if hub is not None:
            if deployment == "amqp":  # this run's exchange and queues go with it
                from hub.bus.bindings import DEFAULT_BINDINGS

                hub.bus.delete_topology([b.queue for b in DEFAULT_BINDINGS])  # type: ignore[attr-defined]
            hub.close()
        server.stop()
        if pg_name:
            _drop_pg_database(pg_name)
    for label, peak in sampler.peaks.items():
        figures.add(f"peak RSS: {label}", peak / 1e6, "MB")
    return figures


def _option(name: str, value: object) -> str:
    """A worker option as the command line gives it (a flag for a boolean)."""
    flag = name.replace("_", "-")
    if isinstance(value, bool):
        return f" --{flag}" if value else f" --no-{flag}"
    return f" --{flag} {value}"


@click.command("estate")
@click.option("--people", type=click.IntRange(min=50), default=10_000, show_default=True)
@click.option("--deployment", type=click.Choice(["embedded", "amqp"]), default="embedded", show_default=True,
              help="embedded: SQLite store and bus; amqp: PostgreSQL + RabbitMQ")
@click.option("--workers", type=click.IntRange(min=0), default=None,
              help="records worker processes, consuming during the ingest (default: 2 on amqp, 1 embedded); "
                   "embedded 0: the worker in the bench's process after the ingest, as `hub demo` runs it")
@click.option("--changes", type=click.IntRange(min=1), default=30, show_default=True, help="freshness samples")
@click.option("--queries", type=click.IntRange(min=1), default=200, show_default=True, help="search/view samples")
@click.option("--seed", type=int, default=1, show_default=True)
@click.option("--work-dir", type=click.Path(file_okay=False), default=None,
              help="keep the estate and store here (default: a temporary directory, removed)")
@click.option("--bulk-link-process-at", type=click.IntRange(min=0), default=None,
              help="the records workers' worker.bulk_link_process_at (default: the config's default)")
@click.option("--bulk-link-max-records", type=click.IntRange(min=1), default=None,
              help="the records workers' worker.bulk_link_max_records (default: the config's default)")
@click.option("--bulk-link-process-max-records", type=click.IntRange(min=1), default=None,
              help="the records workers' worker.bulk_link_process_max_records (default: the config's default)")
@click.option("--storing-helper/--no-storing-helper", default=None,
              help="the records workers' worker.storing_helper (default: the config's default)")
@click.pass_context
def command(ctx: click.Context, people: int, deployment: str, workers: int | None, changes: int, queries: int,
            seed: int, work_dir: str | None, bulk_link_process_at: int | None,
            bulk_link_max_records: int | None, bulk_link_process_max_records: int | None,
            storing_helper: bool | None) -> None:
    """The whole path on a generated estate: load, freshness, search, memory, size, with baselines."""
    if workers is None:
        workers = 2 if deployment == "amqp" else 1
    if deployment == "amqp" and workers == 0:
        raise click.ClickException("--deployment amqp needs at least one worker process")
    if deployment == "amqp" and importlib.util.find_spec("hub.bus.amqp") is None:
        raise click.ClickException("--deployment amqp needs hub.bus.amqp (the RabbitMQ bus), which is not installed")
    try:
        config = load_config(ctx.find_root().obj.get("config_path", "hub.toml"))
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    systems_dir = Path(config.systems.dir).resolve()
    work = Path(work_dir).resolve() if work_dir else Path(tempfile.mkdtemp(prefix="hub-bench-estate-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        options = {"bulk_link_process_at": bulk_link_process_at, "bulk_link_max_records": bulk_link_max_records,
                   "bulk_link_process_max_records": bulk_link_process_max_records, "storing_helper": storing_helper}
        figures = bench(people, deployment, workers, changes, queries, seed, systems_dir, work,
                        {k: v for k, v in options.items() if v is not None})
    finally:
        if not work_dir:
            shutil.rmtree(work, ignore_errors=True)
    click.echo(f"hub bench estate --people {people} --deployment {deployment}"
               + f" --workers {workers}" + "".join(_option(k, v) for k, v in options.items() if v is not None))
    click.echo(render(("figure", "value", "unit", "baseline", "hub / baseline"), figures.rows))
