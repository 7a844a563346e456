"""identity_pending: what a records worker set aside to link in bulk while it was behind

A records worker far behind its queue (an initial load) stores new person records without
linking them and lists them in `identity_pending`, and keeps the `route.changed` payloads it
would have announced to the routing worker in `route_held`. When the backlog is gone it links
them all at once (hub/identity/bulk_link.py: one clustering, written in short transactions) and
announces the changes: the same persons at a fraction of the cost of placing each record
against the index one batch at a time.

Revision ID: 0014_identity_pending
Depends on: 0003_identity (identity tables)
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = "0014_identity_pending"
down_revision = None
branch_labels = ("identity_pending",)
depends_on = "0003_identity"


def upgrade() -> None:
    op.create_table(
        "identity_pending",
        sa.Column("ref_key", sa.String(300), primary_key=True),
        sa.Column("held_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "route_held",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("system", sa.String(80), nullable=False),
        sa.Column("payload", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
        sa.Column("held_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("route_held")
    op.drop_table("identity_pending")
