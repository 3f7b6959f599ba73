"""``az ml model deploy``'s (and ``az ml service update``'s) flags, with the short forms of the azure-cli-ml reference.

``deploy_flags`` adds the deploy-setting, inference and environment flags; ``deployment_config``,
``setting_changes`` and ``inference_config`` apply them over the files, as az did.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import click


class CommaList(click.ParamType):
    """A comma-separated flag value as a list of its non-empty, stripped parts."""

    name = "A,B,..."

    def convert(self, value, param, ctx) -> list[str]:
        return value if isinstance(value, list) else [part.strip() for part in value.split(",") if part.strip()]


# az ml model deploy's deploy-setting flags: long form, short form (the azure-cli-ml reference's; None where it gives
# none), DeploymentConfig parameter, type, help.
SETTING_FLAGS: tuple[tuple[str, str | None, str, click.ParamType | type, str], ...] = (
    ("--auth-enabled", "--ae", "auth_enabled", click.BOOL, "Key auth: true or false (default true; ACI: false)."),
    ("--token-auth-enabled", None, "token_auth_enabled", click.BOOL,
     "Token (JWT) auth: true or false (default false); needs --auth-enabled false."),
    ("--autoscale-enabled", "--as", "autoscale_enabled", click.BOOL,
     "Autoscaling: true or false (default true unless --num-replicas)."),
    ("--autoscale-min-replicas", "--mi", "autoscale_min_replicas", int, "Fewest replicas when autoscaling (1)."),
    ("--autoscale-max-replicas", "--ma", "autoscale_max_replicas", int, "Most replicas when autoscaling (10)."),
    ("--autoscale-refresh-seconds", "--ar", "autoscale_refresh_seconds", int,
     "Seconds between autoscaling decisions (1)."),
    ("--autoscale-target-utilization", "--at", "autoscale_target_utilization", int,
     "Utilization the autoscaler keeps, in percent (70)."),
    ("--cpu-cores", "--cc", "cpu_cores", float,
     "CPU cores requested per replica (0.1; Kubernetes: the container's CPU request; no local effect)."),
    ("--cpu-cores-limit", "--ccl", "cpu_cores_limit", float,
     "CPU cores a replica may use (Kubernetes: the container's CPU limit; local: CPU affinity to that many cores)."),
    ("--memory-gb", "--gb", "memory_gb", float,
     "Memory requested per replica in GB (0.5; Kubernetes: the container's memory request, and its limit without "
     "--memory-gb-limit; no local effect)."),
    ("--memory-gb-limit", "--gbl", "memory_gb_limit", float,
     "Memory a replica may use in GB (Kubernetes: the container's memory limit; local: its RLIMIT_AS)."),
    ("--gpu-cores", "--gc", "gpu_cores", int,
     "GPUs per replica (0; Kubernetes: its nvidia.com/gpu request and limit; local: CUDA_VISIBLE_DEVICES)."),
    ("--num-replicas", "--nr", "num_replicas", int, "A fixed number of replicas (turns autoscaling off)."),
    ("--scoring-timeout-ms", "--tm", "scoring_timeout_ms", int, "run() time limit in ms; 504 after it (60000)."),
    ("--replica-max-concurrent-requests", "--rm", "replica_max_concurrent_requests", int,
     "run() calls at once per replica (1)."),
    ("--max-request-wait-time", "--mr", "max_request_wait_time", int,
     "How long a request may wait for a replica, in ms; 503 after it (500)."),
    ("--period-seconds", "--ps", "period_seconds", int, "Liveness probe period in s (10; kept for Kubernetes)."),
    ("--initial-delay-seconds", "--id", "initial_delay_seconds", int,
     "Seconds before the first liveness probe (310; kept for Kubernetes)."),
    ("--timeout-seconds", "--ts", "timeout_seconds", int, "Liveness probe timeout in s (2; kept for Kubernetes)."),
    ("--success-threshold", "--st", "success_threshold", int,
     "Liveness probe successes to recover (1; kept for Kubernetes)."),
    ("--failure-threshold", "--ft", "failure_threshold", int,
     "Liveness probe failures to give up (3; kept for Kubernetes)."),
    ("--primary-key", "--kp", "primary_key", str, "The primary key (default: generated)."),
    ("--secondary-key", "--ks", "secondary_key", str, "The secondary key (default: generated)."),
    ("--namespace", None, "namespace", str, "Kubernetes namespace (kept for Kubernetes deployments)."),
    ("--enable-app-insights", "--ai", "enable_app_insights", click.BOOL,
     "Application Insights: true or false (not available here: warns)."),
    ("--collect-model-data", "--md", "collect_model_data", click.BOOL,
     "Model data collection: true or false (not available here: warns)."),
    ("--description", None, "description", str, "The service's description."),
    ("--cors-origins", None, "cors_origins", CommaList(),
     "Browser origins allowed to call the service, comma-separated ('*': any); preflights need no key. "
     "Not an az flag: modelport's own."),
)
# az ml model deploy's inference flags: long form, short form, inferenceconfig.json key, type, help.
INFERENCE_FLAGS: tuple[tuple[str, str, str, click.ParamType | type, str], ...] = (
    ("--entry-script", "--es", "entryScript", str,
     "The scoring script (relative to --source-directory when given); with it --ic may be left out."),
    ("--source-directory", "--sd", "sourceDirectory", str, "The folder the service's files come from."),
    ("--runtime", "--rt", "runtime", click.Choice(["python", "python-slim", "spark-py"], case_sensitive=False),
     "The entry script's runtime (python)."),
    ("--conda-file", "--cf", "condaFile", str, "A conda environment YAML for the service's packages."),
)
# az ml model deploy's registered-environment flags: long form, short form, help.
ENVIRONMENT_FLAGS = (
    ("--environment-name", "-e", "A registered environment to deploy with (its latest version unless "
                                 "--environment-version); replaces the --ic file's environment and condaFile."),
    ("--environment-version", "--ev", "The version of --environment-name."),
)
_KEY_VALUE_FLAGS = (("--tag", "tags"), ("--property", "properties"))
# How messages name the inference flags, by inferenceconfig.json key.
FLAG_NAMES = {key: long for long, _, key, _, _ in INFERENCE_FLAGS} | {"environment": ENVIRONMENT_FLAGS[0][0]}


def key_values(pairs: tuple[str, ...], what: str) -> dict | None:
    """``key=value`` flag values (``what`` names the flag) as a dict; None when there are none."""
    values = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{pair!r} must look like key=value", param_hint=what)
        values[key] = value
    return values or None


def deploy_flags(command: Callable) -> Callable:
    """Add ``az ml model deploy``'s setting, inference and environment flags, ``--tag``/``--property`` and
    ``--strict`` (``az ml service update`` has the same).

    The command receives ``settings`` (given setting flags by DeploymentConfig parameter, tags and properties as
    dicts), ``inference_flags`` (the inference flags by inferenceconfig.json key, None when not given; the
    environment flags as ``environment``: ``{"name", "version"}``) and ``strict``.
    """
    options = [click.option(long, *([short] if short else []), f"flag_{param}", type=kind, default=None, help=text)
               for long, short, param, kind, text in (*SETTING_FLAGS, *INFERENCE_FLAGS)]
    options += [click.option(long, short, f"flag_{long[2:].replace('-', '_')}", default=None, help=text)
                for long, short, text in ENVIRONMENT_FLAGS]
    options += [click.option(long, f"flag_{param}", multiple=True, help="key=value (repeatable); added to the "
                             "file's (service update: the service's), the flag winning.")
                for long, param in _KEY_VALUE_FLAGS]
    options.append(click.option("--strict", is_flag=True, help="Unknown keys in the files are errors (all of them "
                                                                "in one), not warnings."))

    @functools.wraps(command)
    def with_flags(**kwargs):
        flags = {name[len("flag_"):]: kwargs.pop(name) for name in list(kwargs) if name.startswith("flag_")}
        settings = {param: flags[param] for _, _, param, _, _ in SETTING_FLAGS if flags[param] is not None}
        for long, param in _KEY_VALUE_FLAGS:
            if flags[param]:
                settings[param] = key_values(flags[param], long)
        inference = {key: flags[key] for _, _, key, _, _ in INFERENCE_FLAGS}
        inference["environment"] = _environment(flags["environment_name"], flags["environment_version"])
        return command(settings=settings, inference_flags=inference, **kwargs)

    for option in reversed(options):
        with_flags = option(with_flags)
    return with_flags


def _environment(name: str | None, version: str | None) -> dict | None:
    if name is None:
        if version is not None:
            raise click.UsageError("--environment-version needs --environment-name (-e), the registered "
                                   "environment's name")
        return None
    return {"name": name, "version": version}


def deployment_config(dc: str | None, settings: dict, strict: bool):
    """The deploymentconfig.json (Azure's AKS defaults without one) with the setting flags over it."""
    from ..sdk.deploy_config import DeploymentConfig, aks_deploy_configuration

    config = DeploymentConfig.from_file(dc, strict=strict) if dc else aks_deploy_configuration()
    _warn_not_applied(settings)
    return config.overridden(**settings)


def setting_changes(dc: str | None, settings: dict, strict: bool) -> dict:
    """``service update``'s setting changes by parameter, as ``az ml service update``: a deploymentconfig.json's
    whole settings with the flags over them; without one the flags alone."""
    if dc:
        return deployment_config(dc, settings, strict).to_settings()
    _warn_not_applied(settings)
    return dict(settings)


def _warn_not_applied(settings: dict) -> None:
    from ..sdk.deploy_config import warn_not_applied
    from ..sdk.files import KeyRule

    by_param = {param: long for long, _, param, _, _ in SETTING_FLAGS}
    warn_not_applied(settings, KeyRule("the command line"), by_param.__getitem__)


def inference_config(ic: str | None, flags: dict, workspace, strict: bool):
    """The inferenceconfig.json with the inference ``flags`` over it; the flags alone without one."""
    from ..sdk.inference_config import InferenceConfig

    if ic is None and flags["entryScript"] is None:
        raise click.UsageError("give --ic inferenceconfig.json, or --entry-script (with --source-directory and "
                               "--conda-file or --environment-name as needed)")
    return InferenceConfig.from_file(ic, workspace, strict, flags=flags, flag_names=FLAG_NAMES)


def inference_given(ic: str | None, flags: dict) -> bool:
    """Whether ``--ic`` or any inference flag was given (``service update`` changes the inference config then)."""
    return ic is not None or any(value is not None for value in flags.values())
