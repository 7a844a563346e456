"""The master identity index: each person record's features and blocking keys, the
evidence of every link, clerical review pairs, stewards' constraints and an
append-only log of identity decisions."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Float, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from hub.store.base import Base, utcnow
from hub.store.tables.records import PersonRow


class IdentityRecordRow(Base):
    """A live person record as the index sees it: its features and its person."""

    __tablename__ = "identity_record"
    __table_args__ = (Index("ix_identity_record_person", "person_id"),)

    ref_key: Mapped[str] = mapped_column(String(300), primary_key=True)
    person_id: Mapped[str] = mapped_column(String(40))
    features: Mapped[dict[str, Any]]
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    # the (rule, key, detail) rows it has in identity_block_key, as JSON ([["nhs", "...", ""], ...]):
    # how its keys are found to replace or delete them, which an index on the keys' ref_key did
    # (migration 0018_block_keys_by_record)
    block_keys: Mapped[str | None] = mapped_column(Text, nullable=True)


class IdentityBlockKeyRow(Base):
    """One blocking key of one record: records sharing (rule, key) are compared. `detail`: the
    values that refine the key under a rule splitting its large blocks ("03#14"; "" otherwise;
    `identity_index.blocking.filed_keys`), so a bulk link reads only the refined blocks it compares.

    One B-tree: the key is the whole row (on SQLite a WITHOUT ROWID table), so reading a block is
    a range of it and needs no look-up of the row. A record's rows are found from its own
    `identity_record.block_keys`: an index on `ref_key` took its inserts in random order, 70 % of
    the cost of filing a bulk link's keys into a store of 1,500,000 records (migration
    0018_block_keys_by_record)."""

    __tablename__ = "identity_block_key"
    __table_args__ = ({"sqlite_with_rowid": False},)

    rule: Mapped[str] = mapped_column(String(40), primary_key=True)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    detail: Mapped[str] = mapped_column(String(60), primary_key=True, default="", server_default="")
    ref_key: Mapped[str] = mapped_column(String(300), primary_key=True)


class IdentityLinkRow(Base):
    """Why a record belongs to its person: who decided (rule, model, steward, new), with the
    per-field weights of the pair that decided it. The newest row per record is current."""

    __tablename__ = "identity_link"
    __table_args__ = (Index("ix_identity_link_ref", "ref_key"), Index("ix_identity_link_person", "person_id"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    ref_key: Mapped[str] = mapped_column(String(300))
    person_id: Mapped[str] = mapped_column(String(40))
    made_by: Mapped[str] = mapped_column(String(20))  # rule | model | steward | new | rebuild
    rule: Mapped[str | None] = mapped_column(String(60), nullable=True)
    matched_ref: Mapped[str | None] = mapped_column(String(300), nullable=True)
    match_weight: Mapped[float | None] = mapped_column(Float, nullable=True)
    probability: Mapped[float | None] = mapped_column(Float, nullable=True)
    explanation: Mapped[dict[str, Any]]
    model_version: Mapped[str] = mapped_column(String(80))
    actor: Mapped[str | None] = mapped_column(String(120), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class IdentityReviewRow(Base):
    """A possible match for a steward: two records, the evidence, and the decision once made."""

    __tablename__ = "identity_review"
    __table_args__ = (
        UniqueConstraint("ref_a", "ref_b", name="uq_identity_review_pair"),
        Index("ix_identity_review_status", "status"),
        Index("ix_identity_review_ref_b", "ref_b"),  # migration 0010_identity_review_ref_b
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    ref_a: Mapped[str] = mapped_column(String(300))
    ref_b: Mapped[str] = mapped_column(String(300))
    match_weight: Mapped[float] = mapped_column(Float)
    probability: Mapped[float] = mapped_column(Float)
    explanation: Mapped[dict[str, Any]]
    model_version: Mapped[str] = mapped_column(String(80))
    status: Mapped[str] = mapped_column(String(20), default="open")  # open | unsure | linked | not_same
    decided_by: Mapped[str | None] = mapped_column(String(120), nullable=True)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    decided_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class IdentityConstraintRow(Base):
    """A steward's decision about two records that automation must respect."""

    __tablename__ = "identity_constraint"
    __table_args__ = (Index("ix_identity_constraint_b", "ref_b"),)

    ref_a: Mapped[str] = mapped_column(String(300), primary_key=True)
    ref_b: Mapped[str] = mapped_column(String(300), primary_key=True)
    same: Mapped[bool]
    decided_by: Mapped[str] = mapped_column(String(120))
    reason: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class IdentityAuditRow(Base):
    """Append-only log of identity decisions: steward decisions, merges, splits, rebuilds."""

    __tablename__ = "identity_audit"
    __table_args__ = (Index("ix_identity_audit_at", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    actor: Mapped[str] = mapped_column(String(120))
    action: Mapped[str] = mapped_column(String(40))
    detail: Mapped[dict[str, Any]]


class IdentityRelativeRow(Base):
    """One side of a relationship record, for household evidence: `ref_key` is, in `role`
    (parent, child, carer, sibling, …), a relative of `relative_ref`."""

    __tablename__ = "identity_relative"
    __table_args__ = (
        Index("ix_identity_relative_ref", "ref_key"),
        Index("ix_identity_relative_relationship", "relationship_ref"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    ref_key: Mapped[str] = mapped_column(String(300))
    relative_ref: Mapped[str] = mapped_column(String(300))
    role: Mapped[str] = mapped_column(String(30))
    relationship_ref: Mapped[str] = mapped_column(String(300))


# Merges re-point the persons that redirected to the retired one (migration
# 0009_person_redirect_index): only redirects are indexed.
Index("ix_person_merged_into", PersonRow.merged_into, postgresql_where=PersonRow.merged_into.isnot(None),
      sqlite_where=PersonRow.merged_into.isnot(None))



class IdentityPendingRow(Base):
    """A new person record the records worker stored unlinked while it was behind (migration
    0014_identity_pending): hub/identity/bulk_link.py links them all at once when it has caught up."""

    __tablename__ = "identity_pending"

    ref_key: Mapped[str] = mapped_column(String(300), primary_key=True)
    held_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class RouteHeldRow(Base):
    """A `route.changed` payload the records worker held while it was behind (migration
    0014_identity_pending), announced once the records are linked: routes and alerts act on persons."""

    __tablename__ = "route_held"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    system: Mapped[str] = mapped_column(String(80))
    payload: Mapped[dict[str, Any]]
    held_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
