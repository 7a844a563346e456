"""Message flow figures for the console, read from the message journal and the bus.

A flow is one adapter or route: the messages of one type from one source system
(`source.record.*` from `social_care` is the social care adapter's flow; `route.apply`
to a system is a route). For each flow: messages per minute over the last hour
(one bucket a minute) and over the last day (one bucket an hour, as a per-minute
average), processing latency, and the error rate (retries and dead letters per
message published).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import BigInteger, case, cast, func, literal, select

from hub.bus.figures import LatencyFigures, QueueFigures, processing_latency, queue_figures
from hub.bus.port import Bus
from hub.identity import bulk_link
from hub.store.base import utcnow
from hub.store.engine import Store
from hub.store.tables.messaging import MessageJournalRow

HOUR_BUCKETS = 60
DAY_BUCKETS = 24


@dataclass
class Flow:
    """One adapter's or route's figures."""

    system: str
    type: str
    per_minute_hour: list[int] = field(default_factory=lambda: [0] * HOUR_BUCKETS)
    per_minute_day: list[float] = field(default_factory=lambda: [0.0] * DAY_BUCKETS)
    published_hour: int = 0
    published_day: int = 0
    processed_day: int = 0
    retried_day: int = 0
    dead_day: int = 0
    latency_avg_ms: float | None = None
    latency_max_ms: int | None = None

    @property
    def kind(self) -> str:
        return "adapter" if self.type.startswith("source.") else "route"

    @property
    def label(self) -> str:
        return f"{self.system}: {self.type}"

    @property
    def slug(self) -> str:
        return f"{self.system}-{self.type}".replace(".", "-").replace("_", "-")

    @property
    def error_rate(self) -> float:
        """Failed deliveries (retries and dead letters) per message published, over the day."""
        return (self.retried_day + self.dead_day) / self.published_day if self.published_day else 0.0

    @property
    def rate_last_hour(self) -> float:
        return self.published_hour / 60.0


@dataclass
class FlowReport:
    now: dt.datetime
    flows: list[Flow]
    queues: list[QueueFigures]
    queue_error: str | None
    latency: LatencyFigures
    held: tuple[int, int] = (0, 0)  # person records and route changes a records worker holds to link in bulk
    generated_at: dt.datetime = field(default_factory=utcnow)

    @property
    def hour_labels(self) -> list[str]:
        start = self.now - dt.timedelta(minutes=HOUR_BUCKETS - 1)
        return [(start + dt.timedelta(minutes=i)).strftime("%H:%M") for i in range(HOUR_BUCKETS)]

    @property
    def day_labels(self) -> list[str]:
        start = self.now - dt.timedelta(hours=DAY_BUCKETS - 1)
        return [(start + dt.timedelta(hours=i)).strftime("%H:00") for i in range(DAY_BUCKETS)]

    def totals(self) -> dict[str, Any]:
        published = sum(f.published_day for f in self.flows)
        failed = sum(f.retried_day + f.dead_day for f in self.flows)
        return {"published_hour": sum(f.published_hour for f in self.flows), "published_day": published,
                "error_rate": failed / published if published else 0.0,
                "dead": sum(q.dead for q in self.queues), "ready": sum(q.ready for q in self.queues)}


def _epoch_seconds(dialect: str, column: Any) -> Any:
    """Whole seconds since 1970 of a stored UTC timestamp, as SQL for the store's dialect."""
    if dialect == "postgresql":
        return cast(func.floor(func.extract("epoch", column)), BigInteger)
    return cast(func.strftime("%s", column), BigInteger)  # SQLite keeps UTC text


