"""Initial schema: models, environments, snapshots, services and the models they use.

Revision ID: 0001_initial
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001_initial"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "models",
        sa.Column("name", sa.String(255), primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("description", sa.String, nullable=True),
        sa.Column("tags", sa.JSON, nullable=False),
        sa.Column("properties", sa.JSON, nullable=False),
        sa.Column("framework", sa.String, nullable=True),
        sa.Column("framework_version", sa.String, nullable=True),
        sa.Column("artifact_sha256", sa.String(64), nullable=False),
        sa.Column("artifact_kind", sa.String(16), nullable=False),
        sa.Column("artifact_name", sa.String, nullable=False),
        sa.Column("size_bytes", sa.BigInteger, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_models_artifact_sha256", "models", ["artifact_sha256"])
    op.create_table(
        "environments",
        sa.Column("name", sa.String(255), primary_key=True),
        sa.Column("version", sa.String(32), primary_key=True),
        sa.Column("spec", sa.JSON, nullable=False),
        sa.Column("spec_hash", sa.String, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "snapshots",
        sa.Column("sha256", sa.String(64), primary_key=True),
        sa.Column("file_count", sa.Integer, nullable=False),
        sa.Column("size_bytes", sa.BigInteger, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "services",
        sa.Column("name", sa.String, primary_key=True),
        sa.Column("state", sa.String, nullable=False),
        sa.Column("config", sa.JSON, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "service_models",
        sa.Column("service_name", sa.String, primary_key=True),
        sa.Column("model_name", sa.String(255), primary_key=True),
        sa.Column("model_version", sa.Integer, primary_key=True, autoincrement=False),
        sa.ForeignKeyConstraint(["service_name"], ["services.name"], name="fk_service_models_service",
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["model_name", "model_version"], ["models.name", "models.version"],
                                name="fk_service_models_model", ondelete="RESTRICT"),
    )


def downgrade() -> None:
    for table in ("service_models", "services", "snapshots", "environments", "models"):
        op.drop_table(table)
