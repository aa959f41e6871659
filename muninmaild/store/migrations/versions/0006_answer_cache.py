"""answers kept for repeated requests; where each result came from

Revision ID: 0006
Revises: 0005

`answer_cache` holds model answers by the hash of the request that produced them, shared by
every instance. `results.origin` says whether an answer came from the model, the cache, or the
offline rules (`ai.skip`), `origin_note` why, and `cache_key` which cached answer it is (a
requeue drops it). `results.created_at` gets an index: `status` counts today's answers.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"


def upgrade() -> None:
    op.create_table(
        "answer_cache",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("answer", sa.Text(), nullable=False),
        sa.Column("model", sa.String(length=128), nullable=False),
        sa.Column("tokens_in", sa.Integer(), nullable=False),
        sa.Column("tokens_out", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    op.create_index("ix_answer_cache_created_at", "answer_cache", ["created_at"], unique=False)
    with op.batch_alter_table("results", schema=None) as batch_op:
        batch_op.add_column(sa.Column("origin", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("origin_note", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("cache_key", sa.String(length=64), nullable=True))
    op.create_index("ix_results_created_at", "results", ["created_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_results_created_at", table_name="results")
    with op.batch_alter_table("results", schema=None) as batch_op:
        batch_op.drop_column("cache_key")
        batch_op.drop_column("origin_note")
        batch_op.drop_column("origin")
    op.drop_index("ix_answer_cache_created_at", table_name="answer_cache")
    op.drop_table("answer_cache")
