"""search covering indexes: a search by one common name is ranked and counted from the indexes

Name keys, id and merged_into of every person, prefix-capable on PostgreSQL
(text_pattern_ops), so `hub.services.persons._one_name_page` reads no table page for the
thousands of people a common name can match. Building them locks writes to `person` for the
build (about 2 s per index at 1,000,000 people).

Revision ID: 0008_search_cover
Depends on: 0001_foundation (the person table)
"""
from alembic import op

revision = "0008_search_cover"
down_revision = None
branch_labels = ("search_cover",)
depends_on = "0001_foundation"


def upgrade() -> None:
    # merged_into is carried (INCLUDE on PostgreSQL) rather than a partial-index predicate: a
    # partial index made the planner prefer it for multi-criteria searches and stop AND-ing the
    # name bitmaps, reading thousands of table pages for a few matches.
    if op.get_bind().dialect.name == "postgresql":
        for name, lead, second in (("ix_person_family_cover", "family_key", "given_key"),
                                   ("ix_person_given_cover", "given_key", "family_key")):
            op.create_index(name, "person", [lead, second, "id"], postgresql_ops={lead: "text_pattern_ops"},
                            postgresql_include=["merged_into"])
    else:
        op.create_index("ix_person_family_cover", "person", ["family_key", "given_key", "id", "merged_into"])
        op.create_index("ix_person_given_cover", "person", ["given_key", "family_key", "id", "merged_into"])


def downgrade() -> None:
    op.drop_index("ix_person_given_cover", table_name="person")
    op.drop_index("ix_person_family_cover", table_name="person")
