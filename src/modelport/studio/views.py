"""What Studio's pages show, gathered from the store and the operations the API routes use.

Each function returns plain dicts and lists for a template; nothing here renders HTML or changes state.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from typing import Any

from ..api.context import Context
from ..api.routes_services import service_view
from ..environments.build import build_log_path, local_build_state, tail_lines
from ..environments.spec import EnvironmentSpec
from ..operations.compute import ComputeOperations

STATE_ORDER = {"Failed": 0, "Unhealthy": 1, "Transitioning": 2, "Healthy": 3}
BUILD_LOG_LINES = 400


def services(ctx: Context) -> list[dict[str, Any]]:
    """Every service and endpoint as the API shows it (``ServiceView``), failing ones first, then by name."""
    views = [service_view(ctx, record) for record in ctx.store.list_services()]
    return sorted(views, key=lambda v: (STATE_ORDER.get(v["state"], 2), v["name"]))


def overview(ctx: Context, compute: ComputeOperations) -> dict[str, Any]:
    """Counts of what the workspace holds and its services, failing first."""
    models = ctx.store.list_models()
    listed = services(ctx)
    states: dict[str, int] = defaultdict(int)
    for view in listed:
        states[view["state"]] += 1
    counts = [(len({m.name for m in models}), "model"), (len(models), "model version"),
              (len(ctx.store.list_environments()), "registered environment"),
              (sum(v["kind"] == "endpoint" for v in listed), "endpoint"),
              (sum(v["kind"] == "webservice" for v in listed), "web service"), (len(compute.list()), "compute target")]
    return {"services": listed, "states": dict(states),
            "counts": [{"n": n, "label": counted(n, label)} for n, label in counts]}


def counted(n: int, singular: str, plural: str | None = None) -> str:
    """The label for ``n`` things: ``singular`` for one, else ``plural`` (default: ``singular`` + "s")."""
    return singular if n == 1 else plural or f"{singular}s"


def models(ctx: Context) -> list[dict[str, Any]]:
    """Model versions newest first, each with ``used_by``: the services whose versions load it."""
    used_by: dict[str, set[str]] = defaultdict(set)
    for record in ctx.store.list_services():
        for version in record.endpoint.versions:
            for model in version.models:
                used_by[model.id].add(record.name)
    return [{**m.to_dict(), "used_by": sorted(used_by[m.id])} for m in ctx.store.list_models()]


def environments(ctx: Context) -> dict[str, list[dict[str, Any]]]:
    """``registered``: environment versions with their local build state (``local_build_state``) and ``used_by``:
    the services whose versions run an environment of that name; ``unregistered``: the names of environments
    services run that are not registered (given inline with a deployment), each with ``used_by``."""
    used_by: dict[str, set[str]] = defaultdict(set)
    for record in ctx.store.list_services():
        for version in record.endpoint.versions:
            used_by[version.environment["name"]].add(record.name)
    registered = ctx.store.list_environments()
    names = {record.name for record in registered}

    def build_state(spec: dict[str, Any]) -> str:
        return local_build_state(EnvironmentSpec.from_dict(spec), ctx.workspace.envs)

    return {"registered": [{**record.to_dict(), "build_state": build_state(record.spec),
                            "used_by": sorted(used_by[record.name])} for record in registered],
            "unregistered": [{"name": name, "used_by": sorted(services)}
                             for name, services in sorted(used_by.items()) if name not in names]}


def environment(ctx: Context, name: str, version: str) -> dict[str, Any]:
    """One environment version: its spec (and ``spec_json``: the spec as indented JSON text, for the page to
    escape as any text), content hash, build state and the tail of its build log."""
    record = ctx.store.get_environment(name, version)
    return {**record.to_dict(), "spec_json": json.dumps(record.spec, indent=2, ensure_ascii=False),
            "build": _build(ctx, record.spec)}


def environment_build(ctx: Context, name: str, version: str) -> dict[str, Any]:
    """The build state and log tail of one environment version (``{"state", "log"}``), for live polling."""
    return _build(ctx, ctx.store.get_environment(name, version).spec)


def _build(ctx: Context, spec_dict: dict[str, Any]) -> dict[str, Any]:
    spec = EnvironmentSpec.from_dict(spec_dict)
    log = build_log_path(spec, ctx.workspace.logs)
    return {"state": local_build_state(spec, ctx.workspace.envs), "log": tail_lines(log, BUILD_LOG_LINES)}


def computes(compute: ComputeOperations) -> list[dict[str, Any]]:
    """Every compute target's view (``ComputeOperations.list``) with ``capacity``: what it can run, in words
    (this machine's cores and memory for ``local``; an attached cluster's schedulable vCPUs and version)."""
    listed = []
    for view in compute.list():
        if view["type"] == "Local":
            memory_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1e9
            capacity = f"this machine: {os.cpu_count()} cores, {memory_gb:.0f} GB memory"
        else:
            vcpus = view.get("vcpus")
            capacity = f"{vcpus if vcpus is not None else '?'} schedulable vCPUs" + (
                f", Kubernetes {view['server_version']}" if view.get("server_version") else "")
        listed.append({**view, "capacity": capacity})
    return listed
