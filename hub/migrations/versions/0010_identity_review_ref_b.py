"""identity review pairs found by either record: an index on ref_b

`open_reviews_touching` looks pairs up by ref_a (the unique pair index leads with it) and by
ref_b; without this index the ref_b side read every open review pair, once per batch
(quadratic over a load).

Revision ID: 0010_identity_review_ref_b
Depends on: 0003_identity (the identity_review table)
"""
from alembic import op

revision = "0010_identity_review_ref_b"
down_revision = None
branch_labels = ("identity_review_ref_b",)
depends_on = "0003_identity"


def upgrade() -> None:
    op.create_index("ix_identity_review_ref_b", "identity_review", ["ref_b"])


def downgrade() -> None:
    op.drop_index("ix_identity_review_ref_b", table_name="identity_review")
