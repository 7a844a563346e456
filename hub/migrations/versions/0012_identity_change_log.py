"""identity change log: every change to what a records worker's candidate index holds

`identity_change` gets one row per change of an identity record (its person or features),
of a blocking key, of a person's NHS identifier and of a steward's constraint, appended by
database triggers so every writer is covered (records workers, stewards, `hub identity
rebuild`, an operator's SQL). Workers keep their candidate index between batches and
re-read only what the log names (hub/identity/live_index.py). On PostgreSQL each row carries
the id of the transaction that wrote it (sequence order is not commit order there);
statement-level triggers write one row per record a statement changed. On SQLite (one
writer at a time) the sequence is commit order. `identity_change_horizon` remembers how far
old rows were pruned, so a worker that had not read them drops its index instead.

Revision ID: 0012_identity_change_log
Depends on: 0003_identity (identity tables), 0001_foundation (person_identifier)
"""
from alembic import op
import sqlalchemy as sa

revision = "0012_identity_change_log"
down_revision = None
branch_labels = ("identity_change_log",)
depends_on = "0003_identity"

# table → (kind, columns naming what changed, condition on a row or None)
SOURCES = {
    "identity_record": ("r", ("ref_key", None), None),
    "identity_block_key": ("r", ("ref_key", None), None),
    "person_identifier": ("p", ("person_id", None), "scheme = 'nhs_number'"),
    "identity_constraint": ("c", ("ref_a", "ref_b"), None),
}


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    seq = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
    op.create_table(
        "identity_change",
        sa.Column("seq", seq, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(1), nullable=False),  # r: record, p: person, c: constraint
        sa.Column("ref", sa.String(300), nullable=False),
        sa.Column("other", sa.String(300), nullable=True),
        sa.Column("xid", sa.BigInteger(), nullable=True),  # PostgreSQL: the writing transaction
        sqlite_autoincrement=True,  # a pruned or rolled-back number is never handed out again
    )
    op.create_table(
        "identity_change_horizon",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),  # every row up to here may be pruned
        sa.Column("xid", sa.BigInteger(), nullable=True),  # the newest transaction a pruned row had
    )
    op.execute("INSERT INTO identity_change_horizon (id, seq, xid) VALUES (1, 0, NULL)")
    if postgres:
        op.create_index("ix_identity_change_xid", "identity_change", ["xid"])
        _postgres_triggers()
    else:
        _sqlite_triggers()


def _sqlite_triggers() -> None:
    for table, (kind, (col, other), where) in SOURCES.items():
        for event, rows in (("INSERT", ("NEW",)), ("DELETE", ("OLD",)), ("UPDATE", ("OLD", "NEW"))):
            body = []
            for row in rows:
                cond = f" WHERE {where.replace('scheme', f'{row}.scheme')}" if where else ""
                body.append(f"INSERT INTO identity_change (kind, ref, other) SELECT '{kind}', {row}.{col}, "
                            f"{f'{row}.{other}' if other else 'NULL'}{cond};")
            op.execute(f"CREATE TRIGGER identity_change_{table}_{event.lower()} AFTER {event} ON {table} "
                       f"BEGIN {' '.join(body)} END")


def _postgres_triggers() -> None:
    for table, (kind, (col, other), where) in SOURCES.items():
        cond = f" WHERE {where}" if where else ""
        picked = f"{col} AS ref, {other or 'NULL'} AS other"

        def log(rows: str) -> str:
            return (f"INSERT INTO identity_change (kind, ref, other, xid) SELECT '{kind}', ref, other, "
                    f"pg_current_xact_id()::text::bigint FROM ({rows}) AS changed;")
        op.execute(f"""
CREATE FUNCTION identity_change_{table}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN {log(f"SELECT DISTINCT {picked} FROM new_rows{cond}")}
    ELSIF TG_OP = 'DELETE' THEN {log(f"SELECT DISTINCT {picked} FROM old_rows{cond}")}
    ELSE {log(f"SELECT {picked} FROM new_rows{cond} UNION SELECT {picked} FROM old_rows{cond}")}
    END IF;
    RETURN NULL;
END $$""")
        for event, refs in (("INSERT", "NEW TABLE AS new_rows"), ("DELETE", "OLD TABLE AS old_rows"),
                            ("UPDATE", "OLD TABLE AS old_rows NEW TABLE AS new_rows")):
            op.execute(f"CREATE TRIGGER identity_change_{table}_{event.lower()} AFTER {event} ON {table} "
                       f"REFERENCING {refs} FOR EACH STATEMENT EXECUTE FUNCTION identity_change_{table}()")


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    for table in SOURCES:
        for event in ("insert", "delete", "update"):
            op.execute(f"DROP TRIGGER IF EXISTS identity_change_{table}_{event}" + (f" ON {table}" if postgres else ""))
        if postgres:
            op.execute(f"DROP FUNCTION IF EXISTS identity_change_{table}()")
    op.drop_table("identity_change_horizon")
    op.drop_table("identity_change")
