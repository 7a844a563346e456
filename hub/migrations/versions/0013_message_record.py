"""message_record: which source records each record-batch message carried

An ingest announces a batch of records in one `source.record.batch` message (one per adapter
batch, not one per record), so the journal's `ref_key` can no longer name the record a message
carried. `message_record` does, one narrow row per record, written with the outbox row: the
console's "messages of this source record / of this person" finds batch messages through it.

Revision ID: 0013_message_record
Depends on: 0007_messages (the message journal)
"""
from alembic import op
import sqlalchemy as sa

revision = "0013_message_record"
down_revision = None
branch_labels = ("message_record",)
depends_on = "0007_messages"


def upgrade() -> None:
    op.create_table(
        "message_record",
        sa.Column("ref_key", sa.String(300), primary_key=True),
        sa.Column("message_id", sa.String(36), primary_key=True),
    )


def downgrade() -> None:
    op.drop_table("message_record")
