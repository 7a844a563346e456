"""The clerical review queue: possible matches with both records side by side and the
evidence field by field; a steward decides "same person", "not the same person" or
"unsure", always with a reason. Decisions are audited, become constraints that
automation respects, and feed back into training.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from hub.identity import repository as repo
from hub.identity.stewardship import StewardshipError, merge_persons, split_person
from hub.store.base import utcnow
from hub.store.engine import Store
from hub.store.tables.identity import (
    IdentityAuditRow,
    IdentityConstraintRow,
    IdentityLinkRow,
    IdentityReviewRow,
)
from hub.store.tables.records import SourceRecordRow
from identity_index.model import Model

STATUSES = ("open", "unsure", "linked", "not_same", "resolved")


class ReviewDecision(StrEnum):
    LINK = "link"
    NOT_SAME = "not_same"
    UNSURE = "unsure"


class ReviewNotFound(LookupError):
    """No review pair has that id."""


class ReviewRejected(ValueError):
    """The decision is incomplete (no reason, no user) or breaks a constraint."""


@dataclass(frozen=True)
class ReviewPage:
    items: list[dict[str, Any]]
    total: int
    page: int
    page_size: int


def list_reviews(store: Store, *, status: str | None = "open", system: str | None = None,
                 page: int = 1, page_size: int = 20) -> ReviewPage:
    """Review pairs, most likely matches first; `status` None lists every pair."""
    conditions = []
    if status:
        conditions.append(IdentityReviewRow.status == status)
    if system:
        prefix = f"{system}/"
        conditions.append(IdentityReviewRow.ref_a.startswith(prefix) | IdentityReviewRow.ref_b.startswith(prefix))
    with store.transaction() as s:
        total = s.execute(select(func.count()).select_from(IdentityReviewRow).where(*conditions)).scalar_one()
        rows = s.execute(select(IdentityReviewRow).where(*conditions)
                         .order_by(IdentityReviewRow.probability.desc(), IdentityReviewRow.id)
                         .offset((page - 1) * page_size).limit(page_size)).scalars().all()
        return ReviewPage([_summary(s, r) for r in rows], total, page, page_size)


def open_review_count(store: Store, system: str | None = None) -> int:
    """Backlog of undecided pairs (open or unsure), optionally only those touching one system."""
    return list_reviews(store, status="open", system=system, page_size=1).total + \
        list_reviews(store, status="unsure", system=system, page_size=1).total


def get_review(store: Store, review_id: int) -> dict[str, Any]:
    """One pair: both records' fields side by side, per-field evidence and the current persons."""
    with store.transaction() as s:
        row = s.get(IdentityReviewRow, review_id)
        if row is None:
            raise ReviewNotFound(review_id)
        detail = _summary(s, row)
        records = {r.ref_key: r for r in s.execute(select(SourceRecordRow).where(
            SourceRecordRow.ref_key.in_([row.ref_a, row.ref_b]))).scalars()}
        detail["records"] = [_side(ref, records.get(ref)) for ref in (row.ref_a, row.ref_b)]
        detail["fields"] = _side_by_side(detail["records"], row.explanation)
        return detail


def decide(store: Store, review_id: int, decision: str, *, user: str, reason: str, model: Model) -> dict[str, Any]:
    """Record a steward's decision on a pair and apply it to the persons (merge or split)."""
    try:
        choice = ReviewDecision(decision)
    except ValueError as exc:
        raise ReviewRejected(f"decision must be one of {', '.join(d.value for d in ReviewDecision)}") from exc
    if not (user or "").strip() or not (reason or "").strip():
        raise ReviewRejected("a decision needs the user who made it and a reason")
    with store.transaction() as s:
        row = s.get(IdentityReviewRow, review_id)
        if row is None:
            raise ReviewNotFound(review_id)
        outcome: dict[str, Any] = {}
        try:
            outcome = _apply(s, row, choice, user, reason, model)
        except StewardshipError as exc:
            raise ReviewRejected(str(exc)) from exc
        row.status = {"link": "linked", "not_same": "not_same", "unsure": "unsure"}[choice.value]
        row.decided_by, row.reason, row.decided_at = user, reason, utcnow()
        repo.audit(s, user, f"review_{choice.value}", {"review_id": review_id, "ref_a": row.ref_a,
                                                       "ref_b": row.ref_b, "reason": reason, **outcome})
    return get_review(store, review_id)


