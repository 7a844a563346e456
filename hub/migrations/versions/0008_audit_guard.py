"""audit guard: the database itself refuses UPDATE, DELETE and TRUNCATE on audit_log

The hash chain (`hub audit verify`) detects an edited, removed or reordered entry after the
fact; these triggers stop the edit in the first place for anyone without the right to drop
them. Nothing in the hub updates or deletes audit rows (only `audit_head` moves).

Revision ID: 0008_audit_guard
Depends on: 0004_access (the audit_log table)
"""
from alembic import op

revision = "0008_audit_guard"
down_revision = None
branch_labels = ("audit_guard",)
depends_on = "0004_access"

_PG = [
    """CREATE OR REPLACE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_LEVEL = 'ROW' THEN
            RAISE EXCEPTION 'audit_log is append-only: % of entry % refused', TG_OP, OLD.seq
                USING ERRCODE = 'insufficient_privilege';
        END IF;
        RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
    END $$""",
    """CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
       FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()""",
    """CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
       FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only()""",
]
# SQLite has no TRUNCATE (DELETE without WHERE fires the DELETE trigger for every row).
_SQLITE = [
    """CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
       BEGIN SELECT RAISE(ABORT, 'audit_log is append-only: UPDATE refused'); END""",
    """CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
       BEGIN SELECT RAISE(ABORT, 'audit_log is append-only: DELETE refused'); END""",
]


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    for statement in _PG if dialect == "postgresql" else _SQLITE if dialect == "sqlite" else []:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_truncate ON audit_log")
        op.execute("DROP TRIGGER IF EXISTS audit_log_append_only ON audit_log")
        op.execute("DROP FUNCTION IF EXISTS audit_log_append_only()")
    else:
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_delete")
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_update")
