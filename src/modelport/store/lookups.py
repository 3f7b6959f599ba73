"""Row lookups shared by the store's operations, with the one-line errors a user sees when nothing matches."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..errors import NotFound
from .checks import listing, required_version
from .models import Model

MAX_INTEGER = 2**63 - 1  # the largest whole number SQLite and PostgreSQL columns hold; no version is above it


def model_row(session: Session, name: str, version: int | None) -> Model:
    """The row of model ``name`` at ``version`` (None: the latest); NotFound naming the versions there are."""
    if version is None:
        row = session.scalars(select(Model).where(Model.name == name).order_by(Model.version.desc()).limit(1)).first()
    else:
        row = session.get(Model, (name, version)) if required_version(version) <= MAX_INTEGER else None
    if row is not None:
        return row
    versions = session.scalars(select(Model.version).where(Model.name == name).order_by(Model.version)).all()
    if not versions:
        raise NotFound(f"model '{name}' is not registered; register it first or check the name")
    raise NotFound(f"model '{name}' has no version {version}; versions: {listing(versions)}")
