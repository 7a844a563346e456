"""lifecycle: system phases, transitions, reconciliation runs, archives, hub writes, deliveries, alerts

Revision ID: 0005_lifecycle
Revises: 0001_foundation
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = "0005_lifecycle"
down_revision = "0001_foundation"
branch_labels = ("lifecycle",)
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "system_phase",
        sa.Column("system", sa.String(80), nullable=False),
        sa.Column("phase", sa.String(20), nullable=False),
        sa.Column("changed_at", TS, nullable=False),
        sa.Column("changed_by", sa.String(120), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("system", name=op.f("pk_system_phase")),
    )
    op.create_table(
        "phase_transition",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("system", sa.String(80), nullable=False),
        sa.Column("from_phase", sa.String(20), nullable=False),
        sa.Column("to_phase", sa.String(20), nullable=False),
        sa.Column("direction", sa.String(10), nullable=False),
        sa.Column("outcome", sa.String(10), nullable=False),
        sa.Column("who", sa.String(120), nullable=False),
        sa.Column("why", sa.Text(), nullable=False),
        sa.Column("checks", JSON, nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_phase_transition")),
    )
    op.create_index("ix_phase_transition_system_at", "phase_transition", ["system", "at"])
    op.create_table(
        "reconciliation_run",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("system", sa.String(80), nullable=False),
        sa.Column("trigger", sa.String(40), nullable=False),
        sa.Column("clean", sa.Boolean(), nullable=False),
        sa.Column("summary", JSON, nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reconciliation_run")),
    )
    op.create_index("ix_reconciliation_run_system_at", "reconciliation_run", ["system", "at"])
    op.create_table(
        "system_archive",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("system", sa.String(80), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("manifest", JSON, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_system_archive")),
    )
    op.create_index("ix_system_archive_system", "system_archive", ["system"])
    op.create_table(
        "hub_write",
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("idempotency_key", sa.String(200), nullable=True),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("operation", sa.String(40), nullable=False),
        sa.Column("person_id", sa.String(40), nullable=True),
        sa.Column("mode", sa.String(20), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("request", JSON, nullable=False),
        sa.Column("response_status", sa.Integer(), nullable=False),
        sa.Column("response", JSON, nullable=False),
        sa.Column("who", sa.String(120), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_hub_write")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_hub_write_idempotency_key")),
    )
    op.create_index("ix_hub_write_person_id", "hub_write", ["person_id"])
    op.create_table(
        "routing_delivery",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("message_id", sa.String(36), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("write_id", sa.String(40), nullable=True),
        sa.Column("route", sa.String(120), nullable=True),
        sa.Column("system", sa.String(80), nullable=False),
        sa.Column("entity", sa.String(80), nullable=False),
        sa.Column("operation", sa.String(20), nullable=False),
        sa.Column("source_id", sa.String(200), nullable=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_routing_delivery")),
        sa.UniqueConstraint("message_id", name=op.f("uq_routing_delivery_message_id")),
    )
    op.create_index("ix_routing_delivery_system_status", "routing_delivery", ["system", "status"])
    op.create_index("ix_routing_delivery_write_id", "routing_delivery", ["write_id"])
    op.create_table(
        "hub_alert",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("rule", sa.String(120), nullable=False),
        sa.Column("team", sa.String(200), nullable=False),
        sa.Column("household_key", sa.String(300), nullable=False),
        sa.Column("persons", JSON, nullable=False),
        sa.Column("services", JSON, nullable=False),
        sa.Column("evidence", JSON, nullable=False),
        sa.Column("message_id", sa.String(36), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("raised_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_hub_alert")),
    )
    op.create_index("ix_hub_alert_rule_at", "hub_alert", ["rule", "raised_at"])


def downgrade() -> None:
    for table in ("hub_alert", "routing_delivery", "hub_write", "system_archive", "reconciliation_run",
                  "phase_transition", "system_phase"):
        op.drop_table(table)