def flow_report(store: Store, bus: Bus | None = None, *, now: dt.datetime | None = None) -> FlowReport:
    """Every flow seen in the last day, with its charts' series, and the queues' depths."""
    # Buckets end with the current minute: the last bucket holds this minute's messages so far.
    now = (now or utcnow()).replace(second=59, microsecond=999999)
    day_ago = now - dt.timedelta(hours=DAY_BUCKETS)
    hour_ago = now - dt.timedelta(minutes=HOUR_BUCKETS)
    flows: dict[tuple[str, str], Flow] = {}
    journal = MessageJournalRow
    # Buckets are counted in SQL (a busy day journals millions of events): how many whole
    # minutes / hours before the end of the current minute each event happened.
    end = int(now.timestamp()) + 1
    ago = literal(end - 1, BigInteger) - _epoch_seconds(store.dialect, journal.at)
    with store.transaction() as s:
        by_minute = s.execute(
            select(journal.source_system, journal.type, (ago // 60).label("back"), func.count())
            .where(journal.event == "published", journal.at > hour_ago)
            .group_by(journal.source_system, journal.type, "back")).all()
        by_hour = s.execute(
            select(journal.source_system, journal.type, (ago // 3600).label("back"), func.count())
            .where(journal.event == "published", journal.at > day_ago)
            .group_by(journal.source_system, journal.type, "back")).all()
        summary = s.execute(
            select(journal.source_system, journal.type,
                   func.sum(case((journal.event == "processed", 1), else_=0)),
                   func.sum(case((journal.event == "retried", 1), else_=0)),
                   func.sum(case((journal.event == "dead_lettered", 1), else_=0)),
                   func.avg(case((journal.event == "processed", journal.latency_ms), else_=None)),
                   func.max(case((journal.event == "processed", journal.latency_ms), else_=None)))
            .where(journal.at > day_ago, journal.event != "published")
            .group_by(journal.source_system, journal.type)).all()
    for system, type_, back, n in by_hour:
        flow = flows.setdefault((system, type_), Flow(system, type_))
        flow.published_day += int(n)
        if 0 <= int(back) < DAY_BUCKETS:
            flow.per_minute_day[DAY_BUCKETS - 1 - int(back)] += int(n) / 60
    for system, type_, back, n in by_minute:
        flow = flows.setdefault((system, type_), Flow(system, type_))
        flow.published_hour += int(n)
        if 0 <= int(back) < HOUR_BUCKETS:
            flow.per_minute_hour[HOUR_BUCKETS - 1 - int(back)] += int(n)
    for system, type_, processed, retried, dead, avg_latency, max_latency in summary:
        flow = flows.setdefault((system, type_), Flow(system, type_))
        flow.processed_day, flow.retried_day, flow.dead_day = int(processed or 0), int(retried or 0), int(dead or 0)
        flow.latency_avg_ms = float(avg_latency) if avg_latency is not None else None
        flow.latency_max_ms = int(max_latency) if max_latency is not None else None
    for flow in flows.values():
        flow.per_minute_day = [round(v, 2) for v in flow.per_minute_day]
    queues, error = queues_of(bus, store)
    ordered = sorted(flows.values(), key=lambda f: (f.kind != "adapter", f.system, f.type))
    with store.read() as s:
        held = bulk_link.held_counts(s)
    return FlowReport(now=now, flows=ordered, queues=queues, queue_error=error,
                      latency=processing_latency(store, window_s=3600), held=held)


def queues_of(bus: Bus | None, store: Store) -> tuple[list[QueueFigures], str | None]:
    """Depth, in-flight, dead letters, consumers and rates of each of the hub's queues."""
    if bus is None:
        return [], None
    try:
        return queue_figures(bus, store), None
    except Exception as exc:  # noqa: BLE001 - a broker that is down is shown as such, not as an error page
        return [], f"{type(exc).__name__}: {exc}"


def events_by_status(store: Store, *, since: dt.datetime | None = None) -> dict[tuple[str, str, str], int]:
    """Journal events counted by (event, type, source system), for the metrics endpoint."""
    journal = MessageJournalRow
    query = select(journal.event, journal.type, journal.source_system, func.count()).group_by(
        journal.event, journal.type, journal.source_system)
    if since is not None:
        query = query.where(journal.at > since)
    with store.transaction() as s:
        return {(e, t, sys): int(n) for e, t, sys, n in s.execute(query).all()}


def latency_summary(store: Store, *, since: dt.datetime) -> dict[str, dict[str, float]]:
    """Processing latency per source system over a window: count, sum and max in seconds."""
    journal = MessageJournalRow
    with store.transaction() as s:
        rows = s.execute(select(journal.source_system, func.count(), func.sum(journal.latency_ms),
                                func.max(journal.latency_ms))
                         .where(journal.event == "processed", journal.latency_ms.is_not(None), journal.at > since)
                         .group_by(journal.source_system)).all()
    out: dict[str, dict[str, float]] = defaultdict(dict)
    for system, count, total, largest in rows:
        out[system] = {"count": float(count), "sum_s": float(total or 0) / 1000, "max_s": float(largest or 0) / 1000}
    return dict(out)
