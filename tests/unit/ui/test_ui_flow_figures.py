"""Flow figures from the journal: per-minute and per-hour buckets, latency, error rate; queue
depths from the bus; burndown snapshots and quality scores."""

from __future__ import annotations

import datetime as dt

from hub.bus.journal import JournalEvent, StoreJournal
from hub.bus.sqlite import StoreQueueBus
from hub.services.decommissioning import (
    BurndownPoint,
    burndown,
    current_point,
    quality_scores,
    record_snapshot,
)
from hub.services.flows import events_by_status, flow_report
from hub.store.tables.lifecycle import SystemPhaseRow
from hub.store.tables.records import QuarantineRow, SourceRecordRow

NOW = dt.datetime(2026, 11, 25, 12, 30, 30, tzinfo=dt.UTC)


def _events(store, *events):
    StoreJournal(store).record(list(events))


def _event(n: int, event: str, at: dt.datetime, system="social_care", type_="source.record.upserted", **kw):
    return JournalEvent(message_id=f"m{n}", event=event, type=type_, source_system=system, at=at, **kw)


def test_flows_count_messages_per_minute_and_per_hour(store):
    _events(store,
            _event(1, "published", NOW - dt.timedelta(seconds=10)),
            _event(2, "published", NOW - dt.timedelta(seconds=20)),
            _event(3, "published", NOW - dt.timedelta(minutes=5)),
            _event(4, "published", NOW - dt.timedelta(hours=3)),
            _event(5, "published", NOW - dt.timedelta(days=2)),  # outside the day
            _event(1, "processed", NOW, latency_ms=100),
            _event(2, "processed", NOW, latency_ms=300),
            _event(3, "retried", NOW),
            _event(3, "dead_lettered", NOW),
            _event(6, "published", NOW - dt.timedelta(minutes=1), system="education", type_="route.apply"))
    report = flow_report(store, now=NOW)
    adapter, route = report.flows
    assert (adapter.kind, adapter.system, route.kind, route.system) == ("adapter", "social_care", "route", "education")
    assert adapter.per_minute_hour[-1] == 2 and adapter.per_minute_hour[-6] == 1 and sum(adapter.per_minute_hour) == 3
    assert adapter.published_hour == 3 and adapter.published_day == 4
    assert adapter.per_minute_day[-1] == round(3 / 60, 2) and adapter.per_minute_day[-4] == round(1 / 60, 2)
    assert adapter.latency_avg_ms == 200 and adapter.latency_max_ms == 300
    assert adapter.error_rate == 2 / 4
    assert report.totals()["published_day"] == 5
    assert len(report.hour_labels) == 60 and report.hour_labels[-1] == "12:30"
    counts = events_by_status(store)
    assert counts[("published", "source.record.upserted", "social_care")] == 5


def test_queue_figures_come_from_the_bus(store):
    from canonical.messages import Envelope, MessageType
    from hub.bus.bindings import DEFAULT_BINDINGS

    bus = StoreQueueBus(store)
    bus.declare(DEFAULT_BINDINGS)
    bus.publish([Envelope(type=MessageType.RECORD_UPSERTED, source_system="education", payload={})] * 1)
    report = flow_report(store, bus, now=NOW)
    records = next(q for q in report.queues if q.queue == "records")
    assert (records.ready, records.dead) == (1, 0)
    assert report.queue_error is None


def _record(s, system: str, source_id: str, *, person: str | None, identifiers: bool = True) -> None:
    s.add(SourceRecordRow(ref_key=f"{system}/person/{source_id}", system=system, entity="person", source_id=source_id,
                          content_hash="h", version=1, observed_at=NOW, raw={}, canonical={}, provenance={},
                          person_id=person))
    if identifiers:
        from hub.store.tables.records import PersonIdentifierRow

        s.add(PersonIdentifierRow(person_id=person or "P0", scheme="nhs_number", value=source_id,
                                  record_key=f"{system}/person/{source_id}"))


def test_quality_score_is_the_mean_of_three_shares(store):
    with store.transaction() as s:
        _record(s, "education", "1", person="P1")
        _record(s, "education", "2", person=None, identifiers=False)
        _record(s, "education", "3", person="P3")
        _record(s, "education", "4", person="P4", identifiers=False)
        s.add(QuarantineRow(system="education", entity="pupils", source_id="9", location="x", raw={}, reasons=["r"]))
    q = quality_scores(store, ["education", "early_help"])
    edu = q["education"]
    assert (edu.not_quarantined, edu.identifiers_present, edu.linked_share) == (4 / 5, 2 / 4, 3 / 4)
    assert abs(edu.score - (0.8 + 0.5 + 0.75) / 3) < 1e-9
    assert q["early_help"].score is None  # nothing mirrored yet


def test_burndown_counts_what_is_outside_the_hub(store):
    with store.transaction() as s:
        _record(s, "education", "1", person="P1")
        _record(s, "education", "2", person="P2")
        _record(s, "early_help", "1", person="P1")
        s.add(SystemPhaseRow(system="early_help", phase="decommissioned"))
    point = current_point(store, ["education", "early_help", "youth_service"])
    assert (point.systems_total, point.systems_outside, point.records_total, point.records_outside) == (3, 2, 3, 2)
    record_snapshot(store, BurndownPoint("2026-11-01", 3, 3, 3, 3))
    record_snapshot(store, BurndownPoint("2026-11-01", 3, 3, 5, 5))  # same day: replaced
    series = burndown(store, ["education", "early_help", "youth_service"], days=10_000)
    assert [p.day for p in series][:1] == ["2026-11-01"] and series[0].records_outside == 5
    assert series[-1].systems_outside == 2  # today's point is live
