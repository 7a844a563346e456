"""messages: the journal remembers which source record a message carried

Revision ID: 0007_messages
Revises: 0001_foundation
"""
from alembic import op
import sqlalchemy as sa

revision = "0007_messages"
down_revision = "0001_foundation"
branch_labels = ("messages",)
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("message_journal", schema=None) as batch_op:
        batch_op.add_column(sa.Column("ref_key", sa.String(length=300), nullable=True))
        batch_op.create_index("ix_message_journal_ref_key", ["ref_key"], unique=False)
        batch_op.create_index("ix_message_journal_event_at", ["event", "at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("message_journal", schema=None) as batch_op:
        batch_op.drop_index("ix_message_journal_event_at")
        batch_op.drop_index("ix_message_journal_ref_key")
        batch_op.drop_column("ref_key")
