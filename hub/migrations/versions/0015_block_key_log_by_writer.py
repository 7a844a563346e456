"""identity change log: block keys are logged by their writer, not by a trigger per key row

A record's blocking keys are derived from its features, and every writer that stores or removes
keys writes the record's `identity_record` row in the same transaction (its own trigger logs the
record). The block-key triggers logged the same record again once per key row: ~7 rows a person
record, which on SQLite (row triggers, an AUTOINCREMENT counter) tripled the cost of writing the
keys (35,013 records: 5.1 s → 1.6 s). The one writer that rewrites keys without touching the
records, `hub identity rebuild` under other blocking rules, logs its records itself
(`hub.identity.live_index.log_records_changed`).

Revision ID: 0015_block_key_log_by_writer
Depends on: 0012_identity_change_log (the triggers dropped here)
"""
from alembic import op

revision = "0015_block_key_log_by_writer"
down_revision = None
branch_labels = ("block_key_log_by_writer",)
depends_on = "0012_identity_change_log"

EVENTS = ("insert", "delete", "update")


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    for event in EVENTS:
        op.execute(f"DROP TRIGGER IF EXISTS identity_change_identity_block_key_{event}"
                   + (" ON identity_block_key" if postgres else ""))
    if postgres:
        op.execute("DROP FUNCTION IF EXISTS identity_change_identity_block_key()")


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    if postgres:
        op.execute("""
CREATE FUNCTION identity_change_identity_block_key() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN INSERT INTO identity_change (kind, ref, other, xid) SELECT 'r', ref, other,
        pg_current_xact_id()::text::bigint FROM (SELECT DISTINCT ref_key AS ref, NULL AS other FROM new_rows) AS changed;
    ELSIF TG_OP = 'DELETE' THEN INSERT INTO identity_change (kind, ref, other, xid) SELECT 'r', ref, other,
        pg_current_xact_id()::text::bigint FROM (SELECT DISTINCT ref_key AS ref, NULL AS other FROM old_rows) AS changed;
    ELSE INSERT INTO identity_change (kind, ref, other, xid) SELECT 'r', ref, other,
        pg_current_xact_id()::text::bigint FROM (SELECT ref_key AS ref, NULL AS other FROM new_rows
        UNION SELECT ref_key AS ref, NULL AS other FROM old_rows) AS changed;
    END IF;
    RETURN NULL;
END $$""")
        for event, refs in (("INSERT", "NEW TABLE AS new_rows"), ("DELETE", "OLD TABLE AS old_rows"),
                            ("UPDATE", "OLD TABLE AS old_rows NEW TABLE AS new_rows")):
            op.execute(f"CREATE TRIGGER identity_change_identity_block_key_{event.lower()} AFTER {event} ON "
                       f"identity_block_key REFERENCING {refs} FOR EACH STATEMENT EXECUTE FUNCTION "
                       "identity_change_identity_block_key()")
        return
    for event, rows in (("INSERT", ("NEW",)), ("DELETE", ("OLD",)), ("UPDATE", ("OLD", "NEW"))):
        body = " ".join(f"INSERT INTO identity_change (kind, ref, other) SELECT 'r', {row}.ref_key, NULL;"
                        for row in rows)
        op.execute(f"CREATE TRIGGER identity_change_identity_block_key_{event.lower()} AFTER {event} ON "
                   f"identity_block_key BEGIN {body} END")
