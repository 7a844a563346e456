"""Inbox: which messages a consumer has already processed, so redelivery is a no-op."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from hub.store.tables.messaging import InboxRow


def claim_unseen(session: Session, consumer: str, message_ids: Sequence[str]) -> set[str]:
    """Record `message_ids` as processed by `consumer` in this transaction; return the new ones.

    A concurrent worker claiming the same id makes one of the transactions fail on the
    primary key, and the bus redelivers to it, where it is then seen as processed."""
    ids = list(dict.fromkeys(message_ids))
    seen = set(session.execute(select(InboxRow.message_id).where(
        InboxRow.consumer == consumer, InboxRow.message_id.in_(ids))).scalars())
    fresh = [i for i in ids if i not in seen]
    if fresh:
        session.execute(insert(InboxRow), [dict(consumer=consumer, message_id=i) for i in fresh])
    return set(fresh)
