"""fetch leases: one fetcher per mailbox across instances

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    op.create_table(
        "fetch_leases",
        sa.Column("account", sa.String(length=64), nullable=False),
        sa.Column("mailbox", sa.String(length=255), nullable=False),
        sa.Column("holder", sa.String(length=128), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("account", "mailbox"),
    )


def downgrade() -> None:
    op.drop_table("fetch_leases")
