"""what the model was shown of each message; usage by time, for today's figures

Revision ID: 0005
Revises: 0004

`results.sent_body` says whether the message's body went to the model (false for an account with
`send_body = false`); NULL for results stored before it was recorded. `token_usage.created_at`
gets an index: `status` adds up today's requests and tokens.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"


def upgrade() -> None:
    with op.batch_alter_table("results", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sent_body", sa.Boolean(), nullable=True))
    op.create_index("ix_token_usage_created_at", "token_usage", ["created_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_token_usage_created_at", table_name="token_usage")
    with op.batch_alter_table("results", schema=None) as batch_op:
        batch_op.drop_column("sent_body")