def _apply(s: Session, row: IdentityReviewRow, choice: ReviewDecision, user: str, reason: str,
           model: Model) -> dict[str, Any]:
    if choice == ReviewDecision.UNSURE:
        return {}
    person_a, person_b = repo.current_person(s, row.ref_a), repo.current_person(s, row.ref_b)
    if choice == ReviewDecision.LINK:
        repo.set_constraint(s, row.ref_a, row.ref_b, same=True, actor=user, reason=reason)
        if person_a and person_b and person_a != person_b:
            return {"person_id": merge_persons(s, person_a, person_b, actor=user, reason=reason, model=model)}
        return {"person_id": person_a}
    repo.set_constraint(s, row.ref_a, row.ref_b, same=False, actor=user, reason=reason)
    if person_a and person_a == person_b:
        return {"person_ids": split_person(s, person_a, actor=user, reason=reason, model=model)}
    return {"person_ids": [p for p in (person_a, person_b) if p]}


def steward_decisions(store: Store) -> dict[tuple[str, str], bool]:
    """Every steward decision on a pair (True: same person), for training."""
    with store.transaction() as s:
        return {(r.ref_a, r.ref_b): r.same for r in s.execute(select(IdentityConstraintRow)).scalars()}


def _summary(s: Session, row: IdentityReviewRow) -> dict[str, Any]:
    person_a, person_b = repo.current_person(s, row.ref_a), repo.current_person(s, row.ref_b)
    return {"id": row.id, "ref_a": row.ref_a, "ref_b": row.ref_b, "probability": row.probability,
            "match_weight": row.match_weight, "status": row.status, "model_version": row.model_version,
            "person_a": person_a, "person_b": person_b, "same_person_now": bool(person_a and person_a == person_b),
            "decided_by": row.decided_by, "reason": row.reason,
            "decided_at": row.decided_at.isoformat() if row.decided_at else None,
            "created_at": row.created_at.isoformat() if row.created_at else None,
            "evidence": row.explanation}


def _side(ref: str, record: SourceRecordRow | None) -> dict[str, Any]:
    if record is None:
        return {"ref": ref, "missing": True}
    person = record.canonical or {}
    names = person.get("names") or [{}]
    birth = person.get("birth_date") or {}
    address = (person.get("addresses") or [{}])[0]
    return {"ref": ref, "system": record.system, "source_id": record.source_id, "deleted": record.deleted,
            "given": names[0].get("given"), "family": names[0].get("family"),
            "other_names": [" ".join(p for p in (n.get("given"), n.get("family")) if p) for n in names[1:]],
            "birth_date": birth.get("value"), "birth_date_precision": birth.get("precision"),
            "sex": person.get("sex"), "postcode": address.get("postcode"),
            "address": ", ".join(address.get("lines") or []),
            "nhs_number": next((i["value"] for i in person.get("identifiers", []) if i["scheme"] == "nhs_number"), None),
            "upn": next((i["value"] for i in person.get("identifiers", []) if i["scheme"] == "upn"), None),
            "phones": [c["value"] for c in person.get("contacts", []) if c.get("kind") in ("phone", "mobile")]}


FIELD_COLUMNS = {"given": ("given",), "family": ("family", "other_names"), "dob": ("birth_date",),
                 "sex": ("sex",), "address": ("postcode", "address"), "nhs": ("nhs_number",), "upn": ("upn",),
                 "phone": ("phones",)}


def _side_by_side(records: list[dict[str, Any]], explanation: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per compared field: both values, the level reached and its weight in bits."""
    rows = []
    for f in explanation.get("fields", []):
        columns = FIELD_COLUMNS.get(f["comparison"], ())
        rows.append({"comparison": f["comparison"], "level": f["level"],
                     "weight": round(f["weight"] + f.get("tf_adjustment", 0.0), 3),
                     "a": {c: records[0].get(c) for c in columns}, "b": {c: records[1].get(c) for c in columns}})
    return rows


def link_history(store: Store, ref: str) -> list[dict[str, Any]]:
    """Every link decision about a record, newest first, with its per-field evidence."""
    with store.transaction() as s:
        rows = s.execute(select(IdentityLinkRow).where(IdentityLinkRow.ref_key == ref)
                         .order_by(IdentityLinkRow.id.desc())).scalars().all()
        return [{"person_id": r.person_id, "made_by": r.made_by, "rule": r.rule, "matched_ref": r.matched_ref,
                 "probability": r.probability, "match_weight": r.match_weight, "model_version": r.model_version,
                 "actor": r.actor, "at": r.created_at.isoformat() if r.created_at else None,
                 "explanation": r.explanation} for r in rows]


def audit_entries(store: Store, *, limit: int = 50) -> list[dict[str, Any]]:
    """The newest identity decisions: steward decisions, merges, splits, unlinks, rebuilds."""
    with store.transaction() as s:
        rows = s.execute(select(IdentityAuditRow).order_by(IdentityAuditRow.id.desc()).limit(limit)).scalars()
        return [{"id": r.id, "at": r.at.isoformat() if r.at else None, "actor": r.actor, "action": r.action,
                 "detail": r.detail} for r in rows]
