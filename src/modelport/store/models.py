"""The workspace store's tables (SQLAlchemy 2 declarative).

The schema itself is owned by the alembic revisions in ``migrations/versions``; these
classes must describe the schema at head (a test compares the two).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import JSON, BigInteger, DateTime, ForeignKey, ForeignKeyConstraint, Integer, String, TypeDecorator
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every database (SQLite keeps no offset, so store naive UTC there)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        value = value.astimezone(timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime, dict[str, Any]: JSON}


class Model(Base):
    """One registered version of a model; its files are an artifact (a blob or a folder manifest)."""

    __tablename__ = "models"

    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    description: Mapped[str | None] = mapped_column(String)
    tags: Mapped[dict[str, Any]]
    properties: Mapped[dict[str, Any]]
    framework: Mapped[str | None] = mapped_column(String)
    framework_version: Mapped[str | None] = mapped_column(String)
    artifact_sha256: Mapped[str] = mapped_column(String(64), index=True)
    artifact_kind: Mapped[str] = mapped_column(String(16))
    artifact_name: Mapped[str] = mapped_column(String)
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Environment(Base):
    """One version of an environment: the Azure ML Environment JSON object and its content hash."""

    __tablename__ = "environments"

    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    version: Mapped[str] = mapped_column(String(32), primary_key=True)
    spec: Mapped[dict[str, Any]]
    spec_hash: Mapped[str] = mapped_column(String)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Snapshot(Base):
    """A packaged source folder, named by the sha256 of its manifest."""

    __tablename__ = "snapshots"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    file_count: Mapped[int]
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ComputeTarget(Base):
    """A named place to deploy to (local or a Kubernetes cluster) and its settings."""

    __tablename__ = "compute_targets"

    name: Mapped[str] = mapped_column(String, primary_key=True)
    type: Mapped[str] = mapped_column(String)
    config: Mapped[dict[str, Any]]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Service(Base):
    """A deployed web service: desired ``config`` and observed ``state``/``status``."""

    __tablename__ = "services"

    name: Mapped[str] = mapped_column(String, primary_key=True)
    state: Mapped[str] = mapped_column(String)
    config: Mapped[dict[str, Any]]
    status: Mapped[dict[str, Any] | None] = mapped_column(nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class ServiceModel(Base):
    """A model version a service uses; the model cannot be deleted while this row exists."""

    __tablename__ = "service_models"
    __table_args__ = (
        ForeignKeyConstraint(["model_name", "model_version"], ["models.name", "models.version"],
                             name="fk_service_models_model", ondelete="RESTRICT"),
    )

    service_name: Mapped[str] = mapped_column(
        String, ForeignKey("services.name", name="fk_service_models_service", ondelete="CASCADE"), primary_key=True)
    model_name: Mapped[str] = mapped_column(String(255), primary_key=True)
    model_version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
