"""Compute targets: named places to deploy to.

Revision ID: 0002_compute_targets
Revises: 0001_initial
"""

import sqlalchemy as sa
from alembic import op

revision = "0002_compute_targets"
down_revision = "0001_initial"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "compute_targets",
        sa.Column("name", sa.String, primary_key=True),
        sa.Column("type", sa.String, nullable=False),
        sa.Column("config", sa.JSON, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("compute_targets")
