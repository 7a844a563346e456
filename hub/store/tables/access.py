"""Accounts, API tokens, sign-in attempts, break-glass grants and the hash-chained audit log."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Boolean, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from hub.store.base import Base, utcnow
from hub.store.tables.records import PersonIdentifierRow, PersonRow, SourceRecordRow

# Search indexes on the records tables, for the consolidated view's search: prefix matching of
# name keys (text_pattern_ops on PostgreSQL, whatever the collation; on SQLite the covering
# indexes below serve the same ranges, migration 0017_person_prefix_indexes), identifier
# values without their scheme, and any system's record id.
Index("ix_person_family_pattern", PersonRow.family_key,
      postgresql_ops={"family_key": "text_pattern_ops"}).ddl_if(dialect="postgresql")
Index("ix_person_given_pattern", PersonRow.given_key,
      postgresql_ops={"given_key": "text_pattern_ops"}).ddl_if(dialect="postgresql")
# Covering indexes of name keys, id and merged_into (migration 0008_search_cover): a search by
# one common name is ranked and counted without reading the table.
Index("ix_person_family_cover", PersonRow.family_key, PersonRow.given_key, PersonRow.id,
      postgresql_ops={"family_key": "text_pattern_ops"}, postgresql_include=["merged_into"])
Index("ix_person_given_cover", PersonRow.given_key, PersonRow.family_key, PersonRow.id,
      postgresql_ops={"given_key": "text_pattern_ops"}, postgresql_include=["merged_into"])
Index("ix_person_identifier_value_only", PersonIdentifierRow.value)
Index("ix_source_record_source_id", SourceRecordRow.source_id)


class UserRow(Base):
    """A local account. `worker_name` and `teams` tie the account to involvements' allocated
    worker and team, which is how a legitimate relationship (caseload, team) is derived."""

    __tablename__ = "hub_user"
    __table_args__ = (UniqueConstraint("username", name="uq_hub_user_username"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(120))
    display_name: Mapped[str] = mapped_column(String(200), default="")
    password_hash: Mapped[str] = mapped_column(Text)
    roles: Mapped[list[Any]]
    worker_name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    teams: Mapped[list[Any]]
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    locked_until: Mapped[dt.datetime | None] = mapped_column(nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class ApiTokenRow(Base):
    """A bearer token for the JSON API; only its SHA-256 is kept (the token is shown once)."""

    __tablename__ = "api_token"
    __table_args__ = (UniqueConstraint("token_hash", name="uq_api_token_token_hash"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(Integer, index=True)
    name: Mapped[str] = mapped_column(String(120), default="")
    prefix: Mapped[str] = mapped_column(String(12))
    token_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)
    last_used_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)


class UserSessionRow(Base):
    """A signed-in browser session. The cookie holds only the session id; the hub keeps its hash,
    when it was last seen (idle time-out) and when it ended (sign-out), so a cookie replayed or
    re-issued by a request that raced the sign-out is refused."""

    __tablename__ = "user_session"
    __table_args__ = (UniqueConstraint("sid_hash", name="uq_user_session_sid_hash"),
                      Index("ix_user_session_user", "user_id"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    sid_hash: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[int] = mapped_column(Integer)
    client: Mapped[str] = mapped_column(String(64), default="")
    signed_in_at: Mapped[dt.datetime]
    last_seen_at: Mapped[dt.datetime]
    ended_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)
    end_reason: Mapped[str | None] = mapped_column(String(20), nullable=True)


class LoginAttemptRow(Base):
    """Every sign-in attempt, by account and by client address, for throttling and lock-out."""

    __tablename__ = "login_attempt"
    __table_args__ = (Index("ix_login_attempt_username_at", "username", "at"),
                      Index("ix_login_attempt_ip_at", "ip", "at"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(120))
    ip: Mapped[str] = mapped_column(String(64))
    succeeded: Mapped[bool] = mapped_column(Boolean)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class BreakGlassRow(Base):
    """Raised access to one person for a limited time, with the reason; reviewed by a data steward."""

    __tablename__ = "break_glass"
    __table_args__ = (Index("ix_break_glass_user_person", "user_id", "person_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(Integer)
    username: Mapped[str] = mapped_column(String(120))
    person_id: Mapped[str] = mapped_column(String(40))
    reason: Mapped[str] = mapped_column(Text)
    granted_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[dt.datetime]
    reviewed_by: Mapped[str | None] = mapped_column(String(120), nullable=True)
    reviewed_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)
    review_note: Mapped[str | None] = mapped_column(Text, nullable=True)


class AuditRow(Base):
    """One audited action. Rows are only ever appended; `entry_hash` chains each row to the one
    before it (`prev_hash`), so an edited, removed or reordered row breaks the chain."""

    __tablename__ = "audit_log"
    __table_args__ = (UniqueConstraint("seq", name="uq_audit_log_seq"),
                      Index("ix_audit_log_actor_at", "actor", "at"),
                      Index("ix_audit_log_person", "person_id"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    seq: Mapped[int] = mapped_column(Integer)
    at: Mapped[dt.datetime]
    actor: Mapped[str] = mapped_column(String(120))
    action: Mapped[str] = mapped_column(String(40))
    outcome: Mapped[str] = mapped_column(String(20))
    person_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    target: Mapped[str | None] = mapped_column(String(300), nullable=True)
    purpose: Mapped[str | None] = mapped_column(Text, nullable=True)
    client: Mapped[str | None] = mapped_column(String(120), nullable=True)
    detail: Mapped[dict[str, Any]]
    prev_hash: Mapped[str] = mapped_column(String(64))
    entry_hash: Mapped[str] = mapped_column(String(64))


class AuditHeadRow(Base):
    """The single row holding the chain's last sequence number and hash; locked by each append so
    concurrent writers serialise instead of forking the chain."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, default=0)
    entry_hash: Mapped[str] = mapped_column(String(64))


class PolicyStateRow(Base):
    """The hash of the access policy last loaded, so a changed policy file is audited once."""

    __tablename__ = "policy_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    policy_hash: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(Text, default="")
    loaded_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
