"""live mail first: a message that arrives after its mailbox caught up is claimed before backlog

Revision ID: 0009
Revises: 0008

`emails.live` is set at ingest for mail that arrives after its mailbox's first sync was done;
the claim orders by it, then newest first, served by the partial index `ix_emails_live_claim`
(its third column lets the claim test a row's due time from the index alone).
`mailbox_state.caught_up_at` is when a sync of the mailbox last ran to its end (NULL: never).
Plain ADD COLUMN, no table rebuild: a big `emails` table is not copied on SQLite.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"

CLAIMABLE = sa.text("processing_status IN ('pending', 'processing')")


def upgrade() -> None:
    op.add_column(
        "emails", sa.Column("live", sa.Boolean(), nullable=False, server_default=sa.false())
    )
    op.create_index(
        "ix_emails_live_claim",
        "emails",
        ["live", "id", "next_attempt_at"],
        unique=False,
        sqlite_where=CLAIMABLE,
        postgresql_where=CLAIMABLE,
    )
    op.add_column("mailbox_state", sa.Column("caught_up_at", sa.DateTime(timezone=True)))


def downgrade() -> None:
    with op.batch_alter_table("mailbox_state", schema=None) as batch_op:
        batch_op.drop_column("caught_up_at")
    op.drop_index(
        "ix_emails_live_claim",
        table_name="emails",
        sqlite_where=CLAIMABLE,
        postgresql_where=CLAIMABLE,
    )
    with op.batch_alter_table("emails", schema=None) as batch_op:
        batch_op.drop_column("live")
