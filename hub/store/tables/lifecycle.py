"""Lifecycle of legacy systems, reconciliation runs, final archives, writes made through
the hub, deliveries to legacy systems and alerts raised over the canonical data."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Boolean, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from hub.store.base import Base, utcnow


class SystemPhaseRow(Base):
    """The current phase of each legacy system (absent: connected)."""

    __tablename__ = "system_phase"

    system: Mapped[str] = mapped_column(String(80), primary_key=True)
    phase: Mapped[str] = mapped_column(String(20))
    changed_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    changed_by: Mapped[str] = mapped_column(String(120), default="")
    reason: Mapped[str] = mapped_column(Text, default="")


class PhaseTransitionRow(Base):
    """Every step asked for, done or refused: who, why, when and each check's result."""

    __tablename__ = "phase_transition"
    __table_args__ = (Index("ix_phase_transition_system_at", "system", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    system: Mapped[str] = mapped_column(String(80))
    from_phase: Mapped[str] = mapped_column(String(20))
    to_phase: Mapped[str] = mapped_column(String(20))
    direction: Mapped[str] = mapped_column(String(10))
    outcome: Mapped[str] = mapped_column(String(10))  # done | refused
    who: Mapped[str] = mapped_column(String(120))
    why: Mapped[str] = mapped_column(Text)
    checks: Mapped[list[Any]] = mapped_column(default=list)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class ReconciliationRow(Base):
    """One comparison of a legacy system's current extract with the hub's mirror."""

    __tablename__ = "reconciliation_run"
    __table_args__ = (Index("ix_reconciliation_run_system_at", "system", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    system: Mapped[str] = mapped_column(String(80))
    trigger: Mapped[str] = mapped_column(String(40), default="manual")
    clean: Mapped[bool] = mapped_column(Boolean, default=False)
    summary: Mapped[dict[str, Any]] = mapped_column(default=dict)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class SystemArchiveRow(Base):
    """The final compressed, checksummed archive of a system's raw legacy data."""

    __tablename__ = "system_archive"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    system: Mapped[str] = mapped_column(String(80), index=True)
    path: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    rows: Mapped[int] = mapped_column(Integer)
    manifest: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class HubWriteRow(Base):
    """A write made through the hub's API, with its idempotency key and the response given."""

    __tablename__ = "hub_write"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    idempotency_key: Mapped[str | None] = mapped_column(String(200), unique=True, nullable=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    operation: Mapped[str] = mapped_column(String(40))
    person_id: Mapped[str | None] = mapped_column(String(40), nullable=True, index=True)
    mode: Mapped[str] = mapped_column(String(20))  # legacy | hub
    status: Mapped[str] = mapped_column(String(20))  # pending | applied | written | failed | refused
    request: Mapped[dict[str, Any]] = mapped_column(default=dict)
    response_status: Mapped[int] = mapped_column(Integer, default=202)
    response: Mapped[dict[str, Any]] = mapped_column(default=dict)
    who: Mapped[str] = mapped_column(String(120), default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class DeliveryRow(Base):
    """One change sent to a legacy system through its adapter's `apply`, and what became of it."""

    __tablename__ = "routing_delivery"
    __table_args__ = (Index("ix_routing_delivery_system_status", "system", "status"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    message_id: Mapped[str] = mapped_column(String(36), unique=True)
    kind: Mapped[str] = mapped_column(String(20))  # write | propagate | route
    write_id: Mapped[str | None] = mapped_column(String(40), nullable=True, index=True)
    route: Mapped[str | None] = mapped_column(String(120), nullable=True)
    system: Mapped[str] = mapped_column(String(80))
    entity: Mapped[str] = mapped_column(String(80))
    operation: Mapped[str] = mapped_column(String(20))
    source_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    status: Mapped[str] = mapped_column(String(20), default="pending")  # pending | applied | refused | failing
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    detail: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class AlertRow(Base):
    """An alert raised by a rule over the canonical data, for a team."""

    __tablename__ = "hub_alert"
    __table_args__ = (Index("ix_hub_alert_rule_at", "rule", "raised_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    rule: Mapped[str] = mapped_column(String(120))
    team: Mapped[str] = mapped_column(String(200))
    household_key: Mapped[str] = mapped_column(String(300))
    persons: Mapped[list[Any]] = mapped_column(default=list)
    services: Mapped[list[Any]] = mapped_column(default=list)
    evidence: Mapped[dict[str, Any]] = mapped_column(default=dict)
    message_id: Mapped[str] = mapped_column(String(36))
    status: Mapped[str] = mapped_column(String(20), default="open")
    raised_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
