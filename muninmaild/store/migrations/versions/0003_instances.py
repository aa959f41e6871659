"""instances of a shared database; claims without the status index; Maildir files unique

Revision ID: 0003
Revises: 0002

The index led by processing_status made SQLite sort every claim instead of walking the claim
index; status counts scan the table instead, which status pages can afford.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"


def upgrade() -> None:
    with op.batch_alter_table("emails", schema=None) as batch_op:
        batch_op.drop_index("ix_emails_status")
        batch_op.drop_index("ix_emails_source_key")
        batch_op.create_index(
            "uq_emails_source_key", ["account", "mailbox", "source_key"], unique=True
        )
    op.create_table(
        "instances",
        sa.Column("id", sa.String(length=128), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("version", sa.String(length=32), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("stopped_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )


def downgrade() -> None:
    op.drop_table("instances")
    with op.batch_alter_table("emails", schema=None) as batch_op:
        batch_op.create_index("ix_emails_status", ["processing_status"], unique=False)
        batch_op.drop_index("uq_emails_source_key")
        batch_op.create_index(
            "ix_emails_source_key", ["account", "mailbox", "source_key"], unique=False
        )
