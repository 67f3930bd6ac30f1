"""indexes for looking jobs up by spec hash, result hash (theirs or a replica's) and posting transaction

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 21:10:00

The dashboard's search finds a job by any of its digests or by the transaction that posted it;
without these, each such search reads the whole jobs table.
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.create_index("ix_jobs_spec_hash", ["spec_hash"], unique=False)
        batch_op.create_index("ix_jobs_result_hash", ["result_hash"], unique=False)
        batch_op.create_index("ix_jobs_posted_tx", ["posted_tx"], unique=False)
    with op.batch_alter_table("assignments", schema=None) as batch_op:
        batch_op.create_index("ix_assignments_result_hash", ["result_hash"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("assignments", schema=None) as batch_op:
        batch_op.drop_index("ix_assignments_result_hash")
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_index("ix_jobs_posted_tx")
        batch_op.drop_index("ix_jobs_result_hash")
        batch_op.drop_index("ix_jobs_spec_hash")
