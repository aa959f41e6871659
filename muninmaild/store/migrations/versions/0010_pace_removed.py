"""the backlog's pace keeps the answers a requeue removed

Revision ID: 0010
Revises: 0009

The pace in `status` counts the answers stored over the last minutes (`results.created_at`). A
requeue deletes the results of what it sends back to the model, so after requeueing mail just
answered the pace read low until those minutes passed. `pace_removed` keeps, per second, how
many answers of the last hour a requeue removed; the pace adds them back. A handful of rows.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"


def upgrade() -> None:
    op.create_table(
        "pace_removed",
        sa.Column("second", sa.DateTime(timezone=True), primary_key=True),
        sa.Column("answers", sa.Integer(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("pace_removed")
