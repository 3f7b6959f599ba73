"""The workspace store: one SQLite file (the default) or a PostgreSQL database shared by a team.

``Store(url)`` opens the database, migrates it to the schema this code knows and offers the
operations the control plane needs. Each operation is one transaction; several processes
(CLI calls, the API server) may write at once: on SQLite every write transaction takes the
write lock up front (``BEGIN IMMEDIATE``, waiting up to 30 s), and where two writers can
still race for the same key (PostgreSQL) the loser's transaction is run again.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from sqlalchemy import Integer, and_, cast, delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from ..errors import Conflict, InvalidInput, NotFound
from ..spec.state import State
from .checks import (
    ENVIRONMENT_VERSION,
    check_artifact,
    check_count,
    check_name,
    check_sha256,
    conditions,
    listing,
    matches,
    required_version,
    text_map,
)
from .engine import create_store_engine, database_errors, migrate, normalize_url
from .lookups import model_row
from .models import ComputeTarget, Environment, Model, Service, ServiceModel, Snapshot
from .records import ComputeTargetRecord, EnvironmentRecord, ModelRecord, SnapshotRecord
from .services import ServiceOperations, replace_service_models

T = TypeVar("T")

WRITE_ATTEMPTS = 50
NEW_SERVICE_STATE = State.TRANSITIONING.value
_env_number = cast(Environment.version, Integer)


class Store(ServiceOperations):
    """The workspace database. Open with a SQLAlchemy URL: ``sqlite:///<path>`` or ``postgresql://...``."""

    def __init__(self, url: str):
        parsed = normalize_url(url)
        self.url = parsed.render_as_string(hide_password=True)
        self._engine = create_store_engine(parsed)
        self._writer = sessionmaker(self._engine, expire_on_commit=False)
        self._reader = sessionmaker(self._engine.execution_options(modelport_read=True), expire_on_commit=False)
        try:
            with database_errors(self.url):
                migrate(self._engine, self.url)
        except BaseException:
            self._engine.dispose()
            raise

    def close(self) -> None:
        """Close the database connections."""
        self._engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A write transaction: committed when the block ends, rolled back if it raises.

        It starts at once, so on SQLite it holds the write lock from the start (``BEGIN IMMEDIATE``).
        """
        with database_errors(self.url), self._writer() as session, session.begin():
            session.connection()
            yield session

    @contextmanager
    def _read(self) -> Iterator[Session]:
        """A read transaction (on SQLite it does not take the write lock)."""
        with database_errors(self.url), self._reader() as session, session.begin():
            yield session

    def _write(self, what: str, work: Callable[[Session], T]) -> T:
        """Run ``work`` in a write transaction, again when a concurrent writer took the same key first."""
        for attempt in range(WRITE_ATTEMPTS):
            try:
                with self.session() as session:
                    return work(session)
            except IntegrityError:
                time.sleep(random.uniform(0, 0.005 * (attempt + 1)))
        raise Conflict(f"could not {what}: other writers kept changing the same records; try again")

    # models

    def register_model(self, name: str, artifact_sha256: str, artifact_kind: str, artifact_name: str,
                       size_bytes: int, description: str | None = None, tags: dict[str, str] | None = None,
                       properties: dict[str, str] | None = None, framework: str | None = None,
                       framework_version: str | None = None) -> ModelRecord:
        """Register the next version of model ``name`` (1 for a new name)."""
        check_name("model", name)
        check_artifact(artifact_sha256, artifact_kind, artifact_name, size_bytes)
        tags = text_map("tag", tags)
        properties = text_map("property", properties)

        def insert(session: Session) -> ModelRecord:
            latest = session.scalar(select(func.max(Model.version)).where(Model.name == name)) or 0
            row = Model(name=name, version=latest + 1, description=description, tags=tags, properties=properties,
                        framework=framework, framework_version=framework_version, artifact_sha256=artifact_sha256,
                        artifact_kind=artifact_kind, artifact_name=artifact_name, size_bytes=size_bytes)
            session.add(row)
            session.flush()
            return ModelRecord.of(row)

        return self._write(f"register a new version of model '{name}'", insert)

    def get_model(self, name: str, version: int | None = None) -> ModelRecord:
        """One version of a model; the latest when ``version`` is None."""
        with self._read() as session:
            return ModelRecord.of(model_row(session, name, version))

    def list_models(self, name: str | None = None, tags: list | None = None, properties: list | None = None,
                    latest: bool = False) -> list[ModelRecord]:
        """Models by name, newest version first, filtered the way Azure ML's ``Model.list`` filters.

        ``tags`` and ``properties`` are lists whose items are a key (it must exist) or a
        ``[key, value]`` pair (it must have that value); a model must match every item.
        ``latest`` keeps only the newest version of each name (then the filters apply).
        """
        tag_filter = conditions("tag", tags)
        property_filter = conditions("property", properties)
        query = select(Model).order_by(Model.name, Model.version.desc())
        if name is not None:
            query = query.where(Model.name == name)
        if latest:
            newest = select(Model.name, func.max(Model.version).label("version")).group_by(Model.name).subquery()
            query = query.join(newest, and_(Model.name == newest.c.name, Model.version == newest.c.version))
        with self._read() as session:
            rows = session.scalars(query).all()
            return [ModelRecord.of(row) for row in rows
                    if matches(row.tags, tag_filter) and matches(row.properties, property_filter)]

    def add_model_tags(self, name: str, version: int, tags: dict[str, str]) -> ModelRecord:
        """Add or replace tags of a model version."""
        tags = text_map("tag", tags)
        with self.session() as session:
            row = model_row(session, name, required_version(version))
            row.tags = {**row.tags, **tags}
            session.flush()
            return ModelRecord.of(row)

    def remove_model_tags(self, name: str, version: int, keys: Iterable[str]) -> ModelRecord:
        """Remove tags by key; keys the model does not have are ignored."""
        keys = {keys} if isinstance(keys, str) else set(keys)
        with self.session() as session:
            row = model_row(session, name, required_version(version))
            row.tags = {key: value for key, value in row.tags.items() if key not in keys}
            session.flush()
            return ModelRecord.of(row)

    def add_model_properties(self, name: str, version: int, properties: dict[str, str]) -> ModelRecord:
        """Add properties; they are add-only, so giving an existing key another value is refused."""
        properties = text_map("property", properties)
        with self.session() as session:
            row = model_row(session, name, required_version(version))
            for key, value in properties.items():
                if row.properties.get(key, value) != value:
                    raise InvalidInput(f"property '{key}' of model '{name}' version {version} is already "
                                       f"'{row.properties[key]}' and properties cannot change; use a tag instead")
            row.properties = {**row.properties, **properties}
            session.flush()
            return ModelRecord.of(row)

    def delete_model(self, name: str, version: int) -> ModelRecord:
        """Delete a model version no service uses; return what was deleted (its artifact may be shared)."""
        version = required_version(version)

        def remove(session: Session) -> ModelRecord:
            row = model_row(session, name, version)
            services = session.scalars(select(ServiceModel.service_name).where(
                ServiceModel.model_name == name, ServiceModel.model_version == version)
                .order_by(ServiceModel.service_name)).all()
            if services:
                used_by = ", ".join(f"'{service}'" for service in services)
                raise Conflict(f"model '{name}' version {version} is used by service(s) {used_by}; "
                               "delete them or update them to another model version first")
            record = ModelRecord.of(row)
            session.delete(row)
            return record

        return self._write(f"delete model '{name}' version {version}", remove)

    def models_sharing_artifact(self, artifact_sha256: str) -> int:
        """How many model versions use this artifact (0: its blobs are no longer referenced by models)."""
        with self._read() as session:
            return session.scalar(select(func.count()).select_from(Model)
                                  .where(Model.artifact_sha256 == artifact_sha256)) or 0

    # environments

    def register_environment(self, name: str, spec: dict[str, Any], spec_hash: str,
                             version: str | None = None) -> EnvironmentRecord:
        """Register an environment (the Azure ML Environment JSON object, stored as given).

        Without ``version``: the latest version if its content is the same, else a new one.
        With ``version``: that version, which must not exist with different content.
        """
        check_name("environment", name)
        if not isinstance(spec, dict):
            raise InvalidInput(f"environment '{name}' must be a JSON object, not {type(spec).__name__}")
        if not isinstance(spec_hash, str) or not spec_hash:
            raise InvalidInput(f"environment '{name}' has no content hash; compute it from the spec")
        if version is not None and not (isinstance(version, str) and ENVIRONMENT_VERSION.match(version)):
            raise InvalidInput(f"environment version {version!r} is not a whole number such as '1' or '2'; "
                               "leave it out to get the next version")

        def insert(session: Session) -> EnvironmentRecord:
            if version is None:
                latest = _latest_environment(session, name)
                if latest is not None and latest.spec_hash == spec_hash:
                    return EnvironmentRecord.of(latest)
                new_version = str(int(latest.version) + 1) if latest is not None else "1"
            else:
                existing = session.get(Environment, (name, version))
                if existing is not None:
                    if existing.spec_hash == spec_hash:
                        return EnvironmentRecord.of(existing)
                    raise Conflict(f"environment '{name}' version {version} exists with different content; "
                                   "register without a version to get a new one")
                new_version = version
            row = Environment(name=name, version=new_version, spec=spec, spec_hash=spec_hash)
            session.add(row)
            session.flush()
            return EnvironmentRecord.of(row)

        return self._write(f"register environment '{name}'", insert)

    def get_environment(self, name: str, version: str | None = None) -> EnvironmentRecord:
        """One version of an environment; the latest when ``version`` is None."""
        with self._read() as session:
            if version is None:
                row = _latest_environment(session, name)
                if row is None:
                    raise NotFound(f"environment '{name}' is not registered; register it first or check the name")
                return EnvironmentRecord.of(row)
            row = session.get(Environment, (name, str(version)))
            if row is None:
                numbers = session.scalars(select(_env_number).where(Environment.name == name)
                                          .order_by(_env_number)).all()
                if not numbers:
                    raise NotFound(f"environment '{name}' is not registered; register it first or check the name")
                raise NotFound(f"environment '{name}' has no version {version}; versions: {listing(numbers)}")
            return EnvironmentRecord.of(row)

    def list_environments(self) -> list[EnvironmentRecord]:
        """The latest version of each environment, by name."""
        newest = (select(Environment.name, func.max(_env_number).label("number"))
                  .group_by(Environment.name).subquery())
        query = (select(Environment).order_by(Environment.name)
                 .join(newest, and_(Environment.name == newest.c.name, _env_number == newest.c.number)))
        with self._read() as session:
            return [EnvironmentRecord.of(row) for row in session.scalars(query)]

    # snapshots

    def add_snapshot(self, sha256: str, file_count: int, size_bytes: int) -> SnapshotRecord:
        """Record a packaged source folder; adding the same one again returns the existing record."""
        check_sha256("snapshot", sha256)
        check_count("snapshot file count", file_count)
        check_count("snapshot size", size_bytes)

        def insert(session: Session) -> SnapshotRecord:
            row = session.get(Snapshot, sha256)
            if row is None:
                row = Snapshot(sha256=sha256, file_count=file_count, size_bytes=size_bytes)
                session.add(row)
                session.flush()
            return SnapshotRecord.of(row)

        return self._write(f"add snapshot {sha256}", insert)

    def get_snapshot(self, sha256: str) -> SnapshotRecord:
        """A recorded snapshot (NotFound if this workspace has none with that digest)."""
        with self._read() as session:
            row = session.get(Snapshot, sha256)
            if row is None:
                raise NotFound(f"snapshot {sha256} is not in this workspace; package the source folder again")
            return SnapshotRecord.of(row)

    # compute targets

    def put_compute_target(self, name: str, type: str, config: dict[str, Any]) -> ComputeTargetRecord:
        """Create a compute target, or replace the type and settings of an existing one."""
        if not isinstance(config, dict):
            raise InvalidInput(f"settings of compute target '{name}' must be a JSON object, not "
                               f"{config.__class__.__name__}")

        def put(session: Session) -> ComputeTargetRecord:
            row = session.get(ComputeTarget, name)
            if row is None:
                row = ComputeTarget(name=name, type=type, config=config)
                session.add(row)
            else:
                row.type, row.config = type, config
            session.flush()
            return ComputeTargetRecord.of(row)

        return self._write(f"save compute target '{name}'", put)

    def get_compute_target(self, name: str) -> ComputeTargetRecord:
        """A compute target by name (NotFound lists the existing ones)."""
        with self._read() as session:
            return ComputeTargetRecord.of(_compute_row(session, name))

    def list_compute_targets(self) -> list[ComputeTargetRecord]:
        """All compute targets, by name."""
        with self._read() as session:
            return [ComputeTargetRecord.of(row)
                    for row in session.scalars(select(ComputeTarget).order_by(ComputeTarget.name))]

    def delete_compute_target(self, name: str) -> None:
        """Forget a compute target (NotFound if there is none by that name)."""
        with self.session() as session:
            session.delete(_compute_row(session, name))

    # services (only what model deletion needs so far)

    def attach_service_models(self, service: str, models: Iterable[tuple[str, int]]) -> None:
        """Record that ``service`` uses exactly these model versions (creating the service record if new)."""
        wanted = sorted({(name, required_version(version)) for name, version in models})

        def attach(session: Session) -> None:
            if session.get(Service, service) is None:
                session.add(Service(name=service, state=NEW_SERVICE_STATE, config={}))
                session.flush()
            replace_service_models(session, service, wanted)

        self._write(f"record the models of service '{service}'", attach)

    def detach_service(self, service: str) -> None:
        """Forget which models ``service`` uses, so they can be deleted."""
        with self.session() as session:
            session.execute(delete(ServiceModel).where(ServiceModel.service_name == service))


def _latest_environment(session: Session, name: str) -> Environment | None:
    return session.scalars(select(Environment).where(Environment.name == name)
                           .order_by(_env_number.desc()).limit(1)).first()


def _compute_row(session: Session, name: str) -> ComputeTarget:
    row = session.get(ComputeTarget, name)
    if row is None:
        names = session.scalars(select(ComputeTarget.name).order_by(ComputeTarget.name)).all()
        known = f"compute targets: {listing(names)}" if names else "none is attached yet"
        raise NotFound(f"compute target '{name}' not found; {known}")
    return row
