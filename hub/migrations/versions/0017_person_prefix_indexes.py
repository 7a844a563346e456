"""person: on SQLite, the name-key indexes that the covering ones make redundant are dropped

ix_person_family_pattern (family_key) and ix_person_given_pattern (given_key) are prefixes of
ix_person_family_cover and ix_person_given_cover (migration 0008_search_cover) on SQLite, where
they carry no text_pattern_ops: every statement of the person searches (and the key scans of
`hub.services.persons._keys_under`) seeks the covering index instead, the same range or keys
(EXPLAIN QUERY PLAN of each statement on a 100,000-person store). Each person a bulk link
inserts paid for both. PostgreSQL keeps them: there the pattern operators need them.

ix_person_family_given (family_key, given_key) stays though it is a prefix of the family cover:
without it SQLite, which has no statistics here (no ANALYZE), answers the deterministic
linker's name and date-of-birth look-up from ix_person_birth instead (every person born that
day read).

Revision ID: 0017_person_prefix_indexes
Depends on: 0004_access (the pattern indexes), 0008_search_cover (the covering ones)
"""
from alembic import op

revision = "0017_person_prefix_indexes"
down_revision = None
branch_labels = ("person_prefix_indexes",)
depends_on = ("0004_access", "0008_search_cover")

DROPPED = (("ix_person_family_pattern", "family_key"), ("ix_person_given_pattern", "given_key"))


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for name, _column in DROPPED:
        op.drop_index(name, table_name="person")


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for name, column in DROPPED:
        op.create_index(name, "person", [column])
