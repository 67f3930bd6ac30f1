"""sortition: a job's seed, each seat holder's ticket

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 19:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("jobs", sa.Column("seed", sa.BigInteger(), nullable=True))
    op.add_column("assignments", sa.Column("ticket", sa.String(length=18), nullable=True))


def downgrade() -> None:
    op.drop_column("assignments", "ticket")
    op.drop_column("jobs", "seed")
