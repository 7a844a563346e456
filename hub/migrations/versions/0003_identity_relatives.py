"""identity: relatives of person records (household evidence for linking)

Revision ID: 0003_identity_relatives
Revises: 0003_identity
"""
from alembic import op
import sqlalchemy as sa

revision = "0003_identity_relatives"
down_revision = "0003_identity"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "identity_relative",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("ref_key", sa.String(300), nullable=False),
        sa.Column("relative_ref", sa.String(300), nullable=False),
        sa.Column("role", sa.String(30), nullable=False),
        sa.Column("relationship_ref", sa.String(300), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_identity_relative")),
    )
    op.create_index("ix_identity_relative_ref", "identity_relative", ["ref_key"])
    op.create_index("ix_identity_relative_relationship", "identity_relative", ["relationship_ref"])


def downgrade() -> None:
    op.drop_table("identity_relative")
