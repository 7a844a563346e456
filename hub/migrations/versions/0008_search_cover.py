"""search covering indexes: a search by one common name is ranked and counted from the indexes

Name keys and id of live people (partial on merged_into IS NULL), prefix-capable on PostgreSQL
(text_pattern_ops), so `hub.services.persons._one_name_page` reads no table page for the
thousands of people a common name can match. Building them locks writes to `person` for the
build (about 2 s per index at 1,000,000 people).

Revision ID: 0008_search_cover
Depends on: 0001_foundation (the person table)
"""
import sqlalchemy as sa
from alembic import op

revision = "0008_search_cover"
down_revision = None
branch_labels = ("search_cover",)
depends_on = "0001_foundation"

_LIVE = sa.text("merged_into IS NULL")


def upgrade() -> None:
    op.create_index("ix_person_family_cover", "person", ["family_key", "given_key", "id"],
                    postgresql_ops={"family_key": "text_pattern_ops"}, postgresql_where=_LIVE, sqlite_where=_LIVE)
    op.create_index("ix_person_given_cover", "person", ["given_key", "family_key", "id"],
                    postgresql_ops={"given_key": "text_pattern_ops"}, postgresql_where=_LIVE, sqlite_where=_LIVE)


def downgrade() -> None:
    op.drop_index("ix_person_given_cover", table_name="person")
    op.drop_index("ix_person_family_cover", table_name="person")
