"""alerts found by person: hub_alert_person (person_id, alert_id), filled from hub_alert.persons

The routing worker's "already raised for this household?" read every alert of the rule raised
since the window began or still open, for every message: O(alerts ever raised) per message.
With one row per (person, alert) it reads only the alerts naming a batch's household members.

Revision ID: 0012_hub_alert_person
Depends on: 0005_lifecycle (the hub_alert table)
"""
import json

import sqlalchemy as sa
from alembic import op

revision = "0012_hub_alert_person"
down_revision = None
branch_labels = ("hub_alert_person",)
depends_on = "0005_lifecycle"


def upgrade() -> None:
    table = op.create_table(
        "hub_alert_person",
        sa.Column("person_id", sa.String(40), nullable=False),
        sa.Column("alert_id", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("person_id", "alert_id", name="pk_hub_alert_person"),
    )
    rows = []
    for alert_id, persons in op.get_bind().execute(sa.text("SELECT id, persons FROM hub_alert")):
        persons = json.loads(persons) if isinstance(persons, str) else persons
        rows += [{"person_id": p, "alert_id": alert_id} for p in dict.fromkeys(persons or [])]
    if rows:
        op.bulk_insert(table, rows)


def downgrade() -> None:
    op.drop_table("hub_alert_person")
