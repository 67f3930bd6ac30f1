"""event stream sequence numbers, reorg notices, transactions with their gas

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01 20:30:00

Events indexed before this revision keep their chain position as their sequence number: positions
only ever grew while no reorg had been recorded, so they are valid stream ids, and a client that
resumes with an old position-based Last-Event-ID continues exactly where it was.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("chain_state", schema=None) as batch_op:
        batch_op.add_column(sa.Column("next_seq", sa.BigInteger(), nullable=False, server_default="1"))
    op.execute("UPDATE chain_state SET next_seq = (SELECT COALESCE(MAX(position), 0) + 1 FROM events)")

    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("seq", sa.BigInteger(), nullable=True))
    op.execute("UPDATE events SET seq = position")
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.alter_column("seq", existing_type=sa.BigInteger(), nullable=False)
        batch_op.create_index("ix_events_seq", ["seq"], unique=True)

    op.create_table(
        "transactions",
        sa.Column("tx_hash", sa.String(length=66), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("sender", sa.String(length=42), nullable=False),
        sa.Column("gas_used", sa.BigInteger(), nullable=False),
        sa.Column("effective_gas_price", sa.String(length=80), nullable=False),
        sa.PrimaryKeyConstraint("tx_hash"),
    )
    with op.batch_alter_table("transactions", schema=None) as batch_op:
        batch_op.create_index("ix_transactions_block", ["block_number"], unique=False)

    op.create_table(
        "reorgs",
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("ancestor_block", sa.BigInteger(), nullable=False),
        sa.Column("ancestor_hash", sa.String(length=66), nullable=False),
        sa.Column("replaced_to_block", sa.BigInteger(), nullable=False),
        sa.Column("events_removed", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("seq"),
    )


def downgrade() -> None:
    op.drop_table("reorgs")
    with op.batch_alter_table("transactions", schema=None) as batch_op:
        batch_op.drop_index("ix_transactions_block")
    op.drop_table("transactions")
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_index("ix_events_seq")
        batch_op.drop_column("seq")
    with op.batch_alter_table("chain_state", schema=None) as batch_op:
        batch_op.drop_column("next_seq")
