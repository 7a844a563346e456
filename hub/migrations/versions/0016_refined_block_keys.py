"""identity_block_key: every refined level of a splitting rule's keys, filed beside the key

A blocking rule that splits its large blocks (`identity_index.blocking.BlockingRule.refine`:
"smith, born 2015" → "… in March" → "… on the 14th") now files each record under every level
too, as rule name + "#" per level (`identity_index.blocking.filed_keys`). A bulk link then counts
the records under its new records' keys and reads only the blocks it will compare
(`context_blocks`), not every record under a coarse key: at 1,000,000 people 30,153 new records
read all 297,322 linked ones as context, because "SM0|2015" holds thousands.

The upgrade files the records already stored under their refined levels (from their stored
features, for the rules their stored keys name); the downgrade removes those rows.

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
    from identity_index.blocking import RULES, refined_keys
    from identity_index.features import PersonFeatures

    bind = op.get_bind()
    splitting = {name: rule for name, rule in RULES.items() if rule.refine}
    keys = sa.table("identity_block_key", sa.column("rule", sa.String), sa.column("key", sa.String),
                    sa.column("ref_key", sa.String))
    records = sa.table("identity_record", sa.column("ref_key", sa.String), sa.column("features", sa.Text))
    after = ""
    while True:
        refs = list(bind.execute(sa.select(records.c.ref_key).where(records.c.ref_key > after)
                                 .order_by(records.c.ref_key).limit(BATCH)).scalars())
        if not refs:
            return
        after = refs[-1]
        filed: dict[str, set[tuple[str, str]]] = {}
        for ref, rule, key in bind.execute(sa.select(keys.c.ref_key, keys.c.rule, keys.c.key)
                                           .where(keys.c.ref_key.in_(refs))):
            filed.setdefault(ref, set()).add((rule, key))
        rows = []
        for ref, stored in bind.execute(sa.select(records.c.ref_key, sa.cast(records.c.features, sa.Text))
                                        .where(records.c.ref_key.in_(refs))):
            have = filed.get(ref, set())
            coarse = [(rule, key) for rule, key in have if rule in splitting]
            if not coarse:
                continue
            f = PersonFeatures.from_json(json.loads(stored))
            rows += [{"rule": r, "key": k[:200], "ref_key": ref} for rule, key in coarse
                     for r, k in refined_keys(splitting[rule], key, f)[1:] if (r, k[:200]) not in have]
        if rows:
            bind.execute(keys.insert(), rows)


def downgrade() -> None:
    op.execute("DELETE FROM identity_block_key WHERE rule LIKE '%#'")
