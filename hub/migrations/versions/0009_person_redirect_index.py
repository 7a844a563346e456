"""person redirects indexed: merging persons finds the redirects to a retired person by index

`redirect_persons` / `retire_person` re-point every person that redirected to the retired
one (`UPDATE person … WHERE merged_into = :retired`); without an index each merge scanned the
whole person table (quadratic over an initial load). Partial (only redirects are indexed), so
it is small and cannot serve, or distract, the searches that filter `merged_into IS NULL`.

Revision ID: 0009_person_redirect_index
Depends on: 0001_foundation (the person table)
"""
from alembic import op
import sqlalchemy as sa

revision = "0009_person_redirect_index"
down_revision = None
branch_labels = ("person_redirect_index",)
depends_on = "0001_foundation"


def upgrade() -> None:
    op.create_index("ix_person_merged_into", "person", ["merged_into"],
                    postgresql_where=sa.text("merged_into IS NOT NULL"),
                    sqlite_where=sa.text("merged_into IS NOT NULL"))


def downgrade() -> None:
    op.drop_index("ix_person_merged_into", table_name="person")
