"""Who each alert is about, one row per person: the routing worker asks "has this rule already
alerted about any of these people?" for a batch's households by index, instead of reading every
alert of the rule (which grows with every alert ever raised)."""

from __future__ import annotations

from sqlalchemy import Integer, PrimaryKeyConstraint, String
from sqlalchemy.orm import Mapped, mapped_column

from hub.store.base import Base


class AlertPersonRow(Base):
    """A person named in `hub_alert.persons`, written in the same transaction as the alert."""

    __tablename__ = "hub_alert_person"
    __table_args__ = (PrimaryKeyConstraint("person_id", "alert_id", name="pk_hub_alert_person"),)

    person_id: Mapped[str] = mapped_column(String(40))
    alert_id: Mapped[int] = mapped_column(Integer)
