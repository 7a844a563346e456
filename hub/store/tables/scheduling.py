"""Adapter schedule state shared by the web and the scheduler process, and the daily
burndown snapshots of what is still outside the hub."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Boolean, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from hub.store.base import Base, utcnow


class SystemScheduleRow(Base):
    """One row per legacy system: paused or not (and why), a pending "run now" request, and
    what the scheduler process last reported (its next run, its heartbeat)."""

    __tablename__ = "system_schedule"

    system: Mapped[str] = mapped_column(String(80), primary_key=True)
    paused: Mapped[bool] = mapped_column(Boolean, default=False)
    paused_by: Mapped[str | None] = mapped_column(String(120), nullable=True)
    paused_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    paused_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)
    run_requested_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)
    run_requested_by: Mapped[str | None] = mapped_column(String(120), nullable=True)
    next_run_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)
    schedule: Mapped[str | None] = mapped_column(String(200), nullable=True)
    scheduler_seen_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class BurndownSnapshotRow(Base):
    """Once a day: how many systems and how many of their records are still outside the hub
    (held by a legacy system that is not yet decommissioned)."""

    __tablename__ = "burndown_snapshot"

    day: Mapped[str] = mapped_column(String(10), primary_key=True)  # ISO date
    systems_total: Mapped[int] = mapped_column(Integer, default=0)
    systems_outside: Mapped[int] = mapped_column(Integer, default=0)
    records_total: Mapped[int] = mapped_column(Integer, default=0)
    records_outside: Mapped[int] = mapped_column(Integer, default=0)
    taken_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
