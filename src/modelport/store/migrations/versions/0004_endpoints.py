"""Services hold endpoints: a web service's config becomes an endpoint with one version, ``default``.

Before: ``{generation, models, entry_script, source_directory?, snapshot, environment, deploy, keys, gpus}``.
After: ``{name, kind: "webservice", compute_target: "local", auth, keys, cors_origins, versions: [{name:
"default", generation, models, ..., traffic_percentile: 0, is_default: true, is_control: true,
mirror_percentile: 0}], history: []}`` (``spec.Endpoint``). Self-contained on purpose: a migration must
not change when the code that reads the result does.

Revision ID: 0004_endpoints
Revises: 0003_service_status
"""

import sqlalchemy as sa
from alembic import op

revision = "0004_endpoints"
down_revision = "0003_service_status"
branch_labels = None
depends_on = None

SERVICES = sa.table("services", sa.column("name", sa.String), sa.column("config", sa.JSON))


def _auth(deploy: dict) -> str:
    if deploy.get("token_auth_enabled"):
        return "token"
    return "key" if deploy.get("auth_enabled") else "none"


def to_endpoint(name: str, config: dict) -> dict:
    """An old web-service config as an endpoint with one version."""
    if "versions" in config:
        return config
    deploy = config["deploy"]
    version = {"name": "default", "generation": config["generation"], "models": config["models"],
               "entry_script": config["entry_script"], "source_directory": config.get("source_directory"),
               "snapshot": config["snapshot"], "environment": config["environment"], "deploy": deploy,
               "gpus": config.get("gpus", []), "traffic_percentile": 0, "is_default": True, "is_control": True,
               "mirror_percentile": 0}
    return {"name": name, "kind": "webservice", "compute_target": "local", "auth": _auth(deploy),
            "keys": config.get("keys", {}), "cors_origins": deploy.get("cors_origins") or [], "description": None,
            "tags": {}, "versions": [version], "history": [], "revision": 1}


def to_web_service(config: dict) -> dict:
    """Back: an endpoint with one version as the old web-service config."""
    if "versions" not in config:
        return config
    if len(config["versions"]) != 1:
        raise RuntimeError(f"endpoint '{config['name']}' has {len(config['versions'])} versions: delete all but "
                           "one before downgrading")
    version = config["versions"][0]
    return {"generation": version["generation"], "models": version["models"], "entry_script": version["entry_script"],
            "source_directory": version.get("source_directory"), "snapshot": version["snapshot"],
            "environment": version["environment"], "deploy": version["deploy"], "keys": config.get("keys", {}),
            "gpus": version.get("gpus", [])}


def _rewrite(convert) -> None:
    connection = op.get_bind()
    for name, config in connection.execute(sa.select(SERVICES.c.name, SERVICES.c.config)).all():
        connection.execute(SERVICES.update().where(SERVICES.c.name == name).values(config=convert(name, config)))


def upgrade() -> None:
    _rewrite(to_endpoint)


def downgrade() -> None:
    _rewrite(lambda _name, config: to_web_service(config))
