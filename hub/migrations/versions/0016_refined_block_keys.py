"""identity_block_key.detail: the values that refine a record's key under a splitting rule

A blocking rule that splits its large blocks (`identity_index.blocking.BlockingRule.refine`:
"smith, born 2015" → "… in March" → "… on the 14th") now files, beside each key, the values
that refine it ("03#14"; "" under other rules; `identity_index.blocking.filed_keys`), and the
(rule, key) index becomes (rule, key, detail). A bulk link then counts the stored records by key
and detail, works out the refined block each new record is compared within and reads only those
blocks (`context_blocks`): at 1,000,000 people 30,153 new records read all 297,322 linked ones as
context, because "SM0|2015" holds thousands. A column, not a row per refined level: the second
doubled the rows a link writes (~14 a record instead of ~7), and their index pages are most of
a bulk write's cost on a large store.

The upgrade sets the detail of the keys already stored from their records' stored features; the
downgrade drops the column and restores the (rule, key) index.

Revision ID: 0016_refined_block_keys
Depends on: 0003_identity (identity tables)
"""
import json

import sqlalchemy as sa
from alembic import op

revision = "0016_refined_block_keys"
down_revision = None
branch_labels = ("refined_block_keys",)
depends_on = "0003_identity"

BATCH = 5000


def upgrade() -> None:
    op.add_column("identity_block_key", sa.Column("detail", sa.String(60), nullable=False, server_default=""))
    op.create_index("ix_identity_block_key_rule_key_detail", "identity_block_key", ["rule", "key", "detail"])
    op.drop_index("ix_identity_block_key_rule_key", table_name="identity_block_key")
    _fill_details(op.get_bind())


def _fill_details(bind: sa.Connection) -> None:
    from identity_index.blocking import RULES
    from identity_index.features import PersonFeatures

    refining = {name: rule.refine for name, rule in RULES.items() if rule.refine}
    keys = sa.table("identity_block_key", sa.column("id", sa.Integer), sa.column("rule", sa.String),
                    sa.column("ref_key", sa.String), sa.column("detail", sa.String))
    records = sa.table("identity_record", sa.column("ref_key", sa.String), sa.column("features", sa.Text))
    update = keys.update().where(keys.c.id == sa.bindparam("b_id")).values(detail=sa.bindparam("b_detail"))
    after = ""
    while True:
        rows = bind.execute(sa.select(records.c.ref_key, sa.cast(records.c.features, sa.Text))
                            .where(records.c.ref_key > after).order_by(records.c.ref_key).limit(BATCH)).all()
        if not rows:
            return
        after = rows[-1][0]
        feats = {ref: PersonFeatures.from_json(json.loads(text)) for ref, text in rows}
        changes = [{"b_id": row_id, "b_detail": "#".join(refine(feats[ref]) for refine in refining[rule])[:60]}
                   for row_id, rule, ref in bind.execute(sa.select(keys.c.id, keys.c.rule, keys.c.ref_key).where(
                       keys.c.ref_key.in_(list(feats)), keys.c.rule.in_(list(refining))))]
        if changes:
            bind.execute(update, changes)


def downgrade() -> None:
    op.create_index("ix_identity_block_key_rule_key", "identity_block_key", ["rule", "key"])
    op.drop_index("ix_identity_block_key_rule_key_detail", table_name="identity_block_key")
    op.drop_column("identity_block_key", "detail")
