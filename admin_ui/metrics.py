"""Prometheus metrics at /metrics: messages by status, processing latency, queue depths and
consumers, ingest figures, quarantine, identity review backlog and lifecycle phases.

Figures are read from the store and the bus when scraped (a collector per request on a
fresh registry), so every web process reports the same numbers and nothing is kept in
process memory. Scrapers authenticate with a bearer token of a role holding "console".
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from flask import Blueprint, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from admin_ui.app import current_hub
from admin_ui.auth import require_permission

bp = Blueprint("metrics", __name__)

INGEST_FIGURES = ("seen", "new", "changed", "unchanged", "deleted", "quarantined", "failures", "records_announced")


class HubCollector:
    """Collects the hub's figures from its services at scrape time."""

    def __init__(self, hub: Any) -> None:
        self.hub = hub

    def collect(self) -> Iterator[Metric]:
        yield from self._messages()
        yield from self._queues()
        yield from self._ingest()
        yield from self._quarantine_and_review()
        yield from self._phases()

    def _messages(self) -> Iterator[Metric]:
        from hub.bus.figures import processing_latency
        from hub.services.flows import events_by_status

        events = CounterMetricFamily("hub_message_events", "Message journal events by event, type and source "
                                     "system", labels=["event", "type", "system"])
        for (event, type_, system), n in sorted(events_by_status(self.hub.store).items()):
            events.add_metric([event, type_, system], n)
        yield events
        latency = processing_latency(self.hub.store, window_s=900)
        quantiles = GaugeMetricFamily("hub_processing_latency_seconds", "Message age when processed, over the "
                                      "last 15 minutes", labels=["quantile"])
        for q, value in (("0.5", latency.p50_ms), ("0.95", latency.p95_ms), ("1", latency.max_ms)):
            if value is not None:
                quantiles.add_metric([q], value / 1000)
        yield quantiles
        yield GaugeMetricFamily("hub_processed_messages_window", "Messages processed in the last 15 minutes",
                                value=latency.processed)

    def _queues(self) -> Iterator[Metric]:
        from hub.services.flows import queues_of

        figures, error = queues_of(self.hub.bus, self.hub.store)
        depth = GaugeMetricFamily("hub_queue_messages", "Messages in each queue by state",
                                  labels=["queue", "state"])
        consumers = GaugeMetricFamily("hub_queue_consumers", "Consumers of each queue", labels=["queue"])
        for f in figures:
            for state, n in (("ready", f.ready), ("in_flight", f.in_flight), ("dead", f.dead)):
                depth.add_metric([f.queue, state], n)
            consumers.add_metric([f.queue], f.consumers)
        yield depth
        yield consumers
        yield GaugeMetricFamily("hub_bus_up", "1 when the bus answered the scrape", value=0 if error else 1)

    def _ingest(self) -> Iterator[Metric]:
        from hub.services.schedules import recent_runs, run_counts

        runs = CounterMetricFamily("hub_ingest_runs", "Ingest runs by system and status",
                                   labels=["system", "status"])
        for (system, status), n in sorted(run_counts(self.hub.store).items()):
            runs.add_metric([system, status], n)
        yield runs
        last = GaugeMetricFamily("hub_ingest_last_run_rows", "Figures of each system's last finished ingest run",
                                 labels=["system", "figure"])
        duration = GaugeMetricFamily("hub_ingest_last_run_duration_seconds", "Duration of each system's last "
                                     "finished ingest run", labels=["system"])
        finished = GaugeMetricFamily("hub_ingest_last_run_timestamp_seconds", "When each system's last ingest "
                                     "run finished (Unix time)", labels=["system"])
        for system in self.hub.systems.names():
            run = next((r for r in recent_runs(self.hub.store, system, limit=5) if r.finished_at), None)
            if run is None:
                continue
            for figure in INGEST_FIGURES:
                if isinstance(run.figures.get(figure), (int, float)):
                    last.add_metric([system, figure], run.figures[figure])
            if run.duration_s is not None:
                duration.add_metric([system], run.duration_s)
            finished.add_metric([system], run.finished_at.timestamp())
        yield last
        yield duration
        yield finished

    def _quarantine_and_review(self) -> Iterator[Metric]:
        from hub.identity.review import list_reviews
        from hub.services.decommissioning import quality_scores

        names = self.hub.systems.names()
        quarantine = GaugeMetricFamily("hub_quarantine_entries", "Quarantine entries by system and status",
                                       labels=["system", "status"])
        quality = GaugeMetricFamily("hub_system_quality_score", "Quality score of each system (0 to 1)",
                                    labels=["system"])
        for name, score in quality_scores(self.hub.store, names).items():
            quarantine.add_metric([name, "open"], score.open_quarantine)
            quarantine.add_metric([name, "accepted"], score.accepted_quarantine)
            if score.score is not None:
                quality.add_metric([name], score.score)
        yield quarantine
        yield quality
        backlog = GaugeMetricFamily("hub_review_backlog", "Identity review pairs waiting for a decision",
                                    labels=["status"])
        for status in ("open", "unsure"):
            backlog.add_metric([status], list_reviews(self.hub.store, status=status, page_size=1).total)
        yield backlog

    def _phases(self) -> Iterator[Metric]:
        from hub.services.schedules import system_phases

        phases = system_phases(self.hub.store)
        metric = GaugeMetricFamily("hub_system_phase", "1 for each system's current lifecycle phase",
                                   labels=["system", "phase"])
        for name in self.hub.systems.names():
            metric.add_metric([name, phases.get(name, "connected")], 1)
        yield metric


@bp.get("/metrics")
@require_permission("console")
def metrics() -> Response:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(HubCollector(current_hub()))
    return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)
