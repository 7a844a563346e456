"""Queue figures for the admin console: depth, rates, consumers, and the hub's own latency.

Depth, in-flight, dead letters and consumers come from the bus (`Bus.stats`). Rates
come from the broker when it measures them (RabbitMQ with the management plugin);
otherwise they are counted from the message journal over a recent window, which is
also where the hub's processing latency (message created → processed, p50/p95) is read.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import func, select

from hub.bus.bindings import DEFAULT_BINDINGS
from hub.bus.port import Bus, QueueBinding
from hub.bus.topics import topic_matches
from hub.store.base import utcnow
from hub.store.engine import Store
from hub.store.tables.messaging import MessageJournalRow


@dataclass(frozen=True)
class QueueFigures:
    queue: str
    ready: int
    in_flight: int
    dead: int
    consumers: int
    publish_rate: float | None  # messages/s
    deliver_rate: float | None
    rates_from: str  # "broker" or "journal"


@dataclass(frozen=True)
class LatencyFigures:
    window_s: int
    processed: int
    p50_ms: int | None
    p95_ms: int | None
    max_ms: int | None


def queue_figures(bus: Bus, store: Store, bindings: Sequence[QueueBinding] = DEFAULT_BINDINGS,
                  window_s: int = 60) -> list[QueueFigures]:
    journal_rates = _journal_rates(store, bindings, window_s)
    broker = getattr(bus, "broker_figures", None)
    figures = []
    for b in bindings:
        stats = bus.stats(b.queue)
        measured = broker(b.queue) if broker else None
        if measured is not None and measured.publish_rate is not None:
            publish, deliver, source = measured.publish_rate, measured.deliver_rate, "broker"
        else:
            publish, deliver = journal_rates[b.queue]
            source = "journal"
        figures.append(QueueFigures(queue=b.queue, ready=stats.ready, in_flight=stats.in_flight, dead=stats.dead,
                                    consumers=stats.consumers, publish_rate=publish, deliver_rate=deliver,
                                    rates_from=source))
    return figures


def processing_latency(store: Store, window_s: int = 900) -> LatencyFigures:
    """Percentiles of message age when processed, over the last `window_s` seconds."""
    j = MessageJournalRow
    where = (j.event == "processed", j.at >= utcnow() - dt.timedelta(seconds=window_s), j.latency_ms.is_not(None),
             j.detail.is_(None))
    with store.transaction() as s:
        n = s.execute(select(func.count()).where(*where)).scalar_one()
        if not n:
            return LatencyFigures(window_s, 0, None, None, None)

        def at_rank(fraction: float) -> int:
            return s.execute(select(j.latency_ms).where(*where).order_by(j.latency_ms)
                             .offset(min(n - 1, int(fraction * n))).limit(1)).scalar_one()

        return LatencyFigures(window_s, n, at_rank(0.50), at_rank(0.95), at_rank(1.0))


def bus_figures(bus: Bus, store: Store, *, window_s: int = 60, latency_window_s: int = 900) -> dict[str, Any]:
    """Everything the console's queue panel shows, as plain data."""
    return {"backend": type(bus).__name__,
            "queues": [asdict(f) for f in queue_figures(bus, store, window_s=window_s)],
            "latency": asdict(processing_latency(store, latency_window_s))}


def _journal_rates(store: Store, bindings: Sequence[QueueBinding],
                   window_s: int) -> dict[str, tuple[float, float]]:
    j = MessageJournalRow
    since = utcnow() - dt.timedelta(seconds=window_s)
    with store.transaction() as s:
        published = s.execute(select(j.type, j.source_system, func.count())
                              .where(j.event == "published", j.at >= since)
                              .group_by(j.type, j.source_system)).all()
        processed = dict(s.execute(select(j.queue, func.count()).where(j.event == "processed", j.at >= since)
                                   .group_by(j.queue)).all())
    rates = {}
    for b in bindings:
        sent = sum(n for type_, system, n in published
                   if any(topic_matches(p, f"{type_}.{system}") for p in b.patterns))
        rates[b.queue] = (round(sent / window_s, 3), round(processed.get(b.queue, 0) / window_s, 3))
    return rates
