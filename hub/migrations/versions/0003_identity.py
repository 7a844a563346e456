"""identity: record features, blocking keys, link evidence, review pairs, constraints, audit

Revision ID: 0003_identity
Revises: 0001_foundation
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = "0003_identity"
down_revision = "0001_foundation"
branch_labels = ("identity",)
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "identity_record",
        sa.Column("ref_key", sa.String(300), nullable=False),
        sa.Column("person_id", sa.String(40), nullable=False),
        sa.Column("features", JSON, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("ref_key", name=op.f("pk_identity_record")),
    )
    op.create_index("ix_identity_record_person", "identity_record", ["person_id"])
    op.create_table(
        "identity_block_key",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("rule", sa.String(40), nullable=False),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("ref_key", sa.String(300), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_identity_block_key")),
    )
    op.create_index("ix_identity_block_key_rule_key", "identity_block_key", ["rule", "key"])
    op.create_index("ix_identity_block_key_ref", "identity_block_key", ["ref_key"])
    op.create_table(
        "identity_link",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("ref_key", sa.String(300), nullable=False),
        sa.Column("person_id", sa.String(40), nullable=False),
        sa.Column("made_by", sa.String(20), nullable=False),
        sa.Column("rule", sa.String(60), nullable=True),
        sa.Column("matched_ref", sa.String(300), nullable=True),
        sa.Column("match_weight", sa.Float(), nullable=True),
        sa.Column("probability", sa.Float(), nullable=True),
        sa.Column("explanation", JSON, nullable=False),
        sa.Column("model_version", sa.String(80), nullable=False),
        sa.Column("actor", sa.String(120), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_identity_link")),
    )
    op.create_index("ix_identity_link_ref", "identity_link", ["ref_key"])
    op.create_index("ix_identity_link_person", "identity_link", ["person_id"])
    op.create_table(
        "identity_review",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("ref_a", sa.String(300), nullable=False),
        sa.Column("ref_b", sa.String(300), nullable=False),
        sa.Column("match_weight", sa.Float(), nullable=False),
        sa.Column("probability", sa.Float(), nullable=False),
        sa.Column("explanation", JSON, nullable=False),
        sa.Column("model_version", sa.String(80), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("decided_by", sa.String(120), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("decided_at", TS, nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_identity_review")),
        sa.UniqueConstraint("ref_a", "ref_b", name="uq_identity_review_pair"),
    )
    op.create_index("ix_identity_review_status", "identity_review", ["status"])
    op.create_table(
        "identity_constraint",
        sa.Column("ref_a", sa.String(300), nullable=False),
        sa.Column("ref_b", sa.String(300), nullable=False),
        sa.Column("same", sa.Boolean(), nullable=False),
        sa.Column("decided_by", sa.String(120), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("ref_a", "ref_b", name=op.f("pk_identity_constraint")),
    )
    op.create_index("ix_identity_constraint_b", "identity_constraint", ["ref_b"])
    op.create_table(
        "identity_audit",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.Column("actor", sa.String(120), nullable=False),
        sa.Column("action", sa.String(40), nullable=False),
        sa.Column("detail", JSON, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_identity_audit")),
    )
    op.create_index("ix_identity_audit_at", "identity_audit", ["at"])


def downgrade() -> None:
    for table in ("identity_audit", "identity_constraint", "identity_review", "identity_link",
                  "identity_block_key", "identity_record"):
        op.drop_table(table)
