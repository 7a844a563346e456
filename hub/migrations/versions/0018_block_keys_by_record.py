"""identity_block_key: one B-tree keyed by the whole row; each record lists its own keys

The block keys were a rowid table with two indexes, (rule, key, detail) and ref_key. A bulk link
files its keys in (rule, key, detail) order, so the ref_key index took them in random order:
at 1,500,000 stored records, filing 250,000 records' 1,750,000 keys took 31.0 s with it and
8.6 s without (SQLite, a 64 MB page cache as the store has; the table 1,517 MB against 669).
Now the table is keyed by (rule, key, detail, ref_key), on SQLite WITHOUT ROWID: reading a
block is a range of that one tree, with no look-up of each row. A record's own keys, which
replacing or deleting them needs, are kept on its `identity_record` row (`block_keys`, JSON),
a row written anyway.

The upgrade copies the keys (a record filing the same key twice, which only cutting a long key
to the column's width could do, keeps one row) and sets each record's `block_keys` from them:
61-63 s for a SQLite store of 899,972 records and their 6.3M keys; the old table's pages are
free pages afterwards (`VACUUM` returns them to the disk). The downgrade puts the rowid table and
both indexes back.

Revision ID: 0018_block_keys_by_record
Depends on: 0016_refined_block_keys (the detail column and the (rule, key, detail) index)
"""
import sqlalchemy as sa
from alembic import op

revision = "0018_block_keys_by_record"
down_revision = None
branch_labels = ("block_keys_by_record",)
depends_on = "0016_refined_block_keys"


def upgrade() -> None:
    bind = op.get_bind()
    postgres = bind.dialect.name == "postgresql"
    op.add_column("identity_record", sa.Column("block_keys", sa.Text(), nullable=True))
    if postgres:
        op.execute("UPDATE identity_record AS r SET block_keys = k.keys FROM ("
                   "SELECT ref_key, json_agg(DISTINCT jsonb_build_array(rule, key, detail))::text AS keys "
                   "FROM identity_block_key GROUP BY ref_key) AS k WHERE k.ref_key = r.ref_key")
    else:  # through the old ref_key index, one seek per record
        op.execute("UPDATE identity_record SET block_keys = (SELECT json_group_array(DISTINCT json_array(k.rule, k.key, "
                   "k.detail)) FROM identity_block_key AS k WHERE k.ref_key = identity_record.ref_key) "
                   "WHERE EXISTS (SELECT 1 FROM identity_block_key AS k WHERE k.ref_key = identity_record.ref_key)")
    op.create_table(
        "identity_block_key_new",
        sa.Column("rule", sa.String(40), nullable=False),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("detail", sa.String(60), nullable=False, server_default=""),
        sa.Column("ref_key", sa.String(300), nullable=False),
        sa.PrimaryKeyConstraint("rule", "key", "detail", "ref_key", name="pk_identity_block_key_new"),
        sqlite_with_rowid=False,
    )
    op.execute("INSERT INTO identity_block_key_new (rule, key, detail, ref_key) SELECT DISTINCT rule, key, "
               "detail, ref_key FROM identity_block_key ORDER BY rule, key, detail, ref_key")
    op.drop_table("identity_block_key")
    op.rename_table("identity_block_key_new", "identity_block_key")
    if postgres:
        op.execute("ALTER TABLE identity_block_key RENAME CONSTRAINT pk_identity_block_key_new "
                   "TO pk_identity_block_key")


def downgrade() -> None:
    op.create_table(
        "identity_block_key_old",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("rule", sa.String(40), nullable=False),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("ref_key", sa.String(300), nullable=False),
        sa.Column("detail", sa.String(60), nullable=False, server_default=""),
        sa.PrimaryKeyConstraint("id", name="pk_identity_block_key_old"),
    )
    op.execute("INSERT INTO identity_block_key_old (rule, key, ref_key, detail) SELECT rule, key, ref_key, detail "
               "FROM identity_block_key")
    op.drop_table("identity_block_key")
    op.rename_table("identity_block_key_old", "identity_block_key")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE identity_block_key RENAME CONSTRAINT pk_identity_block_key_old "
                   "TO pk_identity_block_key")
    op.create_index("ix_identity_block_key_rule_key_detail", "identity_block_key", ["rule", "key", "detail"])
    op.create_index("ix_identity_block_key_ref", "identity_block_key", ["ref_key"])
    op.drop_column("identity_record", "block_keys")
