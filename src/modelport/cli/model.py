"""``modelport model register|list|show|download|delete`` (``model deploy`` is in ``service``)."""

from __future__ import annotations

import click

from .deploy_flags import key_values
from .output import emit, friendly_errors, output_option
from .workspace_options import workspace_from, workspace_option

COLUMNS = ["id", "name", "version", "artifact_name", "size_bytes", "tags", "created_at"]


@click.group("model")
def model_group() -> None:
    """Register, list, download and delete models."""


@model_group.command("register")
@click.option("--name", "-n", required=True, help="Model name.")
@click.option("--model-path", "-p", required=True, type=click.Path(), help="Model file or folder.")
@click.option("--tag", "tags", multiple=True, help="key=value (repeatable).")
@click.option("--property", "properties", multiple=True, help="key=value (repeatable).")
@click.option("--description", "-d", default=None)
@click.option("--model-framework", default=None)
@click.option("--model-framework-version", default=None)
@workspace_option
@output_option
@friendly_errors
def register(name, model_path, tags, properties, description, model_framework, model_framework_version,
             workspace_choice, output) -> None:
    """Upload a model file or folder as the next version of NAME."""
    from ..sdk.model import Model

    model = Model.register(workspace_from(workspace_choice), model_path, name, tags=key_values(tags, "--tag"),
                           properties=key_values(properties, "--property"), description=description,
                           model_framework=model_framework, model_framework_version=model_framework_version)
    emit(output, model.serialize(), COLUMNS)


@model_group.command("list")
@click.option("--name", "-n", default=None, help="Only this model name.")
@click.option("--tag", "tags", multiple=True, help="key or key=value the model must have (repeatable).")
@click.option("--latest", is_flag=True, help="Only the latest version of each name.")
@workspace_option
@output_option
@friendly_errors
def list_models(name, tags, latest, workspace_choice, output) -> None:
    """List registered models."""
    from ..sdk.model import Model

    filters = [t.split("=", 1) if "=" in t else t for t in tags] or None
    models = Model.list(workspace_from(workspace_choice), name=name, tags=filters, latest=latest)
    emit(output, [m.serialize() for m in models], COLUMNS)


@model_group.command("show")
@click.option("--model-id", "-i", "model_id", default=None, help="NAME:VERSION.")
@click.option("--name", "-n", default=None, help="Model name (latest version unless --version).")
@click.option("--version", "-v", type=int, default=None)
@workspace_option
@output_option
@friendly_errors
def show(model_id, name, version, workspace_choice, output) -> None:
    """Show one model version."""
    emit(output, _model(workspace_choice, model_id, name, version).serialize(),
         COLUMNS + ["artifact_kind", "description", "properties"])


@model_group.command("download")
@click.option("--model-id", "-i", "model_id", default=None, help="NAME:VERSION.")
@click.option("--name", "-n", default=None)
@click.option("--version", "-v", type=int, default=None)
@click.option("--target-dir", "-t", default=".", type=click.Path(file_okay=False))
@click.option("--overwrite", is_flag=True, help="Replace what is already there.")
@workspace_option
@friendly_errors
def download(model_id, name, version, target_dir, overwrite, workspace_choice) -> None:
    """Download a model's file or folder."""
    click.echo(_model(workspace_choice, model_id, name, version).download(target_dir, exist_ok=overwrite))


@model_group.command("delete")
@click.option("--model-id", "-i", "model_id", required=True, help="NAME:VERSION.")
@workspace_option
@friendly_errors
def delete(model_id, workspace_choice) -> None:
    """Delete a model version (refused while a service uses it)."""
    _model(workspace_choice, model_id, None, None).delete()
    click.echo(f"Deleted {model_id}")


def _model(workspace_choice, model_id, name, version):
    from ..sdk.model import Model

    if not model_id and not name:
        raise click.UsageError("give --model-id NAME:VERSION or --name")
    return Model(workspace_from(workspace_choice), name=name, id=model_id, version=version)
