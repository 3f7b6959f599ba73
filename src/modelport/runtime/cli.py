"""``modelport serve`` / ``python -m modelport.runtime``: run the scoring runtime in the foreground.

The flags of azmlinfsrv (``--entry_script``, ``--model_dir``, ``--port``, ``--worker_count``,
``--health_port``, ``--access_control_allow_origins``, ``--appinsights_instrumentation_key``,
``--config_file``) are accepted with the same meaning, so swapping ``azmlinfsrv`` for
``modelport serve`` is the whole change.
"""

from __future__ import annotations

import sys

import click

from .settings import RuntimeSettings, SettingsError

ENVIRONMENT_HELP = """
\b
Environment variables (as azmlinfsrv's; flags win over them, they win over the config file):
  AZUREML_ENTRY_SCRIPT, AZUREML_MODEL_DIR, AML_APP_ROOT, AZUREML_SOURCE_DIRECTORY,
  WORKER_COUNT, WORKER_TIMEOUT (seconds a run() may run before its worker restarts; unset: never),
  SCORING_TIMEOUT_MS, AML_CORS_ORIGINS, SEPERATE_HEALTH_ENDPOINT=true with HEALTH_PORT
  (a second port for GET /), AML_APP_INSIGHTS_ENABLED, AML_APP_INSIGHTS_KEY (seen by run()),
  AZUREML_CONFIG_FILE, SERVICE_NAME, SERVICE_VERSION, SERVICE_PATH_PREFIX, AZUREML_LOG_LEVEL,
  SERVER_VERSION_LOG_RESPONSE_ENABLED (false: no x-ms-server-version header);
  modelport's own: MODELPORT_MAX_CONCURRENT_REQUESTS, MODELPORT_MAX_QUEUE_WAIT_MS,
  MODELPORT_MAX_BODY_BYTES, MODELPORT_GRACEFUL_TIMEOUT_S.
"""


@click.command("serve", epilog=ENVIRONMENT_HELP)
@click.option("--entry-script", "--entry_script", "entry_script",
              help="The entry script with init() and run(), relative to the app root or the working directory "
                   "(AZUREML_ENTRY_SCRIPT).")
@click.option("--source-dir", type=click.Path(),
              help="The app root: the working directory of score.py, on sys.path (AML_APP_ROOT).  "
                   "[default: the working directory]")
@click.option("--model-dir", "--model_dir", "model_dir", type=click.Path(),
              help="AZUREML_MODEL_DIR, passed as given; a missing folder is a warning.")
@click.option("--model", "models", multiple=True, metavar="NAME:VERSION=PATH",
              help="Lay out a model as azureml-models/NAME/VERSION (repeatable).")
@click.option("--host", default=None, help="Address to listen on.  [default: 127.0.0.1]")
@click.option("--port", type=int, default=None, help="Port to listen on; 0 picks a free one.  [default: 5001]")
@click.option("--workers", "--worker-count", "--worker_count", "workers", type=int, default=None,
              help="Worker processes, each running init() once (WORKER_COUNT).  [default: 1]")
@click.option("--health-port", "--health_port", "health_port", type=int, default=None,
              help="With SEPERATE_HEALTH_ENDPOINT=true: a second port serving GET / (HEALTH_PORT).  [default: 5000]")
@click.option("--cors-origins", "--access_control_allow_origins", "cors_origins", default=None,
              metavar="ORIGINS",
              help="Comma-separated origins allowed to call from a browser, or * (AML_CORS_ORIGINS).")
@click.option("--appinsights-instrumentation-key", "--appinsights_instrumentation_key", "appinsights_key",
              default=None, metavar="KEY",
              help="Sets AML_APP_INSIGHTS_ENABLED=true and AML_APP_INSIGHTS_KEY for run(), as azmlinfsrv does "
                   "(modelport sends no telemetry itself).")
@click.option("--config-file", "--config_file", "config_file", type=click.Path(), default=None,
              help="azmlinfsrv's JSON settings file (keys such as AZUREML_ENTRY_SCRIPT, SCORING_TIMEOUT_MS, "
                   "AML_CORS_ORIGINS); default: AZUREML_CONFIG_FILE, else config.json in the app root.")
def serve_command(entry_script, source_dir, model_dir, models, host, port, workers, health_port, cors_origins,
                  appinsights_key, config_file) -> None:
    """Serve an Azure ML entry script (score.py) over HTTP, like azmlinfsrv."""
    from .supervisor import PortInUseError, serve

    try:
        settings = RuntimeSettings.from_args(
            entry_script, source_dir, model_dir, models, host, port, workers, health_port=health_port,
            cors_origins=cors_origins, appinsights_key=appinsights_key, config_file=config_file,
        )
        code = serve(settings)
    except (SettingsError, PortInUseError) as err:
        click.echo(f"Error: {err}", err=True)
        sys.exit(2)
    sys.exit(code)
