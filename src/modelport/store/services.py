"""Service records: the desired configuration of each web service and what was last observed.

A mixin of ``Store`` (it uses the store's transactions), kept apart so each file holds one idea.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import delete, select

from ..errors import Conflict, NotFound
from ..spec.state import State
from .checks import listing
from .lookups import model_row
from .models import Service, ServiceModel
from .records import ServiceRecord

TRANSITIONING = State.TRANSITIONING.value


class ServiceOperations:
    """Create, read, update and delete service records (``self`` is a ``Store``)."""

    def put_service(self, name: str, config: dict[str, Any], models: Iterable[tuple[str, int]],
                    create: bool) -> ServiceRecord:
        """Store a service's desired config; ``create`` refuses an existing name (deploy without overwrite)."""
        wanted = sorted(set(models))

        def put(session) -> ServiceRecord:
            row = session.get(Service, name)
            if row is not None and create:
                raise Conflict(f"service '{name}' already exists; pass overwrite=True (--overwrite) to replace it, "
                               "or choose another name")
            if row is None:
                row = Service(name=name, state=TRANSITIONING, config=config, status={})
                session.add(row)
            else:
                row.config = config
                row.state = TRANSITIONING
                row.status = {}
            session.flush()
            replace_service_models(session, name, wanted)
            return ServiceRecord.of(row)

        return self._write(f"save service '{name}'", put)

    def merge_service_config(self, name: str, changes: dict[str, Any]) -> ServiceRecord:
        """Change parts of a service's config that need no new replicas (keys); state is kept."""
        with self.session() as session:
            row = session.get(Service, name)
            if row is None:
                raise NotFound(f"service '{name}' not found")
            row.config = {**row.config, **changes}
            session.flush()
            return ServiceRecord.of(row)

    def get_service(self, name: str) -> ServiceRecord:
        with self._read() as session:
            row = session.get(Service, name)
            if row is None:
                names = session.scalars(select(Service.name).order_by(Service.name)).all()
                known = f"services: {listing(names)}" if names else "no service is deployed yet"
                raise NotFound(f"service '{name}' not found; {known}")
            return ServiceRecord.of(row)

    def list_services(self) -> list[ServiceRecord]:
        with self._read() as session:
            return [ServiceRecord.of(r) for r in session.scalars(select(Service).order_by(Service.name))]

    def set_service_status(self, name: str, state: str, status: dict[str, Any]) -> None:
        """Record what the reconciler observed (no-op if the service was deleted meanwhile)."""
        with self.session() as session:
            row = session.get(Service, name)
            if row is not None and (row.state != state or row.status != status):
                row.state = state
                row.status = status

    def delete_service(self, name: str) -> None:
        with self.session() as session:
            row = session.get(Service, name)
            if row is None:
                raise NotFound(f"service '{name}' not found")
            session.execute(delete(ServiceModel).where(ServiceModel.service_name == name))
            session.delete(row)


def replace_service_models(session, service: str, models: list[tuple[str, int]]) -> None:
    """Record that ``service`` uses exactly these model versions (each must exist)."""
    for model_name, version in models:
        model_row(session, model_name, version)
    session.execute(delete(ServiceModel).where(ServiceModel.service_name == service))
    session.add_all(ServiceModel(service_name=service, model_name=m, model_version=v) for m, v in models)
    session.flush()
