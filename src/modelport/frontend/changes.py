"""A change of routes as Envoy's watched files: what to write in which step, and how Envoy reports it.

``FrontEnd.apply`` renders every file (``config.xds_files``), compares it with what Envoy holds,
and writes what changed in ``steps`` (endpoints, clusters and JWT providers first; then routes;
then what nothing uses any more), each file atomically, waiting for each step to be live.
"""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path
from typing import Any

import orjson

from .config import ROUTE_CONFIG_NAME, STAT_PREFIX, token_services
from .routes import ServiceRoute


def steps(current: dict[str, dict[str, Any]], new: dict[str, dict[str, Any]]) -> list[dict[str, dict[str, Any]]]:
    """The files to write in each of the three steps of a change from ``current`` to ``new``."""
    old_clusters = current.get("cds.json", {}).get("resources", [])
    all_clusters = {c["name"]: c for c in old_clusters + new["cds.json"]["resources"]}
    add = {name: content for name, content in new.items() if name.startswith("eds/")}
    add["cds.json"] = {**new["cds.json"], "resources": list(all_clusters.values())}
    remove = {"cds.json": new["cds.json"]}
    # JWT providers: added before the routes that need them, removed after (a mixed change fails closed)
    grows = "lds.json" not in current or token_services(new["lds.json"]) >= token_services(current["lds.json"])
    (add if grows else remove)["lds.json"] = new["lds.json"]
    return [add, {"rds.json": new["rds.json"]}, remove]


def stat_prefix(file_name: str) -> str:
    """Where Envoy reports the subscription reading ``file_name`` (``<prefix>.version_text`` etc.)."""
    if file_name.startswith("eds/"):
        return f"cluster.{file_name[len('eds/'):-len('.json')]}"
    return {"lds.json": "listener_manager.lds", "cds.json": "cluster_manager.cds",
            "rds.json": f"http.{STAT_PREFIX}.rds.{ROUTE_CONFIG_NAME}"}[file_name]


def resources(files: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """What the files say, without their version stamps: equal when nothing changed."""
    return {name: content.get("resources") for name, content in files.items()}


def to_json(content: dict[str, Any]) -> bytes:
    """The compact JSON Envoy reads (``.json`` files)."""
    return orjson.dumps(content)


def routing(service: ServiceRoute) -> ServiceRoute:
    """``service`` without its replicas' addresses (what a validation is about)."""
    return dataclasses.replace(service, versions=[dataclasses.replace(v, endpoints=[]) for v in service.versions])


def without_endpoints(files: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The listener, clusters and routes: what a change must be validated for (endpoints are only addresses)."""
    return {name: content for name, content in files.items() if not name.startswith("eds/")}


def write_atomic(path: Path, content: str | bytes) -> None:
    """Write a temp file next to ``path`` and rename it over ``path``: Envoy never reads half a file."""
    tmp = path.with_name(f".{path.name}.tmp")
    if isinstance(content, str):
        tmp.write_text(content)
    else:
        tmp.write_bytes(content)
    os.replace(tmp, path)


def new_version() -> str:
    """A version stamp for a change (nanoseconds: later changes get larger ones)."""
    return str(time.time_ns())
