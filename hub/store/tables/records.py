"""Source records as mirrored from legacy systems, the persons they are linked to,
and the quarantine of records that could not be translated."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Boolean, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from hub.store.base import Base, utcnow


class SourceRecordRow(Base):
    """One legacy record: raw payload, canonical form and provenance, newest version only."""

    __tablename__ = "source_record"
    __table_args__ = (
        UniqueConstraint("ref_key", name="uq_source_record_ref_key"),
        Index("ix_source_record_person", "person_id"),
        Index("ix_source_record_subject", "subject_key"),
        Index("ix_source_record_system_entity", "system", "entity"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    ref_key: Mapped[str] = mapped_column(String(300))
    system: Mapped[str] = mapped_column(String(80))
    entity: Mapped[str] = mapped_column(String(30))
    source_id: Mapped[str] = mapped_column(String(200))
    content_hash: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer, default=0)
    observed_at: Mapped[dt.datetime]
    raw: Mapped[dict[str, Any]]
    canonical: Mapped[dict[str, Any]]
    provenance: Mapped[dict[str, Any]]
    subject_key: Mapped[str | None] = mapped_column(String(300), nullable=True)
    person_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class PersonRow(Base):
    """A person of the master index; `golden` is the survivorship result, `merged_into` a redirect."""

    __tablename__ = "person"
    __table_args__ = (
        Index("ix_person_family_given", "family_key", "given_key"),
        Index("ix_person_birth", "birth_date"),
        Index("ix_person_postcode", "postcode"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    golden: Mapped[dict[str, Any]]
    display_name: Mapped[str] = mapped_column(String(300), default="")
    family_key: Mapped[str] = mapped_column(String(120), default="")
    given_key: Mapped[str] = mapped_column(String(120), default="")
    birth_date: Mapped[str | None] = mapped_column(String(10), nullable=True)
    postcode: Mapped[str | None] = mapped_column(String(10), nullable=True)
    merged_into: Mapped[str | None] = mapped_column(String(40), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class PersonIdentifierRow(Base):
    """Strong identifiers of each person, for exact look-up and search."""

    __tablename__ = "person_identifier"
    __table_args__ = (Index("ix_person_identifier_value", "scheme", "value"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    person_id: Mapped[str] = mapped_column(String(40), index=True)
    scheme: Mapped[str] = mapped_column(String(30))
    value: Mapped[str] = mapped_column(String(120))
    record_key: Mapped[str] = mapped_column(String(300))


class QuarantineRow(Base):
    """A record that failed translation or validation: kept whole, with every reason."""

    __tablename__ = "quarantine"
    __table_args__ = (Index("ix_quarantine_system_status", "system", "status"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    system: Mapped[str] = mapped_column(String(80))
    entity: Mapped[str] = mapped_column(String(80))
    source_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    location: Mapped[str] = mapped_column(Text)
    raw: Mapped[dict[str, Any]]
    reasons: Mapped[list[Any]]
    status: Mapped[str] = mapped_column(String(20), default="open")  # open | resolved | accepted
    resolution: Mapped[str | None] = mapped_column(Text, nullable=True)
    run_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    resolved_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)
