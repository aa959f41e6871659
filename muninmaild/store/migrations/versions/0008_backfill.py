"""the backfill window: where a mailbox's first sync ended, and how much it left out

Revision ID: 0008
Revises: 0007

`mailbox_state.backfill_uid` is the highest UID the first sync of a mailbox (or the one after a
UIDVALIDITY change) weighs against the account's backfill window, so a first sync cut short
goes on with the same rule. `backfill_skipped` counts the mail that window left out and that
is not requeued since, kept in the transactions that change it, so `status` reads it cheaply.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"


def upgrade() -> None:
    with op.batch_alter_table("mailbox_state", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("backfill_uid", sa.BigInteger(), nullable=False, server_default="0")
        )
        batch_op.add_column(
            sa.Column("backfill_skipped", sa.Integer(), nullable=False, server_default="0")
        )


def downgrade() -> None:
    with op.batch_alter_table("mailbox_state", schema=None) as batch_op:
        batch_op.drop_column("backfill_skipped")
        batch_op.drop_column("backfill_uid")
