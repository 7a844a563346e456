"""The canonical Involvement and Relationship: a service episode, and how two people stand."""

from __future__ import annotations

import datetime as dt

from pydantic import Field, model_validator

from canonical.codes import InvolvementKind, InvolvementStatus, RelationshipKind, Sensitivity, ServiceCategory
from canonical.person import CanonicalModel, Period
from canonical.records import SourceRef


class Involvement(CanonicalModel):
    """One service episode for one person (a referral, a plan, an exclusion, an order...)."""

    subject: SourceRef = Field(..., description="the person record this involvement belongs to")
    service_category: ServiceCategory
    kind: InvolvementKind
    started_on: dt.date
    ended_on: dt.date | None = None
    status: InvolvementStatus = InvolvementStatus.OPEN
    allocated_worker: str | None = None
    team: str | None = None
    sensitivity: Sensitivity = Sensitivity.NORMAL
    summary: str | None = None

    @model_validator(mode="after")
    def _dates(self) -> "Involvement":
        if self.ended_on and self.ended_on < self.started_on:
            raise ValueError(f"involvement ends ({self.ended_on}) before it starts ({self.started_on})")
        if self.status == InvolvementStatus.CLOSED and not self.ended_on:
            raise ValueError("a closed involvement needs an end date")
        return self


class Relationship(CanonicalModel):
    """`related` is the `kind` of `subject` (kind=parent: related is subject's parent)."""

    subject: SourceRef
    related: SourceRef
    kind: RelationshipKind
    period: Period | None = None

    @model_validator(mode="after")
    def _distinct(self) -> "Relationship":
        s, r = self.subject, self.related  # compared by field: a model's == costs ~5 µs a relationship
        if (s.system, s.entity, s.source_id) == (r.system, r.entity, r.source_id):
            raise ValueError("a relationship needs two different people")
        return self
