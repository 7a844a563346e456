"""Outbox, inbox, the embedded bus's queue, and the message journal."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from hub.store.base import Base, utcnow


class OutboxRow(Base):
    """Messages written in the same transaction as the change they announce."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_unpublished", "published_at", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    message_id: Mapped[str] = mapped_column(String(36), unique=True)
    type: Mapped[str] = mapped_column(String(60))
    source_system: Mapped[str] = mapped_column(String(80))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    published_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)


class MessageRecordRow(Base):
    """The source records a record-batch message carried (migration 0013_message_record): the
    journal names one record per message, a batch carries hundreds."""

    __tablename__ = "message_record"

    ref_key: Mapped[str] = mapped_column(String(300), primary_key=True)
    message_id: Mapped[str] = mapped_column(String(36), primary_key=True)


class InboxRow(Base):
    """Messages a consumer has processed: redelivery of one of these is a no-op."""

    __tablename__ = "inbox"

    consumer: Mapped[str] = mapped_column(String(60), primary_key=True)
    message_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    processed_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class BusBindingRow(Base):
    __tablename__ = "bus_binding"

    queue: Mapped[str] = mapped_column(String(120), primary_key=True)
    pattern: Mapped[str] = mapped_column(String(200), primary_key=True)


class BusMessageRow(Base):
    """The embedded bus: one row per message per queue until it is acknowledged."""

    __tablename__ = "bus_message"
    __table_args__ = (Index("ix_bus_message_ready", "queue", "status", "id"),)  # migration 0011_bus_claim_order

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    queue: Mapped[str] = mapped_column(String(120))
    message_id: Mapped[str] = mapped_column(String(36), index=True)
    routing_key: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(12), default="ready")  # ready | inflight | dead
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    available_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    lease_until: Mapped[dt.datetime | None] = mapped_column(nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    dead_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)


class MessageJournalRow(Base):
    """Each message's life: published, delivered, processed, retried, dead_lettered, replayed."""

    __tablename__ = "message_journal"
    __table_args__ = (
        Index("ix_message_journal_message", "message_id"),
        Index("ix_message_journal_at", "at"),
        Index("ix_message_journal_ref_key", "ref_key"),  # migration 0007_messages
        Index("ix_message_journal_event_at", "event", "at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    message_id: Mapped[str] = mapped_column(String(36))
    event: Mapped[str] = mapped_column(String(20))
    type: Mapped[str] = mapped_column(String(60), default="")
    source_system: Mapped[str] = mapped_column(String(80), default="")
    queue: Mapped[str] = mapped_column(String(120), default="")
    detail: Mapped[str | None] = mapped_column(Text, nullable=True)
    latency_ms: Mapped[int | None] = mapped_column(Integer, nullable=True)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    ref_key: Mapped[str | None] = mapped_column(String(300), nullable=True)  # the source record carried
