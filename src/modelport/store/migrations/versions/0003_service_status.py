"""Services record what was observed (replicas, reason) next to what is desired.

Revision ID: 0003_service_status
Revises: 0002_compute_targets
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_service_status"
down_revision = "0002_compute_targets"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("services", sa.Column("status", sa.JSON, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("services") as batch:
        batch.drop_column("status")
