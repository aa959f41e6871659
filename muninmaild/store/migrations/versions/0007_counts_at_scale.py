"""queue counts kept by triggers; indexes for lists, retention and the last error; boot ids

Revision ID: 0007
Revises: 0006

`counters` holds the number of rows of each `processing_status` and the token totals, kept by
triggers in the transaction that changes a row, whatever runs it (the daemon, a person's SQL),
so `status` reads six rows instead of counting the table. SQLite has one writer at a time and
updates `counters` directly; on PostgreSQL many instances write at once, so a statement-level
trigger appends one row per statement and status to `counter_deltas` (never a hot row to wait
for), which readers add in and the heartbeat folds into `counters`.

A later migration that recreates `emails` or `token_usage` on SQLite (`batch_alter_table`)
drops their triggers with the old table and must create them again (`create_triggers`).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"

STATUSES = ("pending", "processing", "completed", "failed")
TOKENS = ("tokens_in", "tokens_out")

_SQLITE_TRIGGERS = [
    """CREATE TRIGGER emails_count_insert AFTER INSERT ON emails BEGIN
    UPDATE counters SET value = value + 1 WHERE name = NEW.processing_status; END""",
    """CREATE TRIGGER emails_count_delete AFTER DELETE ON emails BEGIN
    UPDATE counters SET value = value - 1 WHERE name = OLD.processing_status; END""",
    """CREATE TRIGGER emails_count_update AFTER UPDATE OF processing_status ON emails
    WHEN OLD.processing_status <> NEW.processing_status BEGIN
    UPDATE counters SET value = value - 1 WHERE name = OLD.processing_status;
    UPDATE counters SET value = value + 1 WHERE name = NEW.processing_status; END""",
    """CREATE TRIGGER token_usage_count_insert AFTER INSERT ON token_usage BEGIN
    UPDATE counters SET value = value + NEW.tokens_in WHERE name = 'tokens_in';
    UPDATE counters SET value = value + NEW.tokens_out WHERE name = 'tokens_out'; END""",
    """CREATE TRIGGER token_usage_count_delete AFTER DELETE ON token_usage BEGIN
    UPDATE counters SET value = value - OLD.tokens_in WHERE name = 'tokens_in';
    UPDATE counters SET value = value - OLD.tokens_out WHERE name = 'tokens_out'; END""",
]

# (trigger, table, event, the rows it adds: name, delta) for PostgreSQL.
_EMAILS_NEW = "SELECT processing_status, 1 FROM new_rows"
_EMAILS_OLD = "SELECT processing_status, -1 FROM old_rows"
_TOKENS_NEW = (
    "SELECT 'tokens_in', tokens_in FROM new_rows"
    " UNION ALL SELECT 'tokens_out', tokens_out FROM new_rows"
)
_TOKENS_OLD = (
    "SELECT 'tokens_in', -tokens_in FROM old_rows"
    " UNION ALL SELECT 'tokens_out', -tokens_out FROM old_rows"
)
_PG_TRIGGERS = [
    ("emails_count_insert", "emails", "INSERT", _EMAILS_NEW),
    ("emails_count_delete", "emails", "DELETE", _EMAILS_OLD),
    ("emails_count_update", "emails", "UPDATE", f"{_EMAILS_OLD} UNION ALL {_EMAILS_NEW}"),
    ("token_usage_count_insert", "token_usage", "INSERT", _TOKENS_NEW),
    ("token_usage_count_delete", "token_usage", "DELETE", _TOKENS_OLD),
]


def _pg_trigger(name: str, table: str, event: str, rows: str) -> list[str]:
    refs = {"INSERT": "NEW TABLE AS new_rows", "DELETE": "OLD TABLE AS old_rows"}
    referencing = refs.get(event, "OLD TABLE AS old_rows NEW TABLE AS new_rows")
    return [
        f"""CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
        INSERT INTO counter_deltas (name, delta)
        SELECT n, SUM(d) FROM ({rows}) AS c (n, d) GROUP BY n HAVING SUM(d) <> 0;
        RETURN NULL; END $$""",
        f"""CREATE TRIGGER {name} AFTER {event} ON {table} REFERENCING {referencing}
        FOR EACH STATEMENT EXECUTE FUNCTION {name}()""",
    ]


def create_triggers(dialect: str) -> None:
    if dialect == "postgresql":
        for spec in _PG_TRIGGERS:
            for statement in _pg_trigger(*spec):
                op.execute(statement)
    else:
        for statement in _SQLITE_TRIGGERS:
            op.execute(statement)


def _counters() -> None:
    op.create_table(
        "counters",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "counter_deltas",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("delta", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    # The counts as they stand, taken under the migration's lock (the same transaction).
    for status in STATUSES:
        op.execute(
            "INSERT INTO counters (name, value) SELECT "
            f"'{status}', COUNT(*) FROM emails WHERE processing_status = '{status}'"
        )
    for column in TOKENS:
        op.execute(
            f"INSERT INTO counters (name, value) SELECT '{column}', "
            f"COALESCE(SUM({column}), 0) FROM token_usage"
        )
    create_triggers(op.get_bind().dialect.name)


def _indexes() -> None:
    active = sa.text("processing_status <> 'completed'")
    with op.batch_alter_table("emails", schema=None) as batch_op:
        batch_op.create_index(
            "ix_emails_active",
            ["processing_status", "id"],
            sqlite_where=active,
            postgresql_where=active,
        )
        batch_op.create_index("ix_emails_created_at", ["created_at"])
        done = sa.text("processing_status = 'completed'")
        batch_op.create_index(
            "ix_emails_completed_at", ["completed_at"], sqlite_where=done, postgresql_where=done
        )
        erred = sa.text("last_error IS NOT NULL")
        batch_op.create_index(
            "ix_emails_last_error",
            ["updated_at", "id"],
            sqlite_where=erred,
            postgresql_where=erred,
        )
    op.create_index("ix_todos_open", "todos", ["done", "due_date"])


def upgrade() -> None:
    _indexes()
    with op.batch_alter_table("instances", schema=None) as batch_op:
        batch_op.add_column(sa.Column("boot_id", sa.String(length=64), nullable=True))
    _counters()


def downgrade() -> None:
    for name, table, _event, _rows in _PG_TRIGGERS:
        if op.get_bind().dialect.name == "postgresql":
            op.execute(f"DROP TRIGGER {name} ON {table}")
            op.execute(f"DROP FUNCTION {name}()")
        else:
            op.execute(f"DROP TRIGGER {name}")
    op.drop_table("counter_deltas")
    op.drop_table("counters")
    with op.batch_alter_table("instances", schema=None) as batch_op:
        batch_op.drop_column("boot_id")
    op.drop_index("ix_todos_open", table_name="todos")
    with op.batch_alter_table("emails", schema=None) as batch_op:
        for index in ("ix_emails_last_error", "ix_emails_completed_at", "ix_emails_created_at"):
            batch_op.drop_index(index)
        batch_op.drop_index("ix_emails_active")
