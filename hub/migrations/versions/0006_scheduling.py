"""scheduling: adapter pause/resume/run-now state, burndown snapshots

Revision ID: 0006_scheduling
Revises: 0001_foundation
"""
from alembic import op
import sqlalchemy as sa

revision = "0006_scheduling"
down_revision = "0001_foundation"
branch_labels = ("scheduling",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "system_schedule",
        sa.Column("system", sa.String(length=80), nullable=False),
        sa.Column("paused", sa.Boolean(), nullable=False),
        sa.Column("paused_by", sa.String(length=120), nullable=True),
        sa.Column("paused_reason", sa.Text(), nullable=True),
        sa.Column("paused_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("run_requested_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("run_requested_by", sa.String(length=120), nullable=True),
        sa.Column("next_run_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("schedule", sa.String(length=200), nullable=True),
        sa.Column("scheduler_seen_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("system", name=op.f("pk_system_schedule")),
    )
    op.create_table(
        "burndown_snapshot",
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.Column("systems_total", sa.Integer(), nullable=False),
        sa.Column("systems_outside", sa.Integer(), nullable=False),
        sa.Column("records_total", sa.Integer(), nullable=False),
        sa.Column("records_outside", sa.Integer(), nullable=False),
        sa.Column("taken_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("day", name=op.f("pk_burndown_snapshot")),
    )


def downgrade() -> None:
    op.drop_table("burndown_snapshot")
    op.drop_table("system_schedule")
