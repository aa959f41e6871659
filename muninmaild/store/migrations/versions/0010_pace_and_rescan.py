"""the backlog's pace keeps the answers a requeue removed; a rescan finds mail without Message-ID

Revision ID: 0010
Revises: 0009

The pace in `status` counts the answers stored over the last minutes (`results.created_at`). A
requeue deletes the results of what it sends back to the model, so after requeueing mail just
answered the pace read low until those minutes passed. `pace_removed` keeps, per second, how
many answers of the last hour a requeue removed; the pace adds them back (a row a second at
most, pruned as it goes).

A UIDVALIDITY rescan asks about a batch of headers at a time; a message without a Message-ID is
looked for by its size, through the partial index `ix_emails_without_message_id`, which holds
only such rows (without it, every batch would walk the whole mailbox).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

WITHOUT_ID = sa.text("message_id IS NULL")

revision = "0010"
down_revision = "0009"


def upgrade() -> None:
    op.create_table(
        "pace_removed",
        sa.Column("second", sa.DateTime(timezone=True), primary_key=True),
        sa.Column("answers", sa.Integer(), nullable=False),
    )
    op.create_index(
        "ix_emails_without_message_id",
        "emails",
        ["account", "mailbox", "size"],
        unique=False,
        sqlite_where=WITHOUT_ID,
        postgresql_where=WITHOUT_ID,
    )


def downgrade() -> None:
    op.drop_index(
        "ix_emails_without_message_id",
        table_name="emails",
        sqlite_where=WITHOUT_ID,
        postgresql_where=WITHOUT_ID,
    )
    op.drop_table("pace_removed")
