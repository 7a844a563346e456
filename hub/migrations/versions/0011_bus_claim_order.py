"""embedded bus claims in id order from an index: (queue, status, id) replaces (queue, status, available_at, id)

The claim is `queue = ? AND status = 'ready' AND available_at <= now ORDER BY id LIMIT n`.
With `available_at` before `id` in the index the range on `available_at` left the rows out of
id order, so SQLite (and PostgreSQL) sorted every ready message of the queue at each claim:
20 ms a claim at 108,000 queued messages, O(depth) per batch and quadratic over an initial load.
With (queue, status, id) the claim walks the index in id order and stops after n rows
(0.15 ms at the same depth); `available_at` is checked on those rows (only retried messages
wait, and they are few). The lease-expiry update and the queue figures use the same prefix.

Revision ID: 0011_bus_claim_order
Depends on: 0001_foundation (the bus_message table)
"""
from alembic import op

revision = "0011_bus_claim_order"
down_revision = None
branch_labels = ("bus_claim_order",)
depends_on = "0001_foundation"


def upgrade() -> None:
    op.create_index("ix_bus_message_ready", "bus_message", ["queue", "status", "id"])
    op.drop_index("ix_bus_message_claim", table_name="bus_message")


def downgrade() -> None:
    op.create_index("ix_bus_message_claim", "bus_message", ["queue", "status", "available_at", "id"])
    op.drop_index("ix_bus_message_ready", table_name="bus_message")
